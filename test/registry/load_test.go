package registry_test

import (
	"bytes"
	"context"
	"crypto/sha1"
	"crypto/sha512"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/theupdateframework/go-tuf/v2/metadata"

	"airlock.dev/airlock/hsm"
	"airlock.dev/airlock/internal/online"
	"airlock.dev/airlock/registry"
	"airlock.dev/airlock/registry/pgtest"
	"airlock.dev/airlock/tuf"
)

// loadFlowsDefault is how many stage → sign → verify → publish flows run
// at once; AIRLOCK_LOAD_FLOWS changes it for a quick local run.
const loadFlowsDefault = 200

func loadFlowCount(t *testing.T) int {
	if v := os.Getenv("AIRLOCK_LOAD_FLOWS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			t.Fatalf("AIRLOCK_LOAD_FLOWS=%q: want a positive number", v)
		}
		return n
	}
	return loadFlowsDefault
}

// loadRepo makes a repository with one role per package (pkg-000 …),
// each delegated 2-of-2 to two development keys.
func loadRepo(t *testing.T, n int) (dir, onlineKey string, signers []hsm.Signer, root []byte) {
	t.Helper()
	base := t.TempDir()
	now := time.Now()
	key := func(name string) hsm.Signer {
		s, err := hsm.GenerateFileKey(filepath.Join(base, name+".pem"), hsm.ECDSAP256, name, nil)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	rootKey, targets, onl, alice, bob := key("root"), key("targets"), key("online"), key("alice"), key("bob")
	dir = filepath.Join(base, "repo")
	repo, err := tuf.Init(dir, tuf.InitOptions{Root: []hsm.Signer{rootKey}, RootThreshold: 1, Targets: []hsm.Signer{targets}, TargetsThreshold: 1, Online: onl, Now: now})
	if err != nil {
		t.Fatal(err)
	}
	next, _ := repo.NextTargets("targets", now.Add(30*24*time.Hour))
	ka, _ := tuf.KeyFromSigner(alice)
	kb, _ := tuf.KeyFromSigner(bob)
	for i := range n {
		name := loadName(i)
		if err := tuf.SetDelegation(next, tuf.DelegationSpec{Name: name, Keys: []*metadata.Key{ka, kb}, Threshold: 2, Paths: []string{name + "/-/*"}}); err != nil {
			t.Fatal(err)
		}
	}
	td, _ := repo.Delegation("targets")
	tuf.SignAll(next, td, []hsm.Signer{targets})
	if err := repo.CommitTargets("targets", next, onl, now); err != nil {
		t.Fatal(err)
	}
	root, err = os.ReadFile(filepath.Join(dir, "metadata", "1.root.json"))
	if err != nil {
		t.Fatal(err)
	}
	return dir, "file:" + filepath.Join(base, "online.pem"), []hsm.Signer{alice, bob}, root
}

func loadName(i int) string { return fmt.Sprintf("pkg-%03d", i) }

func loadDoc(name, version string, tgz []byte) []byte {
	s1, s512 := sha1.Sum(tgz), sha512.Sum512(tgz)
	b, _ := json.Marshal(map[string]any{"_id": name, "name": name, "dist-tags": map[string]string{"latest": version},
		"versions": map[string]any{version: map[string]any{"name": name, "version": version, "_id": name + "@" + version,
			"dist": map[string]string{"shasum": hex.EncodeToString(s1[:]), "integrity": "sha512-" + base64.StdEncoding.EncodeToString(s512[:]),
				"tarball": "http://127.0.0.1/" + name + "/-/" + name + "-" + version + ".tgz"}}},
		"_attachments": map[string]any{name + "-" + version + ".tgz": map[string]any{"content_type": "application/octet-stream",
			"data": base64.StdEncoding.EncodeToString(tgz), "length": len(tgz)}}})
	return b
}

// errGateDown means the request did not get an answer (the gate was
// killed): the flow retries.
var errGateDown = errors.New("gate down")

func call(ctx context.Context, method, u, token string, body []byte, out any) (int, string, error) {
	req, _ := http.NewRequestWithContext(ctx, method, u, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := (&http.Client{Timeout: 2 * time.Minute}).Do(req)
	if err != nil {
		return 0, "", fmt.Errorf("%w: %v", errGateDown, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, "", fmt.Errorf("%w: %v", errGateDown, err)
	}
	var e struct {
		Error string `json:"error"`
	}
	json.Unmarshal(b, &e)
	if resp.StatusCode/100 == 2 && out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			return resp.StatusCode, "", fmt.Errorf("%s %s: %v", method, u, err)
		}
	}
	return resp.StatusCode, e.Error, nil
}

// flow stages one version, has it signed and submitted, and waits until
// it is published, retrying whatever a killed gate interrupted.
func flow(ctx context.Context, gates func() string, token, name string, tgz []byte, signers []hsm.Signer, counts *loadCounts) (string, error) {
	version := "1.0.0"
	doc := loadDoc(name, version, tgz)
	id := ""
	for id == "" {
		if ctx.Err() != nil {
			return "", ctx.Err()
		}
		var res struct {
			StageID string `json:"stageId"`
		}
		code, reason, err := call(ctx, http.MethodPost, gates()+"/-/stage/package/"+name, token, doc, &res)
		switch {
		case errors.Is(err, errGateDown), code == http.StatusBadGateway:
			counts.retries.Add(1)
			time.Sleep(100 * time.Millisecond) // backing off while the gate restarts
		case err != nil:
			return "", err
		case code == http.StatusCreated:
			id = res.StageID
		case code == http.StatusConflict && strings.Contains(reason, "already staged"):
			// An earlier attempt was stored before the gate died.
			var list struct {
				Items []struct {
					ID      string `json:"id"`
					Shasum  string `json:"shasum"`
					Version string `json:"version"`
				} `json:"items"`
			}
			if _, _, err := call(ctx, http.MethodGet, gates()+"/-/stage?state=all&package="+name, "", nil, &list); err != nil {
				continue
			}
			for _, it := range list.Items {
				if it.Version == version {
					id = it.ID
				}
			}
		default:
			return "", fmt.Errorf("stage %s: %d %s", name, code, reason)
		}
	}
	counts.staged.Add(1)
	for {
		if ctx.Err() != nil {
			return id, ctx.Err()
		}
		var st map[string]any
		code, _, err := call(ctx, http.MethodGet, gates()+"/-/stage/"+id, "", nil, &st)
		if err != nil || code != http.StatusOK {
			counts.retries.Add(1)
			time.Sleep(100 * time.Millisecond) // backing off while the gate restarts
			continue
		}
		switch st["state"] {
		case registry.StatePublished:
			return id, nil
		case registry.StateApproved:
			time.Sleep(200 * time.Millisecond) // a restarted gate forwards it
			continue
		case registry.StateRejected:
			return id, fmt.Errorf("%s was rejected: %v", name, st["reason"])
		}
		var b registry.BundleFiles
		if code, reason, err := call(ctx, http.MethodGet, gates()+"/-/airlock/stage/"+id+"/bundle", "", nil, &b); err != nil || code != http.StatusOK {
			if err != nil && !errors.Is(err, errGateDown) {
				return id, err
			}
			_ = reason
			counts.retries.Add(1)
			continue
		}
		req, err := tuf.ParseRequest(b.Files["request.json"])
		if err != nil {
			return id, err
		}
		var sub registry.Submission
		for _, s := range signers {
			r, err := online.Sign(req, []hsm.Signer{s}, time.Now())
			if err != nil {
				return id, err
			}
			raw, _ := r.Marshal()
			sub.Submissions = append(sub.Submissions, raw)
		}
		body, _ := json.Marshal(sub)
		code, reason, err := call(ctx, http.MethodPost, gates()+"/-/airlock/stage/"+id+"/responses", "", body, nil)
		switch {
		case errors.Is(err, errGateDown):
			counts.retries.Add(1)
		case err != nil:
			return id, err
		case code == http.StatusOK || code == http.StatusAccepted || code == http.StatusConflict:
		case code == http.StatusUnprocessableEntity && strings.Contains(reason, "role changed"):
			counts.stale.Add(1)
		default:
			return id, fmt.Errorf("submit %s: %d %s", name, code, reason)
		}
	}
}

type loadCounts struct {
	staged, retries, stale, kills atomic.Int64
}

func TestGateLoadWithRestarts(t *testing.T) {
	checkNPM(t)
	airlock(t)
	loadFlows := loadFlowCount(t)
	repoDir, onlineKey, signers, root := loadRepo(t, loadFlows)
	t.Run("sqlite", func(t *testing.T) {
		gateLoad(t, loadFlows, repoDir, onlineKey, signers, root, "sqlite:"+filepath.Join(t.TempDir(), "gate.db"), 1)
	})
	t.Run("postgres", func(t *testing.T) {
		gateLoad(t, loadFlows, repoDir, onlineKey, signers, root, pgtest.Start(t), 2)
	})
}

func gateLoad(t *testing.T, loadFlows int, repoDir, onlineKey string, signers []hsm.Signer, root []byte, store string, replicas int) {
	upstream := verdaccio(t)
	token := login(t, upstream)
	var gates []*gateProc
	for range replicas {
		port := freePort(t)
		gates = append(gates, startGate(t, "--upstream", upstream, "--repo", repoDir, "--online-key", onlineKey, "--store", store,
			"--listen", "127.0.0.1:"+strconv.Itoa(port), "--dev"))
	}
	var next atomic.Int64
	pick := func() string { return gates[int(next.Add(1))%len(gates)].url }

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	var counts loadCounts
	// The killer: kill -9 a random gate at random moments and restart it,
	// at most maxKills times so that the run stays bounded.
	const maxKills = 15
	stopKiller := make(chan struct{})
	killerDone := make(chan error, 1)
	go func() {
		rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 7))
		for {
			select {
			case <-stopKiller:
				killerDone <- nil
				return
			case <-time.After(time.Duration(1500+rng.IntN(4500)) * time.Millisecond): // random moments, not a timed assertion
			}
			if counts.kills.Load() >= maxKills {
				continue
			}
			g := gates[rng.IntN(len(gates))]
			g.stop(syscall.SIGKILL)
			counts.kills.Add(1)
			if err := g.start(); err != nil {
				killerDone <- err
				return
			}
		}
	}()

	start := time.Now()
	var wg sync.WaitGroup
	errs := make([]error, loadFlows)
	ids := make([]string, loadFlows)
	tarballs := make([][]byte, loadFlows)
	for i := range loadFlows {
		tarballs[i] = []byte(fmt.Sprintf("tarball of %s, flow %d, %d\n", loadName(i), i, time.Now().UnixNano()))
		wg.Add(1)
		go func() {
			defer wg.Done()
			ids[i], errs[i] = flow(ctx, pick, token, loadName(i), tarballs[i], signers, &counts)
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	close(stopKiller)
	if err := <-killerDone; err != nil {
		t.Fatalf("restarting a killed gate: %v", err)
	}
	for i, err := range errs {
		if err != nil {
			t.Errorf("flow %d (%s): %v", i, loadName(i), err)
		}
	}
	if t.Failed() {
		return
	}

	// Every version Verdaccio serves matches its signed target, and every
	// staged upload was published: the monitor over Verdaccio itself.
	vu, _ := url.Parse(upstream)
	tu, _ := url.Parse(gates[0].url + "/tuf")
	m := &registry.Monitor{Registry: vu, Repo: tuf.HTTPFetcher{Base: tu}, Root: root}
	for i := range loadFlows {
		alarms, err := m.Check(context.Background(), loadName(i))
		if err != nil || len(alarms) != 0 {
			t.Errorf("%s: %v %+v", loadName(i), err, alarms)
		}
		var doc struct {
			Versions map[string]json.RawMessage `json:"versions"`
		}
		if code, _, err := call(context.Background(), http.MethodGet, upstream+"/"+loadName(i), "", nil, &doc); err != nil || code != 200 || doc.Versions["1.0.0"] == nil {
			t.Errorf("%s@1.0.0 is not served by Verdaccio: %d %v", loadName(i), code, err)
		}
	}
	t.Logf("%d flows on %s with %d gate(s): %d published in %s (%.1f flows/s), %d kills, %d retried requests, %d stale bundles re-signed",
		loadFlows, strings.SplitN(store, ":", 2)[0], replicas, counts.staged.Load(), elapsed.Round(time.Millisecond),
		float64(loadFlows)/elapsed.Seconds(), counts.kills.Load(), counts.retries.Load(), counts.stale.Load())

	// For comparison (printed, not asserted): the same number of publishes
	// straight to Verdaccio, as concurrent.
	direct := time.Now()
	for i := range loadFlows {
		wg.Add(1)
		go func() {
			defer wg.Done()
			name := fmt.Sprintf("direct-%03d", i)
			code, reason, err := call(ctx, http.MethodPut, upstream+"/"+name, token, loadDoc(name, "1.0.0", tarballs[i]), nil)
			if err != nil || code/100 != 2 {
				t.Errorf("direct publish of %s: %d %s %v", name, code, reason, err)
			}
		}()
	}
	wg.Wait()
	directElapsed := time.Since(direct)
	t.Logf("%d direct publishes to Verdaccio in %s (%.1f/s); gated flows with restarts / direct publishes = %.2fx",
		loadFlows, directElapsed.Round(time.Millisecond), float64(loadFlows)/directElapsed.Seconds(), directElapsed.Seconds()/elapsed.Seconds())
	for _, g := range gates {
		if n := strings.Count(g.logs(), "published upstream"); n == 0 {
			t.Logf("gate %s published nothing upstream itself", g.url)
		}
	}
}

// publishRateDefault is how many packages TestGatePublishRate publishes
// each way; AIRLOCK_PUBLISH_N changes it (scripts/bench-gate-publish.sh).
const publishRateDefault = 40

// TestGatePublishRate compares publishing through the gate, as a
// publisher experiences it, with publishing the same publish documents to
// Verdaccio directly, on the same machine in the same run, at the same
// concurrency (all N at once), and checks every gated publish. Each phase
// is timed from its first request to its last answer:
//
//	stage   N npm publish documents POSTed to the gate (npm stage publish)
//	bundle  N bundles fetched from the gate (airlock gate bundle)
//	        -- the N bundles are signed here, untimed (the appliance) --
//	submit  N submissions of those responses, each until its version is
//	        published upstream: verified, written to the TUF repository
//	        (role, snapshot, timestamp, checked by the client) and the
//	        tarball forwarded to the gate's Verdaccio
//	direct  the same N publish documents PUT to a second, fresh
//	        Verdaccio (npm publish without the gate)
//
// Both Verdaccios get a few untimed warm-up publishes of other packages
// first. It logs the rates of stage+bundle+submit (end to end without the
// signing) and of submit alone against direct; nothing about speed is
// asserted.
func TestGatePublishRate(t *testing.T) {
	checkNPM(t)
	airlock(t)
	n := publishRateDefault
	if v := os.Getenv("AIRLOCK_PUBLISH_N"); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil || n < 1 {
			t.Fatalf("AIRLOCK_PUBLISH_N=%q: want a positive number", v)
		}
	}
	store := "sqlite:" + filepath.Join(t.TempDir(), "gate.db")
	if os.Getenv("AIRLOCK_PUBLISH_STORE") == "postgres" {
		store = pgtest.Start(t)
	}
	repoDir, onlineKey, signers, root := loadRepo(t, n)
	upstream, directUpstream := verdaccio(t), verdaccio(t)
	token, directToken := login(t, upstream), login(t, directUpstream)
	g := startGate(t, "--upstream", upstream, "--repo", repoDir, "--online-key", onlineKey, "--store", store,
		"--listen", "127.0.0.1:"+strconv.Itoa(freePort(t)), "--dev")
	ctx := context.Background()
	docs := make([][]byte, n)
	for i := range n {
		docs[i] = loadDoc(loadName(i), "1.0.0", []byte(fmt.Sprintf("tarball of %s, %d\n", loadName(i), time.Now().UnixNano())))
	}
	// Verdaccio's first requests are slower (it loads and compiles code):
	// a few untimed publishes of other packages to each first.
	for i := range 3 {
		name := fmt.Sprintf("warmup-%d", i)
		for _, u := range []struct{ url, token string }{{upstream, token}, {directUpstream, directToken}} {
			if code, reason, err := call(ctx, http.MethodPut, u.url+"/"+name, u.token, loadDoc(name, "1.0.0", []byte(name)), nil); err != nil || code/100 != 2 {
				t.Fatalf("warm-up publish: %d %s %v", code, reason, err)
			}
		}
	}
	// all runs step for every package at once and returns how long the
	// slowest took; the first failure fails the test.
	all := func(what string, step func(i int) error) time.Duration {
		t.Helper()
		var wg sync.WaitGroup
		errs := make([]error, n)
		start := time.Now()
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				errs[i] = step(i)
			}()
		}
		wg.Wait()
		elapsed := time.Since(start)
		for i, err := range errs {
			if err != nil {
				t.Fatalf("%s of %s: %v", what, loadName(i), err)
			}
		}
		return elapsed
	}

	ids := make([]string, n)
	staged := all("stage", func(i int) error {
		var res struct {
			StageID string `json:"stageId"`
		}
		code, reason, err := call(ctx, http.MethodPost, g.url+"/-/stage/package/"+loadName(i), token, docs[i], &res)
		if err != nil || code != http.StatusCreated {
			return fmt.Errorf("%d %s %v", code, reason, err)
		}
		ids[i] = res.StageID
		return nil
	})
	requests := make([][]byte, n)
	bundled := all("bundle", func(i int) error {
		var b registry.BundleFiles
		if code, reason, err := call(ctx, http.MethodGet, g.url+"/-/airlock/stage/"+ids[i]+"/bundle", "", nil, &b); err != nil || code != http.StatusOK {
			return fmt.Errorf("%d %s %v", code, reason, err)
		}
		requests[i] = b.Files["request.json"]
		return nil
	})
	bodies := make([][]byte, n)
	signed := all("signing", func(i int) error {
		req, err := tuf.ParseRequest(requests[i])
		if err != nil {
			return err
		}
		var sub registry.Submission
		for _, s := range signers {
			r, err := online.Sign(req, []hsm.Signer{s}, time.Now())
			if err != nil {
				return err
			}
			raw, _ := r.Marshal()
			sub.Submissions = append(sub.Submissions, raw)
		}
		bodies[i], _ = json.Marshal(sub)
		return nil
	})
	submitted := all("submit", func(i int) error {
		code, reason, err := call(ctx, http.MethodPost, g.url+"/-/airlock/stage/"+ids[i]+"/responses", "", bodies[i], nil)
		if err != nil || (code != http.StatusOK && code != http.StatusAccepted) {
			return fmt.Errorf("%d %s %v", code, reason, err)
		}
		for {
			var st map[string]any
			if code, _, err := call(ctx, http.MethodGet, g.url+"/-/stage/"+ids[i], "", nil, &st); err != nil || code != http.StatusOK {
				return fmt.Errorf("stage state: %d %v", code, err)
			}
			if st["state"] == registry.StatePublished {
				return nil
			}
			if st["state"] != registry.StateApproved {
				return fmt.Errorf("stage is %v: %v", st["state"], st["reason"])
			}
			time.Sleep(20 * time.Millisecond) // polling until forwarded
		}
	})
	direct := all("direct publish", func(i int) error {
		if code, reason, err := call(ctx, http.MethodPut, directUpstream+"/"+loadName(i), directToken, docs[i], nil); err != nil || code/100 != 2 {
			return fmt.Errorf("%d %s %v", code, reason, err)
		}
		return nil
	})

	// Every gated version is served by Verdaccio and matches its signed
	// target.
	vu, _ := url.Parse(upstream)
	tu, _ := url.Parse(g.url + "/tuf")
	m := &registry.Monitor{Registry: vu, Repo: tuf.HTTPFetcher{Base: tu}, Root: root}
	for i := range n {
		alarms, err := m.Check(ctx, loadName(i))
		if err != nil || len(alarms) != 0 {
			t.Errorf("%s: %v %+v", loadName(i), err, alarms)
		}
	}
	rate := func(d time.Duration) float64 { return float64(n) / d.Seconds() }
	gated := staged + bundled + submitted
	writes := strings.Count(g.logs(), "with one snapshot and timestamp")
	r := func(d time.Duration) string { return d.Round(time.Millisecond).String() }
	t.Logf("store %s, %d packages, all at once in each phase", strings.SplitN(store, ":", 2)[0], n)
	t.Logf("phases: stage %s, bundle %s, (signing %s, not counted), submit until published upstream %s (%d repository writes)", r(staged), r(bundled), r(signed), r(submitted), writes)
	t.Logf("gated end to end without signing (stage + bundle + submit): %s = %.1f publishes/s", r(gated), rate(gated))
	t.Logf("gated submission only (submit until published upstream): %s = %.1f publishes/s", r(submitted), rate(submitted))
	t.Logf("direct: the same %d publish documents to Verdaccio: %s = %.1f publishes/s", n, r(direct), rate(direct))
	t.Logf("end to end without signing / direct publishes per second = %.2fx", rate(gated)/rate(direct))
	t.Logf("submission only / direct publishes per second = %.2fx", rate(submitted)/rate(direct))
}
