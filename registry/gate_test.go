package registry

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/theupdateframework/go-tuf/v2/metadata"

	"airlock.dev/airlock/hsm"
	"airlock.dev/airlock/internal/online"
	"airlock.dev/airlock/registry/pgtest"
	"airlock.dev/airlock/tuf"
)

// miniRegistry is the upstream registry of the gate's unit tests: whoami
// for one token, packuments, publish and tarballs, and a switch that makes
// publishes fail (an upstream outage). The end-to-end test in
// test/registry runs against Verdaccio instead.
type miniRegistry struct {
	mu        sync.Mutex
	docs      map[string]map[string]json.RawMessage // name -> version -> manifest
	tarballs  map[string][]byte
	publishes int
	whoamis   int
	down      bool
}

func (m *miniRegistry) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	m.mu.Lock()
	defer m.mu.Unlock()
	p := strings.TrimPrefix(r.URL.EscapedPath(), "/")
	switch {
	case p == "-/whoami":
		m.whoamis++
		if r.Header.Get("Authorization") != "Bearer good" {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		json.NewEncoder(w).Encode(map[string]string{"username": "alice"})
	case strings.Contains(p, "/-/"):
		b, ok := m.tarballs[p]
		if !ok {
			w.WriteHeader(http.StatusNotFound)
			return
		}
		w.Write(b)
	case r.Method == http.MethodGet:
		name, _ := url.PathUnescape(p)
		vs, ok := m.docs[name]
		if !ok {
			w.WriteHeader(http.StatusNotFound)
			return
		}
		json.NewEncoder(w).Encode(map[string]any{"name": name, "versions": vs})
	case r.Method == http.MethodPut:
		if m.down {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		name, _ := url.PathUnescape(p)
		body, _ := io.ReadAll(r.Body)
		pub, err := ParsePublish(name, body)
		if err != nil || pub.Provenance != nil || r.Header.Get("Authorization") != "Bearer good" {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		if m.docs[name] == nil {
			m.docs[name] = map[string]json.RawMessage{}
		}
		var man map[string]any
		json.Unmarshal(pub.Manifest, &man)
		tp := name + "/-/" + UnscopedBase(name) + "-" + pub.Version + ".tgz"
		man["dist"].(map[string]any)["tarball"] = "http://" + r.Host + "/" + tp
		m.docs[name][pub.Version] = mustJSON(man)
		m.tarballs[tp] = pub.Tarball
		m.publishes++
		w.WriteHeader(http.StatusCreated)
	default:
		w.WriteHeader(http.StatusMethodNotAllowed)
	}
}

type gateFixture struct {
	t          *testing.T
	store      Store
	up         *miniRegistry
	gate       *Gate
	url        string
	online     hsm.Signer
	keys       map[string]hsm.Signer
	root       []byte
	tgz, prov  []byte
	devRefuser *Gate // the same store without --dev
}

// newGateFixture builds a repository delegating tuf-js and other-pkg 2-of-2
// to alice and bob (development keys), a store, the mini upstream and a
// gate on 127.0.0.1.
func newGateFixture(t *testing.T, spec string) *gateFixture {
	ctx := context.Background()
	now := time.Now()
	dir := t.TempDir()
	f := &gateFixture{t: t, keys: map[string]hsm.Signer{}}
	for _, n := range []string{"root", "targets", "online", "alice", "bob", "carol"} {
		s, err := hsm.GenerateFileKey(filepath.Join(dir, n+".pem"), hsm.ECDSAP256, n, nil)
		if err != nil {
			t.Fatal(err)
		}
		f.keys[n] = s
	}
	f.online = f.keys["online"]
	repoDir := filepath.Join(dir, "repo")
	repo, err := tuf.Init(repoDir, tuf.InitOptions{Root: []hsm.Signer{f.keys["root"]}, RootThreshold: 1, Targets: []hsm.Signer{f.keys["targets"]}, TargetsThreshold: 1, Online: f.online, Now: now})
	if err != nil {
		t.Fatal(err)
	}
	next, _ := repo.NextTargets("targets", now.Add(24*time.Hour))
	ka, _ := tuf.KeyFromSigner(f.keys["alice"])
	kb, _ := tuf.KeyFromSigner(f.keys["bob"])
	for _, role := range []string{"tuf-js", "other-pkg"} {
		if err := tuf.SetDelegation(next, tuf.DelegationSpec{Name: role, Keys: []*metadata.Key{ka, kb}, Threshold: 2, Paths: []string{role + "/-/*"}}); err != nil {
			t.Fatal(err)
		}
	}
	td, _ := repo.Delegation("targets")
	tuf.SignAll(next, td, []hsm.Signer{f.keys["targets"]})
	if err := repo.CommitTargets("targets", next, f.online, now); err != nil {
		t.Fatal(err)
	}
	files, _ := ReadTree(repoDir)
	f.root = files["metadata/1.root.json"]
	if f.store, err = Open(ctx, spec); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.store.Close() })
	if _, err := f.store.ImportRepo(ctx, files); err != nil {
		t.Fatal(err)
	}
	f.up = &miniRegistry{docs: map[string]map[string]json.RawMessage{}, tarballs: map[string][]byte{}}
	ups := httptest.NewServer(f.up)
	t.Cleanup(ups.Close)
	uu, _ := url.Parse(ups.URL)
	f.gate, err = NewGate(GateConfig{Upstream: uu, Store: f.store, Releaser: TUFReleaser{Dev: true}, Online: f.online})
	if err != nil {
		t.Fatal(err)
	}
	f.devRefuser, _ = NewGate(GateConfig{Upstream: uu, Store: f.store, Releaser: TUFReleaser{}, Online: f.online})
	gs := httptest.NewServer(f.gate)
	t.Cleanup(gs.Close)
	if !strings.HasPrefix(gs.URL, "http://127.0.0.1:") {
		t.Fatalf("test server at %s, want 127.0.0.1", gs.URL)
	}
	f.url = gs.URL
	if f.tgz, err = os.ReadFile("testdata/tuf-js-1.0.0.tgz"); err != nil {
		t.Fatal(err)
	}
	if f.prov, err = os.ReadFile("testdata/tuf-js@1.0.0.provenance.sigstore.json"); err != nil {
		t.Fatal(err)
	}
	return f
}

// do sends a request to the gate and decodes the JSON answer into out.
func (f *gateFixture) do(method, path string, body []byte, out any) (int, http.Header) {
	f.t.Helper()
	req, _ := http.NewRequest(method, f.url+path, bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer good")
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		f.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			f.t.Fatalf("%s %s: %d %q", method, path, resp.StatusCode, b)
		}
	}
	return resp.StatusCode, resp.Header
}

func (f *gateFixture) stage(name, version string, tgz, prov []byte) string {
	f.t.Helper()
	var res struct {
		StageID string `json:"stageId"`
		Error   string `json:"error"`
	}
	if code, _ := f.do(http.MethodPost, "/-/stage/package/"+EscapedName(name), publishDoc(f.t, name, version, tgz, prov), &res); code != http.StatusCreated {
		f.t.Fatalf("stage %s@%s: %d %s", name, version, code, res.Error)
	}
	return res.StageID
}

func (f *gateFixture) bundle(id string) *tuf.Request {
	f.t.Helper()
	var b BundleFiles
	if code, _ := f.do(http.MethodGet, "/-/airlock/stage/"+id+"/bundle", nil, &b); code != http.StatusOK {
		f.t.Fatalf("bundle %s: %d", id, code)
	}
	req, err := tuf.ParseRequest(b.Files["request.json"])
	if err != nil {
		f.t.Fatal(err)
	}
	return req
}

func (f *gateFixture) sign(req *tuf.Request, who ...string) []json.RawMessage {
	f.t.Helper()
	var out []json.RawMessage
	for _, w := range who {
		r, err := online.Sign(req, []hsm.Signer{f.keys[w]}, time.Now())
		if err != nil {
			f.t.Fatal(err)
		}
		b, _ := r.Marshal()
		out = append(out, b)
	}
	return out
}

func (f *gateFixture) submit(id string, subs []json.RawMessage) (int, string) {
	f.t.Helper()
	body, _ := json.Marshal(Submission{Submissions: subs})
	var res struct {
		State string `json:"state"`
		Error string `json:"error"`
	}
	code, _ := f.do(http.MethodPost, "/-/airlock/stage/"+id+"/responses", body, &res)
	if res.Error != "" {
		return code, res.Error
	}
	return code, res.State
}

// intact checks that a refused stage is still staged with its bytes and
// records reason.
func (f *gateFixture) intact(id string, tgz []byte, reason string) {
	f.t.Helper()
	st, err := f.store.GetStage(context.Background(), id)
	if err != nil || st.State != StateStaged || !strings.Contains(st.Reason, reason) {
		f.t.Fatalf("after the refusal stage %s is %+v, %v; want staged with reason %q", id, st, err, reason)
	}
	resp, err := http.Get(f.url + "/-/stage/" + id + "/tarball")
	if err != nil {
		f.t.Fatal(err)
	}
	got, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !bytes.Equal(got, tgz) {
		f.t.Fatalf("stage %s serves %d other bytes after a refusal", id, len(got))
	}
}

func runGateStores(t *testing.T, test func(t *testing.T, spec string)) {
	t.Run("sqlite", func(t *testing.T) { test(t, "sqlite:"+filepath.Join(t.TempDir(), "gate.db")) })
	t.Run("postgres", func(t *testing.T) { test(t, pgtest.Start(t)) })
}

func TestGateStagePublish(t *testing.T) {
	runGateStores(t, func(t *testing.T, spec string) {
		f := newGateFixture(t, spec)
		// A plain npm publish is staged, never forwarded, with a notice.
		var res map[string]any
		code, hdr := f.do(http.MethodPut, "/tuf-js", publishDoc(t, "tuf-js", "1.0.0", f.tgz, f.prov), &res)
		if code != http.StatusCreated || !strings.Contains(hdr.Get("npm-notice"), "2 of 2 signatures") || f.up.publishes != 0 {
			t.Fatalf("plain publish: %d notice %q, %d upstream publishes", code, hdr.Get("npm-notice"), f.up.publishes)
		}
		id := res["stageId"].(string)
		// Staged versions are restricted in the packument.
		var doc struct {
			Versions           map[string]json.RawMessage `json:"versions"`
			PolicyRestrictions struct {
				Versions map[string]bool `json:"versions"`
				Message  string          `json:"message"`
			} `json:"policyRestrictions"`
		}
		f.do(http.MethodGet, "/tuf-js", nil, &doc)
		if !doc.PolicyRestrictions.Versions["1.0.0"] || !strings.Contains(doc.PolicyRestrictions.Message, "awaiting 2 of 2 signatures") || doc.Versions["1.0.0"] == nil {
			t.Fatalf("packument of a staged version: %+v", doc)
		}
		// The same version twice is refused.
		var e map[string]string
		if code, _ := f.do(http.MethodPost, "/-/stage/package/tuf-js", publishDoc(t, "tuf-js", "1.0.0", f.tgz, nil), &e); code != http.StatusConflict || !strings.Contains(e["error"], "already staged") {
			t.Fatalf("second stage of 1.0.0: %d %v", code, e)
		}
		// Without credentials the upstream's whoami decides.
		req, _ := http.NewRequest(http.MethodPost, f.url+"/-/stage/package/tuf-js", bytes.NewReader(publishDoc(t, "tuf-js", "1.0.1", f.tgz, nil)))
		req.Header.Set("Authorization", "Bearer bad")
		resp, _ := http.DefaultClient.Do(req)
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(string(b), "npm login") {
			t.Fatalf("stage with a bad token: %d %s", resp.StatusCode, b)
		}
		// npm stage approve is refused with the reason.
		if code, _ := f.do(http.MethodPost, "/-/stage/"+id+"/approve", nil, &e); code != http.StatusForbidden || !strings.Contains(e["error"], "offline signatures") {
			t.Fatalf("approve: %d %v", code, e)
		}
		// An upstream outage at publication leaves the version approved;
		// Resume forwards it.
		req1 := f.bundle(id)
		f.up.mu.Lock()
		f.up.down = true
		f.up.mu.Unlock()
		if code, state := f.submit(id, f.sign(req1, "alice", "bob")); code != http.StatusAccepted || state != StateApproved {
			t.Fatalf("submit with upstream down: %d %s", code, state)
		}
		f.up.mu.Lock()
		f.up.down = false
		f.up.mu.Unlock()
		if err := f.gate.Resume(context.Background()); err != nil {
			t.Fatal(err)
		}
		st, _ := f.store.GetStage(context.Background(), id)
		if st.State != StatePublished || f.up.publishes != 1 {
			t.Fatalf("after Resume: %s, %d upstream publishes", st.State, f.up.publishes)
		}
		// The provenance stayed at the gate; the packument carries the
		// gate's signature and attestation link.
		var pk struct {
			Versions map[string]struct {
				Dist struct {
					Signatures   []struct{ Keyid, Sig string } `json:"signatures"`
					Attestations struct{ URL string }          `json:"attestations"`
				} `json:"dist"`
			} `json:"versions"`
		}
		f.do(http.MethodGet, "/tuf-js", nil, &pk)
		d := pk.Versions["1.0.0"].Dist
		if len(d.Signatures) != 1 || d.Signatures[0].Keyid != f.gate.KeyID() || !strings.Contains(d.Attestations.URL, "/-/npm/v1/attestations/tuf-js@1.0.0") {
			t.Fatalf("published packument dist: %+v", d)
		}
		// The monitor is quiet; a version published around the gate, or
		// other bytes for a signed one, raise alarms.
		gu, _ := url.Parse(f.url)
		tu, _ := url.Parse(f.url + "/tuf")
		m := &Monitor{Registry: gu, Repo: tuf.HTTPFetcher{Base: tu}, Root: f.root}
		if alarms, err := m.Check(context.Background(), "tuf-js"); err != nil || len(alarms) != 0 {
			t.Fatalf("monitor over a signed release: %v %+v", err, alarms)
		}
		f.up.mu.Lock()
		for p := range f.up.tarballs {
			f.up.tarballs[p] = append([]byte(nil), f.tgz[:len(f.tgz)-1]...)
		}
		f.up.mu.Unlock()
		alarms, err := m.Check(context.Background(), "tuf-js")
		if err != nil || len(alarms) != 1 || alarms[0].Kind != AlarmMismatch {
			t.Fatalf("monitor over swapped bytes: %v %+v", err, alarms)
		}
	})
}

func TestGateRequireStage(t *testing.T) {
	f := newGateFixture(t, "sqlite:"+filepath.Join(t.TempDir(), "gate.db"))
	f.gate.cfg.RequireStage = true
	var e map[string]string
	code, _ := f.do(http.MethodPut, "/tuf-js", publishDoc(t, "tuf-js", "1.0.0", f.tgz, nil), &e)
	if code != http.StatusForbidden || !strings.Contains(e["error"], "npm stage publish") {
		t.Fatalf("plain publish with --require-stage: %d %v", code, e)
	}
	if n, _, _ := f.store.ListStages(context.Background(), "", "", 0, 10); len(n) != 0 {
		t.Fatalf("a refused publish was staged: %+v", n)
	}
	big := bytes.Repeat([]byte("x"), MaxPublishBytes+1)
	if code, _ := f.do(http.MethodPost, "/-/stage/package/tuf-js", big, &e); code != http.StatusRequestEntityTooLarge || !strings.Contains(e["error"], "limit") {
		t.Fatalf("oversized publish: %d %v", code, e)
	}
}

// TestGateHostileSubmissions sends malformed, oversized, partially signed,
// wrongly signed, wrong-package, development, replayed and rolled-back
// submissions: each is refused with its reason and the staged upload stays.
func TestGateHostileSubmissions(t *testing.T) {
	runGateStores(t, func(t *testing.T, spec string) {
		f := newGateFixture(t, spec)
		id := f.stage("tuf-js", "1.0.0", f.tgz, f.prov)
		req := f.bundle(id)
		otherTgz := []byte("other package bytes")
		other := f.stage("other-pkg", "2.0.0", otherTgz, nil)
		otherReq := f.bundle(other)

		// Bob's response carrying Alice's signature bytes.
		ab := f.sign(req, "alice", "bob")
		var ra, rb tuf.Response
		json.Unmarshal(ab[0], &ra)
		json.Unmarshal(ab[1], &rb)
		rb.Signatures[0].Sig = ra.Signatures[0].Sig
		forged, _ := json.Marshal(rb)
		wrongSig := []json.RawMessage{ab[0], forged}

		cases := []struct {
			name   string
			body   []byte
			subs   []json.RawMessage
			code   int
			reason string
		}{
			{name: "malformed", body: []byte("{not json"), code: http.StatusBadRequest, reason: "submission: want"},
			{name: "not a response", subs: []json.RawMessage{json.RawMessage(`{"hello":"world"}`)}, code: http.StatusUnprocessableEntity, reason: "neither a signature response"},
			{name: "oversized", subs: []json.RawMessage{json.RawMessage(`"` + strings.Repeat("a", MaxSubmissionBytes) + `"`)}, code: http.StatusRequestEntityTooLarge, reason: "the limit is"},
			{name: "too many", subs: make([]json.RawMessage, MaxSubmissions+1), code: http.StatusBadRequest, reason: "give 1 to"},
			{name: "partially signed", subs: f.sign(req, "alice"), code: http.StatusUnprocessableEntity, reason: "threshold is 2"},
			{name: "wrongly signed", subs: wrongSig, code: http.StatusUnprocessableEntity, reason: "does not verify over the request's bytes"},
			{name: "wrong package", subs: f.sign(otherReq, "alice", "bob"), code: http.StatusUnprocessableEntity, reason: "response is for other bytes"},
		}
		for i := range cases[3].subs {
			cases[3].subs[i] = json.RawMessage(`{}`)
		}
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				body := c.body
				if body == nil {
					body, _ = json.Marshal(Submission{Submissions: c.subs})
				}
				var e map[string]string
				code, _ := f.do(http.MethodPost, "/-/airlock/stage/"+id+"/responses", body, &e)
				if code != c.code || !strings.Contains(e["error"], c.reason) {
					t.Fatalf("got %d %q, want %d with %q", code, e["error"], c.code, c.reason)
				}
				st, _ := f.store.GetStage(context.Background(), id)
				if st.State != StateStaged {
					t.Fatalf("stage is %s", st.State)
				}
				f.intact(id, f.tgz, "")
			})
		}
		// Refusals the gate ran the verification for are recorded.
		f.intact(id, f.tgz, "is for other bytes")

		// Development responses are refused by a gate without --dev.
		dev := httptest.NewServer(f.devRefuser)
		defer dev.Close()
		body, _ := json.Marshal(Submission{Submissions: f.sign(req, "alice", "bob")})
		resp, err := http.Post(dev.URL+"/-/airlock/stage/"+id+"/responses", "application/json", bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(string(b), "development keys") {
			t.Fatalf("development responses without --dev: %d %s", resp.StatusCode, b)
		}
		f.intact(id, f.tgz, "development keys")

		// The right signatures publish.
		good := f.sign(req, "alice", "bob")
		if code, state := f.submit(id, good); code != http.StatusOK || state != StatePublished {
			t.Fatalf("two of two: %d %s", code, state)
		}
		published, _ := f.store.RepoMetadata(context.Background())

		// Replayed: the published version's responses for a new version.
		tgz2 := append([]byte("1.0.1 "), f.tgz...)
		id2 := f.stage("tuf-js", "1.0.1", tgz2, nil)
		f.bundle(id2)
		code, reason := f.submit(id2, good)
		if code != http.StatusUnprocessableEntity || !strings.Contains(reason, "signs tuf-js version 1") || !strings.Contains(reason, "response is for other bytes") {
			t.Fatalf("replayed responses: %d %s", code, reason)
		}
		f.intact(id2, tgz2, "submission refused")

		// Rolled back: the role's current signed metadata (already
		// published) handed in as the new version's combined metadata.
		var cur []byte
		for p, b := range published {
			if strings.HasSuffix(p, ".tuf-js.json") {
				cur = b
			}
		}
		if cur == nil {
			t.Fatal("no published tuf-js metadata")
		}
		code, reason = f.submit(id2, []json.RawMessage{cur})
		if code != http.StatusUnprocessableEntity || !strings.Contains(reason, "other content than the bundle's") {
			t.Fatalf("rolled-back metadata: %d %s", code, reason)
		}
		f.intact(id2, tgz2, "other content")

		// A submission for a published stage is refused as such.
		if code, reason := f.submit(id, good); code != http.StatusConflict || !strings.Contains(reason, "is published") {
			t.Fatalf("submission for a published stage: %d %s", code, reason)
		}
		if f.up.publishes != 1 {
			t.Fatalf("%d upstream publishes, want 1", f.up.publishes)
		}
	})
}

func TestGateKeys(t *testing.T) {
	f := newGateFixture(t, "sqlite:"+filepath.Join(t.TempDir(), "gate.db"))
	var keys struct {
		Keys []struct{ Keyid, Keytype, Scheme, Key string } `json:"keys"`
	}
	f.do(http.MethodGet, "/-/npm/v1/keys", nil, &keys)
	if len(keys.Keys) != 1 || keys.Keys[0].Keyid != f.gate.KeyID() || keys.Keys[0].Scheme != "ecdsa-sha2-nistp256" {
		t.Fatalf("keys: %+v", keys)
	}
	if got := fmt.Sprint(len(f.gate.KeyID())); got != "50" {
		t.Fatalf("key id %q: want SHA256: and 43 base64 characters", f.gate.KeyID())
	}
}

// FuzzPackageName checks the gate's reading of package names from request
// paths: no panic, only valid names accepted, and npm's escaped form of an
// accepted name reads back as the same name.
func FuzzPackageName(f *testing.F) {
	for _, s := range []string{"/tuf-js", "/@scope%2fpkg", "/@scope/pkg", "/a/-/a-1.0.0.tgz", "/%zz", "/-/whoami", "/@x%2F..", "/.hidden", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, p string) {
		name, ok := packageName(p)
		if !ok {
			return
		}
		if err := CheckName(name); err != nil {
			t.Fatalf("accepted %q from %q: %v", name, p, err)
		}
		if again, ok := packageName("/" + EscapedName(name)); !ok || again != name {
			t.Fatalf("%q escapes to %q, which reads back as %q %v", name, EscapedName(name), again, ok)
		}
	})
}
