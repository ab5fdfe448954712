package registry

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"airlock.dev/airlock/appliance/provenance"
	"airlock.dev/airlock/hsm"
)

// Caps on what the gate reads besides publish documents.
const (
	MaxSubmitBytes   = MaxSubmissions * MaxSubmissionBytes // one POST of responses
	MaxWhoamiBytes   = 64 << 10
	MaxStagePage     = 100
	upstreamTimeout  = 2 * time.Minute
	publishRetryWait = 30 * time.Second
)

// GateConfig wires a Gate.
type GateConfig struct {
	Upstream *url.URL
	Store    Store
	Releaser Releaser
	// Online signs snapshot, timestamp and the npm registry signatures
	// (dist.signatures); it must be an ECDSA P-256 key, as npm checks
	// registry signatures with ecdsa-sha2-nistp256.
	Online hsm.Signer
	// RequireStage refuses a plain npm publish instead of staging it.
	RequireStage bool
	// Provenance, when set, verifies every provenance bundle at staging
	// against pinned Sigstore trust.
	Provenance *provenance.Verifier
	// Now is the clock (default time.Now).
	Now func() time.Time
	// Log receives one line per state change (default: discarded).
	Log *log.Logger
	// Client reaches the upstream registry (default: a client with a timeout).
	Client *http.Client
}

// Gate is an HTTP reverse proxy in front of an npm registry that stages
// every publish until a threshold of offline signatures approves the exact
// tarball, then publishes the signed TUF metadata and forwards the tarball
// upstream. It is safe for concurrent use; several gates may share one
// PostgreSQL store.
type Gate struct {
	cfg   GateConfig
	proxy *httputil.ReverseProxy
	keyID string
	spki  []byte

	mu        sync.Mutex
	roleStamp []byte // timestamp.json the role cache was filled from
	roles     map[string]roleInfo
	who       map[[32]byte]whoamiEntry   // whoami answers by credentials
	asking    map[[32]byte]chan struct{} // whoami questions under way
}

type roleInfo struct {
	role            string
	threshold, keys int
	err             error
}

// NewGate checks the configuration and builds a gate.
func NewGate(cfg GateConfig) (*Gate, error) {
	if cfg.Upstream == nil || (cfg.Upstream.Scheme != "http" && cfg.Upstream.Scheme != "https") || cfg.Upstream.Host == "" {
		return nil, errors.New("gate: the upstream must be an http(s) URL such as http://127.0.0.1:4873")
	}
	if cfg.Store == nil || cfg.Releaser == nil || cfg.Online == nil {
		return nil, errors.New("gate: store, releaser and online key are required")
	}
	pub, ok := cfg.Online.Public().(*ecdsa.PublicKey)
	if !ok || pub.Curve != elliptic.P256() {
		return nil, fmt.Errorf("gate: the online key %s must be ECDSA P-256 (npm verifies registry signatures with ecdsa-sha2-nistp256)", cfg.Online.URI())
	}
	spki, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil, err
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Log == nil {
		cfg.Log = log.New(io.Discard, "", 0)
	}
	if cfg.Client == nil {
		cfg.Client = &http.Client{Timeout: upstreamTimeout}
	}
	sum := sha256.Sum256(spki)
	g := &Gate{cfg: cfg, spki: spki, keyID: "SHA256:" + base64.RawStdEncoding.EncodeToString(sum[:])}
	up := cfg.Upstream
	g.proxy = &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) {
			r.SetURL(up)
			r.Out.Host = r.In.Host // tarball URLs keep naming the gate
		},
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			refuse(w, http.StatusBadGateway, "the upstream registry did not answer: "+err.Error())
		},
	}
	return g, nil
}

// KeyID is the npm key id of the gate's registry signatures.
func (g *Gate) KeyID() string { return g.keyID }

// refuse answers an npm client with a reason it prints.
func refuse(w http.ResponseWriter, code int, reason string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(map[string]string{"error": reason})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(v)
}

// readCapped reads a request body up to max bytes.
func readCapped(r *http.Request, max int64, what string) ([]byte, error) {
	if r.ContentLength > max {
		return nil, fmt.Errorf("%s is %d bytes, the limit is %d", what, r.ContentLength, max)
	}
	b, err := io.ReadAll(io.LimitReader(r.Body, max+1))
	if err != nil {
		return nil, fmt.Errorf("reading %s: %v", what, err)
	}
	if int64(len(b)) > max {
		return nil, fmt.Errorf("%s is over the %d-byte limit", what, max)
	}
	return b, nil
}

// packageName reads a package name from one escaped path (npm sends
// @scope%2fname; @scope/name is accepted too). ok is false for any other
// path.
func packageName(escaped string) (string, bool) {
	p, err := url.PathUnescape(strings.TrimPrefix(escaped, "/"))
	if err != nil || p == "" {
		return "", false
	}
	if strings.HasPrefix(p, "@") {
		if strings.Count(p, "/") != 1 {
			return "", false
		}
	} else if strings.Contains(p, "/") {
		return "", false
	}
	if CheckName(p) != nil {
		return "", false
	}
	return p, true
}

// EscapedName is a package name as npm puts it in a URL path.
func EscapedName(name string) string { return strings.Replace(name, "/", "%2f", 1) }

func (g *Gate) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	path := r.URL.EscapedPath()
	switch {
	case strings.HasPrefix(path, "/-/stage/package/") && r.Method == http.MethodPost:
		name, ok := packageName(strings.TrimPrefix(path, "/-/stage/package/"))
		if !ok {
			refuse(w, http.StatusBadRequest, "stage publish: the path does not name an npm package")
			return
		}
		g.stage(w, r, name, false)
	case path == "/-/stage" && r.Method == http.MethodGet:
		g.listStages(w, r)
	case strings.HasPrefix(path, "/-/stage/"):
		g.stageRoute(w, r, strings.TrimPrefix(path, "/-/stage/"))
	case strings.HasPrefix(path, "/-/airlock/stage/"):
		g.airlockRoute(w, r, strings.TrimPrefix(path, "/-/airlock/stage/"))
	case path == "/-/npm/v1/keys" && r.Method == http.MethodGet:
		writeJSON(w, http.StatusOK, map[string]any{"keys": []map[string]any{{
			"expires": nil, "keyid": g.keyID, "keytype": "ecdsa-sha2-nistp256", "scheme": "ecdsa-sha2-nistp256",
			"key": base64.StdEncoding.EncodeToString(g.spki)}}})
	case strings.HasPrefix(path, "/-/npm/v1/attestations/") && r.Method == http.MethodGet:
		g.attestations(w, r, strings.TrimPrefix(path, "/-/npm/v1/attestations/"))
	case strings.HasPrefix(path, "/tuf/") && r.Method == http.MethodGet:
		g.tufFile(w, r, strings.TrimPrefix(path, "/tuf/"))
	case r.Method == http.MethodPut:
		name, ok := packageName(path)
		if !ok {
			g.proxy.ServeHTTP(w, r)
			return
		}
		body, err := readCapped(r, MaxPublishBytes, "publish document")
		if err != nil {
			refuse(w, http.StatusRequestEntityTooLarge, err.Error())
			return
		}
		if !hasAttachments(body) { // deprecate and other metadata edits
			r.Body, r.ContentLength = io.NopCloser(bytes.NewReader(body)), int64(len(body))
			g.proxy.ServeHTTP(w, r)
			return
		}
		if g.cfg.RequireStage {
			refuse(w, http.StatusForbidden, "this registry accepts only staged publishes through the Airlock gate: run npm stage publish, then have the release signed")
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		g.stage(w, r, name, true)
	case r.Method == http.MethodGet || r.Method == http.MethodHead:
		if name, ok := packageName(path); ok {
			g.packument(w, r, name)
			return
		}
		g.proxy.ServeHTTP(w, r)
	default:
		g.proxy.ServeHTTP(w, r)
	}
}

func hasAttachments(body []byte) bool {
	var doc struct {
		Attachments map[string]json.RawMessage `json:"_attachments"`
	}
	return json.Unmarshal(body, &doc) == nil && len(doc.Attachments) > 0
}

// whoamiTTL is how long an upstream whoami answer is reused for the same
// credentials. It only names the actor of a stage or a rejection: the
// upstream registry checks the stored credentials again when the approved
// version is forwarded.
const (
	whoamiTTL    = 30 * time.Second
	whoamiCached = 1024
)

type whoamiEntry struct {
	user    string
	expires time.Time
}

// whoami asks the upstream registry who the request's credentials belong
// to; the gate authenticates nobody itself. An accepted answer is kept
// for whoamiTTL, by the SHA-256 of the credentials.
func (g *Gate) whoami(ctx context.Context, auth string) (string, error) {
	if auth == "" {
		return "", errors.New("not logged in: run npm login against this registry first")
	}
	key := sha256.Sum256([]byte(auth))
	for {
		now := time.Now()
		g.mu.Lock()
		e, ok := g.who[key]
		if ok && now.Before(e.expires) {
			g.mu.Unlock()
			return e.user, nil
		}
		// One question upstream per credentials at a time: the others
		// wait for its answer.
		if wait, asking := g.asking[key]; asking {
			g.mu.Unlock()
			select {
			case <-wait:
				continue
			case <-ctx.Done():
				return "", ctx.Err()
			}
		}
		if g.asking == nil {
			g.asking = map[[32]byte]chan struct{}{}
		}
		done := make(chan struct{})
		g.asking[key] = done
		g.mu.Unlock()
		user, err := g.askWhoami(ctx, auth)
		g.mu.Lock()
		delete(g.asking, key)
		close(done)
		if err == nil {
			if g.who == nil || len(g.who) >= whoamiCached {
				g.who = map[[32]byte]whoamiEntry{}
			}
			g.who[key] = whoamiEntry{user, now.Add(whoamiTTL)}
		}
		g.mu.Unlock()
		return user, err
	}
}

func (g *Gate) askWhoami(ctx context.Context, auth string) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, g.cfg.Upstream.JoinPath("/-/whoami").String(), nil)
	if err != nil {
		return "", err
	}
	req.Header.Set("Authorization", auth)
	resp, err := g.cfg.Client.Do(req)
	if err != nil {
		return "", fmt.Errorf("the upstream registry did not answer whoami: %v", err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, MaxWhoamiBytes))
	var who struct {
		Username string `json:"username"`
	}
	if resp.StatusCode != http.StatusOK || json.Unmarshal(b, &who) != nil || who.Username == "" {
		return "", fmt.Errorf("the upstream registry does not accept these credentials (whoami answered %d): run npm login", resp.StatusCode)
	}
	return who.Username, nil
}

func newStageID() (string, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b[:])
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:], nil
}

func validStageID(id string) bool {
	if len(id) != 36 {
		return false
	}
	for i, c := range id {
		if i == 8 || i == 13 || i == 18 || i == 23 {
			if c != '-' {
				return false
			}
		} else if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

// roleFor names the role delegated a target, from a cache refreshed when
// the repository's timestamp changes.
func (g *Gate) roleFor(ctx context.Context, target string) roleInfo {
	ts, err := g.cfg.Store.RepoFile(ctx, "metadata/timestamp.json")
	if err != nil {
		return roleInfo{err: err}
	}
	g.mu.Lock()
	if !bytes.Equal(ts, g.roleStamp) {
		g.roleStamp, g.roles = ts, map[string]roleInfo{}
	}
	ri, ok := g.roles[target]
	g.mu.Unlock()
	if ok {
		return ri
	}
	meta, err := g.cfg.Store.RepoMetadata(ctx)
	if err != nil {
		return roleInfo{err: err}
	}
	ri.role, ri.threshold, ri.keys, ri.err = g.cfg.Releaser.RoleFor(meta, target)
	g.mu.Lock()
	if bytes.Equal(ts, g.roleStamp) {
		g.roles[target] = ri
	}
	g.mu.Unlock()
	return ri
}

func (g *Gate) awaiting(ctx context.Context, st *Stage) string {
	ri := g.roleFor(ctx, st.Target)
	if ri.err != nil {
		return "awaiting signatures (" + ri.err.Error() + ")"
	}
	return fmt.Sprintf("awaiting %d of %d signatures of role %s", ri.threshold, ri.keys, ri.role)
}

// stage keeps a publish document as a staged version.
func (g *Gate) stage(w http.ResponseWriter, r *http.Request, name string, plain bool) {
	ctx := r.Context()
	body, err := readCapped(r, MaxPublishBytes, "publish document")
	if err != nil {
		refuse(w, http.StatusRequestEntityTooLarge, err.Error())
		return
	}
	auth := r.Header.Get("Authorization")
	actor, err := g.whoami(ctx, auth)
	if err != nil {
		refuse(w, http.StatusUnauthorized, err.Error())
		return
	}
	p, err := ParsePublish(name, body)
	if err != nil {
		refuse(w, http.StatusBadRequest, err.Error())
		return
	}
	target := TargetPath(p.Name, p.Version)
	ri := g.roleFor(ctx, target)
	if ri.err != nil {
		refuse(w, http.StatusForbidden, fmt.Sprintf("%s@%s cannot be signed: %v", p.Name, p.Version, ri.err))
		return
	}
	if p.Provenance != nil && g.cfg.Provenance != nil {
		a := provenance.ArtifactFromBytes(UnscopedBase(p.Name)+"-"+p.Version+".tgz", p.Tarball)
		a.Subject = provenance.NPMSubject(p.Name, p.Version)
		if _, err := g.cfg.Provenance.Verify(p.Provenance, a); err != nil {
			refuse(w, http.StatusBadRequest, "provenance: "+err.Error())
			return
		}
	}
	if exists, err := g.upstreamHas(ctx, p.Name, p.Version); err != nil {
		refuse(w, http.StatusBadGateway, err.Error())
		return
	} else if exists {
		refuse(w, http.StatusConflict, fmt.Sprintf("%s@%s is already published upstream: publish a new version", p.Name, p.Version))
		return
	}
	id, err := newStageID()
	if err != nil {
		refuse(w, http.StatusInternalServerError, err.Error())
		return
	}
	st := &Stage{ID: id, Name: p.Name, Version: p.Version, Tag: p.Tag, Target: target, Role: ri.role, Actor: actor,
		Shasum: p.Shasum, Integrity: p.Integrity, Predicate: p.Predicate}
	if err := g.cfg.Store.PutStage(ctx, st, &Blobs{Document: body, Tarball: p.Tarball, Provenance: p.Provenance, Auth: auth}); err != nil {
		code := http.StatusInternalServerError
		if errors.Is(err, ErrDuplicate) {
			code = http.StatusConflict
		}
		refuse(w, code, err.Error())
		return
	}
	notice := fmt.Sprintf("%s@%s is staged as %s, %d of %d signatures of role %s are needed before it is published (airlock gate bundle --gate URL %s)",
		p.Name, p.Version, id, ri.threshold, ri.keys, ri.role, id)
	g.cfg.Log.Printf("staged %s@%s as %s by %s (role %s)", p.Name, p.Version, id, actor, ri.role)
	w.Header().Set("npm-notice", notice)
	resp := map[string]any{"stageId": id, "ok": notice}
	if plain {
		resp["success"] = true
	}
	writeJSON(w, http.StatusCreated, resp)
}

// upstreamHas reports whether the upstream registry already serves
// name@version.
func (g *Gate) upstreamHas(ctx context.Context, name, version string) (bool, error) {
	doc, status, err := g.upstreamPackument(ctx, name, "")
	if err != nil {
		return false, err
	}
	if status == http.StatusNotFound {
		return false, nil
	}
	var vs map[string]json.RawMessage
	json.Unmarshal(doc["versions"], &vs)
	_, ok := vs[version]
	return ok, nil
}

func (g *Gate) upstreamPackument(ctx context.Context, name, host string) (map[string]json.RawMessage, int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, g.cfg.Upstream.String()+"/"+EscapedName(name), nil)
	if err != nil {
		return nil, 0, err
	}
	if host != "" {
		req.Host = host
	}
	req.Header.Set("Accept", "application/json")
	resp, err := g.cfg.Client.Do(req)
	if err != nil {
		return nil, 0, fmt.Errorf("the upstream registry did not answer for %s: %v", name, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusNotFound {
		return nil, resp.StatusCode, nil
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, MaxUpstreamJSON+1))
	if err != nil {
		return nil, 0, fmt.Errorf("reading %s from upstream: %v", name, err)
	}
	if len(b) > MaxUpstreamJSON {
		return nil, 0, fmt.Errorf("the upstream packument of %s is over %d bytes", name, MaxUpstreamJSON)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, resp.StatusCode, fmt.Errorf("the upstream registry answered %d for %s", resp.StatusCode, name)
	}
	var doc map[string]json.RawMessage
	if err := json.Unmarshal(b, &doc); err != nil {
		return nil, 0, fmt.Errorf("the upstream packument of %s is not JSON: %v", name, err)
	}
	return doc, resp.StatusCode, nil
}

// stageItem is a stage as npm stage list and view show it.
func (g *Gate) stageItem(ctx context.Context, st *Stage) map[string]any {
	item := map[string]any{
		"id": st.ID, "packageName": st.Name, "version": st.Version, "tag": st.Tag,
		"createdAt": st.Created.Format(time.RFC3339), "actor": st.Actor, "shasum": st.Shasum,
		"integrity": st.Integrity, "state": st.State, "target": st.Target, "role": st.Role,
	}
	if st.State == StateStaged {
		item["awaiting"] = g.awaiting(ctx, st)
	}
	if st.Reason != "" {
		item["reason"] = st.Reason
	}
	if st.Predicate != "" {
		item["provenance"] = st.Predicate
	}
	return item
}

func (g *Gate) listStages(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	page, _ := strconv.Atoi(q.Get("page"))
	per, _ := strconv.Atoi(q.Get("perPage"))
	if per <= 0 || per > MaxStagePage {
		per = MaxStagePage
	}
	if page < 0 || page > 1<<20 {
		refuse(w, http.StatusBadRequest, "page must be a small non-negative number")
		return
	}
	name := q.Get("package")
	if name != "" && CheckName(name) != nil {
		refuse(w, http.StatusBadRequest, CheckName(name).Error())
		return
	}
	state := q.Get("state")
	if state == "" {
		state = StateStaged
	} else if state == "all" {
		state = ""
	}
	list, total, err := g.cfg.Store.ListStages(r.Context(), state, name, page*per, per)
	if err != nil {
		refuse(w, http.StatusInternalServerError, err.Error())
		return
	}
	items := []map[string]any{}
	for i := range list {
		items = append(items, g.stageItem(r.Context(), &list[i]))
	}
	writeJSON(w, http.StatusOK, map[string]any{"items": items, "total": total})
}

// stageOr404 loads a stage, or answers 404 (no such stage) or 500 and
// reports false.
func (g *Gate) stageOr404(ctx context.Context, w http.ResponseWriter, id string) (*Stage, bool) {
	st, err := g.cfg.Store.GetStage(ctx, id)
	if errors.Is(err, ErrNotFound) {
		refuse(w, http.StatusNotFound, "no stage "+id+" at this gate")
		return nil, false
	} else if err != nil {
		refuse(w, http.StatusInternalServerError, err.Error())
		return nil, false
	}
	return st, true
}

// stageRoute serves /-/stage/<id>[/tarball|/approve].
func (g *Gate) stageRoute(w http.ResponseWriter, r *http.Request, rest string) {
	id, sub, _ := strings.Cut(rest, "/")
	if !validStageID(id) {
		refuse(w, http.StatusBadRequest, "a stage id is a lower-case UUID")
		return
	}
	ctx := r.Context()
	st, ok := g.stageOr404(ctx, w, id)
	if !ok {
		return
	}
	switch {
	case sub == "" && r.Method == http.MethodGet:
		writeJSON(w, http.StatusOK, g.stageItem(ctx, st))
	case sub == "tarball" && r.Method == http.MethodGet:
		b, err := g.cfg.Store.GetBlobs(ctx, id)
		if err != nil {
			refuse(w, http.StatusInternalServerError, err.Error())
			return
		}
		w.Header().Set("Content-Type", "application/octet-stream")
		w.Write(b.Tarball)
	case sub == "approve" && r.Method == http.MethodPost:
		refuse(w, http.StatusForbidden, fmt.Sprintf("approval at this registry is by offline signatures, not one-time passwords: %s; run airlock gate bundle --gate URL %s --out DIR, sign it on the appliance, then airlock gate submit", g.awaiting(ctx, st), id))
	case sub == "" && r.Method == http.MethodDelete:
		actor, err := g.whoami(ctx, r.Header.Get("Authorization"))
		if err != nil {
			refuse(w, http.StatusUnauthorized, err.Error())
			return
		}
		if err := g.cfg.Store.Reject(ctx, id, "rejected by "+actor); err != nil {
			refuse(w, http.StatusConflict, err.Error())
			return
		}
		g.cfg.Log.Printf("stage %s (%s@%s) rejected by %s", id, st.Name, st.Version, actor)
		writeJSON(w, http.StatusOK, map[string]any{"ok": true})
	default:
		refuse(w, http.StatusMethodNotAllowed, r.Method+" is not a stage operation")
	}
}

// BundleFiles is the answer to GET /-/airlock/stage/<id>/bundle: the
// files of a bundle folder, base64-encoded.
type BundleFiles struct {
	Stage map[string]any    `json:"stage"`
	Files map[string][]byte `json:"files"`
}

// Submission is the body of POST /-/airlock/stage/<id>/responses.
type Submission struct {
	Submissions []json.RawMessage `json:"submissions"`
}

func (g *Gate) airlockRoute(w http.ResponseWriter, r *http.Request, rest string) {
	id, sub, _ := strings.Cut(rest, "/")
	if !validStageID(id) {
		refuse(w, http.StatusBadRequest, "a stage id is a lower-case UUID")
		return
	}
	switch {
	case sub == "bundle" && r.Method == http.MethodGet:
		g.bundle(w, r, id)
	case sub == "responses" && r.Method == http.MethodPost:
		g.submit(w, r, id)
	default:
		refuse(w, http.StatusNotFound, "unknown airlock stage route "+sub)
	}
}

func (g *Gate) bundle(w http.ResponseWriter, r *http.Request, id string) {
	ctx := r.Context()
	st, ok := g.stageOr404(ctx, w, id)
	if !ok {
		return
	}
	if st.State != StateStaged {
		refuse(w, http.StatusConflict, fmt.Sprintf("stage %s is %s: only a staged version is signed", id, st.State))
		return
	}
	b, err := g.cfg.Store.GetBlobs(ctx, id)
	if err != nil {
		refuse(w, http.StatusInternalServerError, err.Error())
		return
	}
	meta, err := g.cfg.Store.RepoMetadata(ctx)
	if err != nil {
		refuse(w, http.StatusInternalServerError, err.Error())
		return
	}
	ri := g.roleFor(ctx, st.Target)
	if ri.err != nil {
		refuse(w, http.StatusConflict, ri.err.Error())
		return
	}
	// The same repository and time give the same bytes: a bundle fetched
	// twice is the same bundle, so responses to either combine.
	at := g.cfg.Now()
	if len(b.Request) > 0 {
		var prev struct {
			Created time.Time `json:"created"`
		}
		if json.Unmarshal(b.Request, &prev) == nil && !prev.Created.IsZero() {
			at = prev.Created
		}
	}
	files, err := g.cfg.Releaser.Bundle(meta, ri.role, st.Target, b.Tarball, b.Provenance, at)
	if err == nil && !bytes.Equal(files["request.json"], b.Request) && len(b.Request) > 0 {
		// The role moved on since the last bundle: make a new one now.
		files, err = g.cfg.Releaser.Bundle(meta, ri.role, st.Target, b.Tarball, b.Provenance, g.cfg.Now())
	}
	if err != nil {
		refuse(w, http.StatusConflict, "building the bundle: "+err.Error())
		return
	}
	if !bytes.Equal(files["request.json"], b.Request) {
		if err := g.cfg.Store.SetRequest(ctx, id, files["request.json"]); err != nil {
			refuse(w, http.StatusConflict, err.Error())
			return
		}
	}
	writeJSON(w, http.StatusOK, BundleFiles{Stage: g.stageItem(ctx, st), Files: files})
}

func (g *Gate) submit(w http.ResponseWriter, r *http.Request, id string) {
	ctx := r.Context()
	body, err := readCapped(r, MaxSubmitBytes, "submission")
	if err != nil {
		refuse(w, http.StatusRequestEntityTooLarge, err.Error())
		return
	}
	var sub Submission
	if err := json.Unmarshal(body, &sub); err != nil {
		refuse(w, http.StatusBadRequest, "submission: want {\"submissions\": [response or signed metadata, ...]}: "+err.Error())
		return
	}
	if len(sub.Submissions) == 0 || len(sub.Submissions) > MaxSubmissions {
		refuse(w, http.StatusBadRequest, fmt.Sprintf("submission: give 1 to %d responses or signed metadata files", MaxSubmissions))
		return
	}
	var subs [][]byte
	for i, s := range sub.Submissions {
		if len(s) > MaxSubmissionBytes {
			refuse(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("submission %d is %d bytes, the limit is %d", i+1, len(s), MaxSubmissionBytes))
			return
		}
		subs = append(subs, s)
	}
	st, ok := g.stageOr404(ctx, w, id)
	if !ok {
		return
	}
	b, err := g.cfg.Store.GetBlobs(ctx, id)
	if err != nil {
		refuse(w, http.StatusInternalServerError, err.Error())
		return
	}
	err = ErrNotStaged
	var a *Approval
	if st.State == StateStaged {
		var repo map[string][]byte
		if repo, err = g.cfg.Store.RepoMetadata(ctx); err != nil {
			refuse(w, http.StatusInternalServerError, err.Error())
			return
		}
		if a, err = g.cfg.Releaser.Verify(repo, b.Request, subs, st.Target, b.Tarball); err == nil {
			var sig string
			if sig, err = g.sign(st.Name, st.Version, st.Integrity); err == nil {
				err = g.cfg.Store.Queue(ctx, id, b.Request, a, sig)
			}
		}
	} else {
		err = fmt.Errorf("stage %s is %s: %w", id, st.State, ErrNotStaged)
	}
	if err != nil {
		reason := "submission refused: " + oneLine(err.Error())
		if errors.Is(err, ErrNotStaged) {
			refuse(w, http.StatusConflict, reason)
			return
		}
		if rerr := g.cfg.Store.Refuse(ctx, id, reason); rerr != nil {
			g.cfg.Log.Printf("stage %s: recording the refusal: %v", id, rerr)
		}
		g.cfg.Log.Printf("stage %s (%s@%s): %s", id, st.Name, st.Version, reason)
		refuse(w, http.StatusUnprocessableEntity, reason)
		return
	}
	g.cfg.Log.Printf("stage %s (%s@%s) approved: %s version %d queued for the repository writer", id, st.Name, st.Version, a.Role, a.Version)
	// Write every queued approval (this one and whatever else waits) in
	// one batch; a writer elsewhere may have taken it already.
	if err := g.Flush(ctx); err != nil {
		g.cfg.Log.Printf("writing approved versions: %v", err)
	}
	if st, err = g.cfg.Store.GetStage(ctx, id); err != nil {
		refuse(w, http.StatusInternalServerError, err.Error())
		return
	}
	switch {
	case st.State == StateStaged:
		// The writer refused it (the role moved on, or its paths).
		refuse(w, http.StatusUnprocessableEntity, st.Reason)
		return
	case st.State == StateApproved && !st.Written:
		writeJSON(w, http.StatusAccepted, map[string]any{"state": StateApproved, "reason": "approved; waiting for the repository writer, which a restart resumes", "stage": g.stageItem(ctx, st)})
		return
	case st.State == StateApproved:
		if err := g.publish(ctx, id); err != nil {
			st, _ = g.cfg.Store.GetStage(ctx, id)
			if st.State != StatePublished {
				writeJSON(w, http.StatusAccepted, map[string]any{"state": StateApproved, "reason": "approved; forwarding the tarball upstream failed and is retried: " + err.Error(), "stage": g.stageItem(ctx, st)})
				return
			}
		}
		st, _ = g.cfg.Store.GetStage(ctx, id)
	}
	writeJSON(w, http.StatusOK, map[string]any{"state": st.State, "stage": g.stageItem(ctx, st)})
}

// maxBatch caps the approvals one write puts into the repository.
const maxBatch = 500

// Flush writes every approved stage not yet in the repository, in
// batches: under the store's writer lock, each role's new version, then
// one snapshot and one timestamp for the batch (as the client checks
// them). A stage the writer cannot write goes back to staged with why.
func (g *Gate) Flush(ctx context.Context) error {
	for {
		now := g.cfg.Now()
		n, err := g.cfg.Store.WriteQueued(ctx, maxBatch, func(stages []*Stage, items []Queued, repo map[string][]byte) (map[string][]byte, []error, error) {
			files, refused, err := g.cfg.Releaser.Write(repo, items, g.cfg.Online, now)
			if err != nil {
				// Nothing of the batch is written; each stage goes back
				// to staged with the reason, its upload kept.
				refused = make([]error, len(items))
				for i := range refused {
					refused[i] = err
				}
				return nil, refused, nil
			}
			for i, st := range stages {
				if refused[i] != nil {
					g.cfg.Log.Printf("stage %s (%s@%s): the writer refused it: %v", st.ID, st.Name, st.Version, refused[i])
				}
			}
			return files, refused, nil
		})
		if err != nil {
			return err
		}
		if n > 0 {
			g.cfg.Log.Printf("wrote %d approved version(s) to the repository with one snapshot and timestamp", n)
		}
		if n < maxBatch {
			return nil
		}
	}
}

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

// sign makes an npm registry signature over NAME@VERSION:INTEGRITY.
func (g *Gate) sign(name, version, integrity string) (string, error) {
	sum := sha256.Sum256(SignatureMessage(name, version, integrity))
	sig, err := g.cfg.Online.Sign(rand.Reader, sum[:], crypto.SHA256)
	if err != nil {
		return "", fmt.Errorf("signing the npm registry signature: %w", err)
	}
	return base64.StdEncoding.EncodeToString(sig), nil
}

// publish forwards an approved stage's publish document (without the
// provenance attachment) upstream and marks it published. A version the
// upstream already holds with the same shasum counts as published (a
// crash between the two steps).
func (g *Gate) publish(ctx context.Context, id string) error {
	st, err := g.cfg.Store.GetStage(ctx, id)
	if err != nil {
		return err
	}
	if st.State != StateApproved || !st.Written {
		return fmt.Errorf("stage %s is %s and not in the repository: it is not forwarded", id, st.State)
	}
	b, err := g.cfg.Store.GetBlobs(ctx, id)
	if err != nil {
		return err
	}
	p, err := ParsePublish(st.Name, b.Document)
	if err != nil {
		return fmt.Errorf("stored publish document: %w", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, g.cfg.Upstream.String()+"/"+EscapedName(st.Name), bytes.NewReader(p.Forward))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", b.Auth)
	resp, err := g.cfg.Client.Do(req)
	if err != nil {
		return fmt.Errorf("upstream publish of %s@%s: %v", st.Name, st.Version, err)
	}
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		doc, _, perr := g.upstreamPackument(ctx, st.Name, "")
		var vs map[string]struct {
			Dist struct {
				Shasum string `json:"shasum"`
			} `json:"dist"`
		}
		if perr != nil || json.Unmarshal(doc["versions"], &vs) != nil || vs[st.Version].Dist.Shasum != st.Shasum {
			return fmt.Errorf("upstream publish of %s@%s answered %d: %s", st.Name, st.Version, resp.StatusCode, oneLine(string(msg)))
		}
	}
	if err := g.cfg.Store.MarkPublished(ctx, id); err != nil {
		return err
	}
	g.cfg.Log.Printf("stage %s (%s@%s) published upstream", id, st.Name, st.Version)
	return nil
}

// Resume forwards every approved stage upstream (after a crash or an
// upstream outage). It returns the first error and keeps going.
func (g *Gate) Resume(ctx context.Context) error {
	first := g.Flush(ctx)
	for offset := 0; ; {
		list, _, err := g.cfg.Store.ListStages(ctx, StateApproved, "", offset, MaxStagePage)
		if err != nil {
			return err
		}
		done := 0
		for _, st := range list {
			if !st.Written {
				offset++ // queued after the flush above: the next flush writes it
				continue
			}
			if err := g.publish(ctx, st.ID); err != nil {
				offset++
				if first == nil {
					first = err
				}
				continue
			}
			done++
		}
		if done == 0 || len(list) < MaxStagePage {
			return first
		}
	}
}

// Run calls Resume now and then until ctx ends.
func (g *Gate) Run(ctx context.Context) {
	t := time.NewTicker(publishRetryWait)
	defer t.Stop()
	for {
		if err := g.Resume(ctx); err != nil && ctx.Err() == nil {
			g.cfg.Log.Printf("forwarding approved versions: %v", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// packument serves a package document from upstream with the gate's
// additions: dist.signatures and dist.attestations of gate-approved
// versions, and every staged version marked with policyRestrictions so
// that npm install refuses it with the reason.
func (g *Gate) packument(w http.ResponseWriter, r *http.Request, name string) {
	ctx := r.Context()
	stages, err := g.cfg.Store.StagesOf(ctx, name)
	if err != nil {
		refuse(w, http.StatusInternalServerError, err.Error())
		return
	}
	if len(stages) == 0 {
		g.proxy.ServeHTTP(w, r)
		return
	}
	doc, status, err := g.upstreamPackument(ctx, name, r.Host)
	if err != nil {
		refuse(w, http.StatusBadGateway, err.Error())
		return
	}
	if status == http.StatusNotFound {
		doc = map[string]json.RawMessage{"name": mustJSON(name), "dist-tags": mustJSON(map[string]string{})}
	}
	versions := map[string]map[string]json.RawMessage{}
	json.Unmarshal(doc["versions"], &versions)
	if versions == nil {
		versions = map[string]map[string]json.RawMessage{}
	}
	restricted := map[string]bool{}
	var messages []string
	base := "http://" + r.Host
	if r.TLS != nil {
		base = "https://" + r.Host
	}
	for i := range stages {
		st := &stages[i]
		switch st.State {
		case StateStaged:
			b, err := g.cfg.Store.GetBlobs(ctx, st.ID)
			if err != nil {
				continue
			}
			var pub struct {
				Versions map[string]map[string]json.RawMessage `json:"versions"`
			}
			if json.Unmarshal(b.Document, &pub) != nil || pub.Versions[st.Version] == nil {
				continue
			}
			m := pub.Versions[st.Version]
			var dist map[string]json.RawMessage
			json.Unmarshal(m["dist"], &dist)
			if dist == nil {
				dist = map[string]json.RawMessage{}
			}
			dist["tarball"] = mustJSON(base + "/-/stage/" + st.ID + "/tarball")
			m["dist"] = mustJSON(dist)
			versions[st.Version] = m
			restricted[st.Version] = true
			messages = append(messages, fmt.Sprintf("%s@%s is staged at the Airlock gate (stage %s), %s", st.Name, st.Version, st.ID, g.awaiting(ctx, st)))
		case StateApproved, StatePublished:
			m := versions[st.Version]
			if m == nil {
				continue
			}
			var dist map[string]json.RawMessage
			json.Unmarshal(m["dist"], &dist)
			if dist == nil {
				continue
			}
			var integrity string
			json.Unmarshal(dist["integrity"], &integrity)
			if integrity != st.Integrity {
				continue // other bytes than the gate approved: no signature
			}
			dist["signatures"] = mustJSON([]map[string]string{{"keyid": g.keyID, "sig": st.Signature}})
			if st.Predicate != "" {
				dist["attestations"] = mustJSON(map[string]any{
					"url":        base + "/-/npm/v1/attestations/" + EscapedName(st.Name) + "@" + st.Version,
					"provenance": map[string]string{"predicateType": st.Predicate},
				})
			}
			m["dist"] = mustJSON(dist)
		}
	}
	doc["versions"] = mustJSON(versions)
	if len(restricted) > 0 {
		doc["policyRestrictions"] = mustJSON(map[string]any{"versions": restricted, "message": strings.Join(messages, "\n")})
	}
	out, err := json.Marshal(doc)
	if err != nil {
		refuse(w, http.StatusInternalServerError, err.Error())
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-cache")
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		w.Write(out)
	}
}

func mustJSON(v any) json.RawMessage {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err) // only called with maps and strings
	}
	return b
}

// attestations serves the provenance the gate kept for NAME@VERSION.
func (g *Gate) attestations(w http.ResponseWriter, r *http.Request, spec string) {
	raw, err := url.PathUnescape(spec)
	i := strings.LastIndexByte(raw, '@')
	if err != nil || i <= 0 {
		refuse(w, http.StatusBadRequest, "want /-/npm/v1/attestations/NAME@VERSION")
		return
	}
	name, version := raw[:i], raw[i+1:]
	if CheckName(name) != nil || CheckVersion(version) != nil {
		refuse(w, http.StatusBadRequest, "want /-/npm/v1/attestations/NAME@VERSION")
		return
	}
	stages, err := g.cfg.Store.StagesOf(r.Context(), name)
	if err != nil {
		refuse(w, http.StatusInternalServerError, err.Error())
		return
	}
	for _, st := range stages {
		if st.Version != version || st.Predicate == "" || st.State == StateStaged {
			continue
		}
		b, err := g.cfg.Store.GetBlobs(r.Context(), st.ID)
		if err != nil {
			refuse(w, http.StatusInternalServerError, err.Error())
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{"attestations": []map[string]any{{
			"predicateType": st.Predicate, "bundle": json.RawMessage(b.Provenance)}}})
		return
	}
	refuse(w, http.StatusNotFound, fmt.Sprintf("no provenance for %s@%s at this gate", name, version))
}

// tufFile serves the TUF repository: /tuf/metadata/... and /tuf/targets/...
func (g *Gate) tufFile(w http.ResponseWriter, r *http.Request, rest string) {
	p, err := url.PathUnescape(rest)
	if err != nil || !(strings.HasPrefix(p, "metadata/") || strings.HasPrefix(p, "targets/")) || strings.Contains(p, "..") {
		refuse(w, http.StatusNotFound, "the TUF repository serves /tuf/metadata/ and /tuf/targets/")
		return
	}
	b, err := g.cfg.Store.RepoFile(r.Context(), p)
	if errors.Is(err, ErrNotFound) {
		refuse(w, http.StatusNotFound, p+" is not in the repository")
		return
	} else if err != nil {
		refuse(w, http.StatusInternalServerError, err.Error())
		return
	}
	if strings.HasSuffix(p, ".json") {
		w.Header().Set("Content-Type", "application/json")
	} else {
		w.Header().Set("Content-Type", "application/octet-stream")
	}
	w.Header().Set("Cache-Control", "no-cache")
	w.Write(b)
}
