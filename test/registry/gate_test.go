// Package registry_test is the end-to-end test of the registry gate with
// real components on 127.0.0.1: Verdaccio 6.8.0 (pinned in package.json,
// installed by scripts/install-test-deps.sh) as the upstream registry, the
// real npm CLI staging the tuf-js 1.0.0 release through the gate, the
// airlock binary as gate, bundle, submit, wait, client and monitor, the
// appliance's signing ceremony where two holders approve the gate's bundle
// and sign it with an emulated YubiKey (pcscd + vpcd) and a key in swtpm,
// tuf-js fetching from the gate's TUF repository, and npm's pacote checking
// the gate's registry signature. The gate runs as in production (no --dev):
// it takes only responses the appliance made with hardware keys. It runs on
// SQLite and on PostgreSQL.
package registry_test

import (
	"bufio"
	"bytes"
	"crypto/sha1"
	"crypto/sha512"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"airlock.dev/airlock/appliance"
	"airlock.dev/airlock/appliance/provenance"
	"airlock.dev/airlock/hsm/tpm/tpmtest"
	"airlock.dev/airlock/internal/online"
	"airlock.dev/airlock/internal/testrig"
	"airlock.dev/airlock/registry/pgtest"
	"airlock.dev/airlock/tuf"
)

const (
	fixture     = "../../registry/testdata/tuf-js-1.0.0.tgz"
	provFixture = "../../registry/testdata/tuf-js@1.0.0.provenance.sigstore.json"
	// trustedRoot is the Sigstore trusted root the appliance is provisioned
	// with to verify the release's provenance.
	trustedRoot   = "../../appliance/testdata/trusted_root.json"
	yubiKeySerial = 7300021
	tpmPIN        = "tpm-pin-9312"
	tpmHandle     = 0x81000011
	npmUser       = "alice"
	npmPassword   = "correct horse battery staple"
)

var (
	buildOnce  sync.Once
	airlockBin string
	buildErr   error
)

// airlock builds cmd/airlock once per test binary.
func airlock(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "airlock-bin-*")
		if err != nil {
			buildErr = err
			return
		}
		airlockBin = filepath.Join(dir, "airlock")
		out, err := exec.Command("go", "build", "-o", airlockBin, "airlock.dev/airlock/cmd/airlock").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return airlockBin
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// checkNPM fails unless npm has the stage command (npm >= 11.15).
func checkNPM(t *testing.T) {
	t.Helper()
	out, err := exec.Command("npm", "--version").Output()
	if err != nil {
		t.Fatalf("npm is not installed (scripts/install-test-deps.sh): %v", err)
	}
	var major, minor int
	fmt.Sscanf(strings.TrimSpace(string(out)), "%d.%d", &major, &minor)
	if major < 11 || major == 11 && minor < 15 {
		t.Fatalf("npm %s has no npm stage; npm >= 11.15 is needed (scripts/install-test-deps.sh installs it)", strings.TrimSpace(string(out)))
	}
	if _, err := os.Stat("node_modules/verdaccio/package.json"); err != nil {
		t.Fatalf("Verdaccio is not installed in test/registry: run scripts/install-test-deps.sh (npm ci): %v", err)
	}
}

// verdaccio starts Verdaccio on 127.0.0.1 with no uplinks, registration
// disabled and one htpasswd user, and stops it by process id.
func verdaccio(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	sum := sha1.Sum([]byte(npmPassword))
	htpasswd := npmUser + ":{SHA}" + base64.StdEncoding.EncodeToString(sum[:]) + "\n"
	if err := os.WriteFile(filepath.Join(dir, "htpasswd"), []byte(htpasswd), 0o600); err != nil {
		t.Fatal(err)
	}
	port := freePort(t)
	cfg := fmt.Sprintf(`storage: %s/storage
auth:
  htpasswd:
    file: %s/htpasswd
    max_users: -1
uplinks: {}
packages:
  '@*/*':
    access: $all
    publish: $authenticated
  '**':
    access: $all
    publish: $authenticated
web:
  enable: false
max_body_size: 64mb
log: { type: stdout, format: pretty, level: warn }
`, dir, dir)
	if err := os.WriteFile(filepath.Join(dir, "config.yaml"), []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	var logBuf bytes.Buffer
	cmd := exec.Command("node", "node_modules/verdaccio/bin/verdaccio", "--config", filepath.Join(dir, "config.yaml"),
		"--listen", "127.0.0.1:"+strconv.Itoa(port))
	cmd.Stdout, cmd.Stderr = &logBuf, &logBuf
	if err := cmd.Start(); err != nil {
		t.Fatalf("verdaccio: %v", err)
	}
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		cmd.Wait()
		if t.Failed() {
			t.Logf("verdaccio log:\n%s", logBuf.String())
		}
	})
	url := "http://127.0.0.1:" + strconv.Itoa(port)
	waitHTTP(t, url+"/-/ping")
	return url
}

func waitHTTP(t *testing.T, u string) {
	t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	for {
		resp, err := http.Get(u)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s did not answer: %v", u, err)
		}
		time.Sleep(200 * time.Millisecond) // waiting for a server to start, not timing anything
	}
}

// login gets a token from Verdaccio with the user's password.
func login(t *testing.T, registry string) string {
	t.Helper()
	body, _ := json.Marshal(map[string]string{"name": npmUser, "password": npmPassword})
	req, _ := http.NewRequest(http.MethodPut, registry+"/-/user/org.couchdb.user:"+npmUser, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.SetBasicAuth(npmUser, npmPassword)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out struct {
		Token string `json:"token"`
	}
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode/100 != 2 || json.Unmarshal(b, &out) != nil || out.Token == "" {
		t.Fatalf("login: %d %s", resp.StatusCode, b)
	}
	return out.Token
}

// gateProc is a running airlock gate, stopped by process id.
type gateProc struct {
	bin  string
	args []string
	url  string
	mu   sync.Mutex
	log  bytes.Buffer
	cmd  *exec.Cmd
	done chan struct{}
}

func (g *gateProc) logf(s string) {
	g.mu.Lock()
	g.log.WriteString(s)
	g.mu.Unlock()
}

func (g *gateProc) logs() string {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.log.String()
}

func startGate(t *testing.T, args ...string) *gateProc {
	t.Helper()
	g := &gateProc{bin: airlock(t), args: args}
	if err := g.start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		g.stop(syscall.SIGTERM)
		if t.Failed() {
			t.Logf("gate log:\n%s", g.logs())
		}
	})
	return g
}

var listening = regexp.MustCompile(`listening on (http://127\.0\.0\.1:\d+)`)

// start runs the gate and waits until it listens. It may be called from
// any goroutine.
func (g *gateProc) start() error {
	cmd := exec.Command(g.bin, append([]string{"gate"}, g.args...)...)
	pr, pw := io.Pipe()
	cmd.Stderr = pw
	if err := cmd.Start(); err != nil {
		return err
	}
	done := make(chan struct{})
	found := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(pr)
		sent := false
		for sc.Scan() {
			line := sc.Text()
			g.logf(line + "\n")
			if m := listening.FindStringSubmatch(line); m != nil && !sent {
				found <- m[1]
				sent = true
			}
		}
		if !sent {
			close(found)
		}
	}()
	go func() { cmd.Wait(); pw.Close(); close(done) }()
	g.mu.Lock()
	g.cmd, g.done = cmd, done
	g.mu.Unlock()
	select {
	case u, ok := <-found:
		if !ok {
			return fmt.Errorf("the gate exited before listening:\n%s", g.logs())
		}
		g.url = u
		return nil
	case <-time.After(2 * time.Minute):
		return fmt.Errorf("the gate did not start:\n%s", g.logs())
	}
}

// stop signals the gate's process and waits for it to exit.
func (g *gateProc) stop(sig syscall.Signal) {
	g.mu.Lock()
	cmd, done := g.cmd, g.done
	g.mu.Unlock()
	if cmd == nil {
		return
	}
	cmd.Process.Signal(sig)
	<-done
}

// run runs a command and returns its combined output and exit code.
func run(t *testing.T, dir string, env []string, name string, args ...string) (string, int) {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		if ee, ok := err.(*exec.ExitError); ok {
			return string(out), ee.ExitCode()
		}
		t.Fatalf("%s: %v", name, err)
	}
	return string(out), 0
}

// hardware sets up the two holders, an emulated YubiKey through pcscd and
// vpcd and a key in swtpm, and the TUF repository the gate imports:
// development keys for root, targets and the online role; role tuf-js
// delegated 2-of-2 to the two hardware keys for npm's tarball paths of
// tuf-js.
func hardware(t *testing.T) (*testrig.Hardware, *testrig.Repo) {
	t.Helper()
	h := testrig.Start(t, testrig.Config{Serial: yubiKeySerial, TPM: tpmtest.Swtpm, TPMHandle: tpmHandle, TPMPIN: tpmPIN})
	repo := h.Repository(t, t.TempDir(), time.Now(), tuf.DelegationSpec{Name: "tuf-js", Paths: []string{"tuf-js/-/*"}})
	return h, repo
}

// appliancePolicy is the appliance's policy for role tuf-js: Alice and Bob
// approve with attested hardware keys, and the release's provenance must
// show tuf-js's own publish workflow on a version tag.
func appliancePolicy() appliance.Policy {
	rp := testrig.RolePolicy()
	rp.Provenance = &appliance.ProvenancePolicy{Package: "tuf-js", Require: true, Publishers: []appliance.Publisher{{
		Issuer: provenance.GitHubActionsIssuer, Repository: "https://github.com/theupdateframework/tuf-js",
		WorkflowPath: ".github/workflows/publish.yml", Refs: []string{"refs/tags/v*"},
	}}}
	return appliance.Policy{Format: appliance.PolicyFormat, Roles: map[string]appliance.RolePolicy{"tuf-js": rp}}
}

// ceremony takes the bundle folder to a new appliance provisioned with the
// repository's root, the policy, the Sigstore trusted root, the TPM's
// attestation key and the emulator's attestation CA as its PIV roots; both
// holders approve and sign, and the response folder (response.json and the
// ceremony record) is exported. It returns the folder and its response.
func ceremony(t *testing.T, h *testrig.Hardware, repo *testrig.Repo, bundle, work string) (string, *tuf.Response) {
	t.Helper()
	tr, err := os.ReadFile(trustedRoot)
	if err != nil {
		t.Fatal(err)
	}
	st := h.State(t, work, testrig.Provision{RootFile: repo.RootFile, Policy: appliancePolicy(), PinAK: true, PIVRoots: true,
		Edit: func(p *appliance.Provision) { p.TrustedRoot = tr }}, appliance.SystemClock)
	ui := testrig.NewScriptedUI(h.PINsByHolder())
	// No trust anchors besides the state's: Yubico's roots are shipped,
	// the emulator's CA and the TPM's key come from init-state.
	o := h.Run(t, testrig.Ceremony{State: st, UI: ui, Bundle: bundle, Out: work})
	resp := o.Response(t)
	if !slices.Equal(ui.Confirms, []string{testrig.Alice, testrig.Bob}) {
		t.Errorf("confirmations by %v, want %s then %s", ui.Confirms, testrig.Alice, testrig.Bob)
	}
	if got := ui.TouchHolders(t); !slices.Equal(got, []string{testrig.Alice}) {
		t.Errorf("touch prompts for %v, want %s", got, testrig.Alice)
	}
	return o.Out, resp
}

// responseFile writes r as a response file in dir.
func responseFile(t *testing.T, dir, name string, r *tuf.Response) string {
	t.Helper()
	b, err := r.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, name+".json")
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// provenanceDocument is the publish document npm sends for tuf-js 1.0.0
// with --provenance: the tarball and its Sigstore bundle as JSON text.
func provenanceDocument(t *testing.T, tgz, bundle []byte, registry string) []byte {
	t.Helper()
	man := readManifest(t, tgz)
	s1 := sha1.Sum(tgz)
	s512 := sha512.Sum512(tgz)
	man["_id"] = "tuf-js@1.0.0"
	man["dist"] = map[string]any{"shasum": hex.EncodeToString(s1[:]), "integrity": "sha512-" + base64.StdEncoding.EncodeToString(s512[:]),
		"tarball": registry + "/tuf-js/-/tuf-js-1.0.0.tgz"}
	var b struct {
		MediaType string `json:"mediaType"`
	}
	json.Unmarshal(bundle, &b)
	doc := map[string]any{"_id": "tuf-js", "name": "tuf-js", "dist-tags": map[string]string{"latest": "1.0.0"},
		"versions": map[string]any{"1.0.0": man}, "access": nil,
		"_attachments": map[string]any{
			"tuf-js-1.0.0.tgz":      map[string]any{"content_type": "application/octet-stream", "data": base64.StdEncoding.EncodeToString(tgz), "length": len(tgz)},
			"tuf-js-1.0.0.sigstore": map[string]any{"content_type": b.MediaType, "data": string(bundle), "length": len(bundle)},
		}}
	out, err := json.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func readManifest(t *testing.T, tgz []byte) map[string]any {
	t.Helper()
	cmd := exec.Command("tar", "-xzO", "package/package.json")
	cmd.Stdin = bytes.NewReader(tgz)
	out, err := cmd.Output()
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(out, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func httpJSON(t *testing.T, method, u, auth string, body []byte, out any) int {
	t.Helper()
	req, _ := http.NewRequest(method, u, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			t.Fatalf("%s %s: %d %s", method, u, resp.StatusCode, b)
		}
	}
	return resp.StatusCode
}

var stagedWithID = regexp.MustCompile(`staged with id ([0-9a-f-]{36})`)

// pacoteCheck resolves NAME@VERSION with npm's own pacote, with signature
// verification on and the keys from /-/npm/v1/keys, as npm audit
// signatures does once it has the keys.
const pacoteCheck = `
const path = require('path');
const { execSync } = require('child_process');
const pacote = require(path.join(execSync('npm root -g').toString().trim(), 'npm', 'node_modules', 'pacote'));
const [registry, spec] = process.argv.slice(2);
(async () => {
  const res = await fetch(registry.replace(/\/$/, '') + '/-/npm/v1/keys');
  const { keys } = await res.json();
  const registryKeys = keys.map(k => ({ ...k, pemkey: '-----BEGIN PUBLIC KEY-----\n' + k.key + '\n-----END PUBLIC KEY-----' }));
  const u = new URL(registry);
  const m = await pacote.manifest(spec, { registry, verifySignatures: true, ['//' + u.host + u.pathname + ':_keys']: registryKeys, preferOnline: true, cache: process.env.NPM_CACHE });
  if (!m._signatures || m._signatures.length === 0) { console.error('no registry signature'); process.exit(1); }
  console.log(JSON.stringify({ id: m._id, integrity: m._integrity, keyid: m._signatures[0].keyid }));
})().catch(e => { console.error(e.code + ': ' + e.message); process.exit(1); });
`

func TestGateVerdaccio(t *testing.T) {
	checkNPM(t)
	bin := airlock(t)
	h, repo := hardware(t)
	for _, store := range []string{"sqlite", "postgres"} {
		t.Run(store, func(t *testing.T) {
			spec := "sqlite:" + filepath.Join(t.TempDir(), "gate.db")
			if store == "postgres" {
				spec = pgtest.Start(t)
			}
			gateEndToEnd(t, bin, h, repo, spec)
		})
	}
}

func gateEndToEnd(t *testing.T, bin string, h *testrig.Hardware, repo *testrig.Repo, storeSpec string) {
	tgz, err := os.ReadFile(fixture)
	if err != nil {
		t.Fatal(err)
	}
	prov, err := os.ReadFile(provFixture)
	if err != nil {
		t.Fatal(err)
	}
	upstream := verdaccio(t)
	token := login(t, upstream)
	// No --dev: the gate takes only responses an appliance ceremony made
	// with hardware keys.
	gate := startGate(t, "--upstream", upstream, "--repo", repo.Dir, "--online-key", repo.OnlineURI, "--store", storeSpec,
		"--listen", "127.0.0.1:0")
	work := t.TempDir()
	gateHost := strings.TrimPrefix(gate.url, "http://")
	npmrc := filepath.Join(work, "npmrc")
	os.WriteFile(npmrc, []byte("registry="+gate.url+"/\n//"+gateHost+"/:_authToken="+token+"\n//"+strings.TrimPrefix(upstream, "http://")+"/:_authToken="+token+"\n"), 0o600)
	env := []string{"npm_config_userconfig=" + npmrc, "npm_config_cache=" + filepath.Join(work, "cache"), "npm_config_update_notifier=false",
		"npm_config_audit=false", "npm_config_fund=false", "NPM_CACHE=" + filepath.Join(work, "cache")}
	tgzFile := filepath.Join(work, "tuf-js-1.0.0.tgz")
	os.WriteFile(tgzFile, tgz, 0o644)

	// npm stage publish through the gate: staged, never forwarded.
	out, code := run(t, work, env, "npm", "stage", "publish", tgzFile)
	m := stagedWithID.FindStringSubmatch(out)
	if code != 0 || m == nil {
		t.Fatalf("npm stage publish: exit %d\n%s", code, out)
	}
	first := m[1]
	if out, code := run(t, work, env, "npm", "view", "tuf-js", "--registry", upstream); code == 0 || !strings.Contains(out, "E404") {
		t.Fatalf("a staged version reached Verdaccio: %d %s", code, out)
	}
	out, code = run(t, work, env, "npm", "stage", "list", "--json")
	if code != 0 || !strings.Contains(out, first) || !strings.Contains(out, "awaiting 2 of 2 signatures") {
		t.Fatalf("npm stage list: %d %s", code, out)
	}
	out, code = run(t, work, env, "npm", "stage", "view", first)
	if code != 0 || !strings.Contains(out, "tuf-js") || !strings.Contains(out, "staged by: "+npmUser) {
		t.Fatalf("npm stage view: %d %s", code, out)
	}
	out, code = run(t, work, env, "npm", "stage", "approve", first)
	if code == 0 || !strings.Contains(out, "approval at this registry is by offline signatures") {
		t.Fatalf("npm stage approve was not refused with the reason: %d %s", code, out)
	}
	out, code = run(t, work, env, "npm", "stage", "reject", first)
	if code != 0 {
		t.Fatalf("npm stage reject: %d %s", code, out)
	}

	// The same release with its provenance, as npm publish --provenance
	// sends it.
	var staged struct {
		StageID string `json:"stageId"`
		Error   string `json:"error"`
	}
	if c := httpJSON(t, http.MethodPost, gate.url+"/-/stage/package/tuf-js", "Bearer "+token, provenanceDocument(t, tgz, prov, gate.url), &staged); c != http.StatusCreated {
		t.Fatalf("staging with provenance: %d %s", c, staged.Error)
	}
	id := staged.StageID

	// npm install of the staged version fails with the policy message.
	proj := filepath.Join(work, "proj")
	os.Mkdir(proj, 0o755)
	os.WriteFile(filepath.Join(proj, "package.json"), []byte(`{"name":"proj","version":"1.0.0","private":true}`), 0o644)
	out, code = run(t, proj, env, "npm", "install", "--ignore-scripts", "tuf-js@1.0.0")
	if code == 0 || !strings.Contains(out, "E403") || !strings.Contains(out, "awaiting 2 of 2 signatures") {
		t.Fatalf("npm install of a staged version: exit %d, want E403 with the signatures awaited\n%s", code, out)
	}
	dl := filepath.Join(work, "dl")
	os.Mkdir(dl, 0o755)
	out, code = run(t, dl, env, "npm", "stage", "download", id)
	if got, err := os.ReadFile(filepath.Join(dl, "tuf-js-1.0.0-"+id+".tgz")); code != 0 || err != nil || !bytes.Equal(got, tgz) {
		t.Fatalf("npm stage download: %d %v %s", code, err, out)
	}

	// CI waits for the signatures.
	waitCmd := exec.Command(bin, "gate", "wait", "--gate", gate.url, id, "--timeout", "10m", "--interval", "200ms")
	var waitOut bytes.Buffer
	waitCmd.Stdout, waitCmd.Stderr = &waitOut, &waitOut
	if err := waitCmd.Start(); err != nil {
		t.Fatal(err)
	}
	waited := make(chan error, 1)
	go func() { waited <- waitCmd.Wait() }()

	// The bundle goes to the appliance: both holders approve, Alice's
	// YubiKey and Bob's TPM key sign, and the response folder with its
	// ceremony record comes back.
	bdir := filepath.Join(work, "bundle")
	if out, code := run(t, work, nil, bin, "gate", "bundle", "--gate", gate.url, id, "--out", bdir); code != 0 {
		t.Fatalf("airlock gate bundle: %d %s", code, out)
	}
	req, err := online.ReadRequest(bdir)
	if err != nil {
		t.Fatal(err)
	}
	if len(req.Provenance) != 1 {
		t.Fatalf("the bundle carries %d provenance files, want the release's bundle", len(req.Provenance))
	}
	signed, resp := ceremony(t, h, repo, bdir, work)

	// Alice's signature alone (the ceremony's response with Bob's cut out,
	// as a response that lost a signature on its way arrives) is refused
	// with the reason; the stage stays staged.
	d, err := repo.Delegation("tuf-js")
	if err != nil {
		t.Fatal(err)
	}
	partial := *resp
	partial.Signatures, partial.Holders = nil, []string{testrig.Alice}
	for _, s := range resp.Signatures {
		if k, ok := d.Keys[s.KeyID]; ok && tuf.Holder(k) == testrig.Alice {
			partial.Signatures = append(partial.Signatures, s)
		}
	}
	if len(partial.Signatures) != 1 {
		t.Fatalf("the ceremony's response has %d signatures by %s's key, want 1", len(partial.Signatures), testrig.Alice)
	}
	alice := responseFile(t, work, "alice", &partial)
	out, code = run(t, work, nil, bin, "gate", "submit", "--gate", gate.url, id, alice)
	if code != 1 || !strings.Contains(out, "threshold") {
		t.Fatalf("one of two signatures: %d %s", code, out)
	}
	var item map[string]any
	httpJSON(t, http.MethodGet, gate.url+"/-/stage/"+id, "", nil, &item)
	if item["state"] != "staged" || !strings.Contains(fmt.Sprint(item["reason"]), "threshold") {
		t.Fatalf("after a partial submission the stage is %v", item)
	}
	// Both signatures without the ceremony record's hash are not an
	// appliance's response: the gate, not in development mode, refuses.
	norecord := *resp
	norecord.RecordSHA256 = ""
	out, code = run(t, work, nil, bin, "gate", "submit", "--gate", gate.url, id, responseFile(t, work, "norecord", &norecord))
	if code != 1 || !strings.Contains(out, "carries no ceremony record hash, so it was not made by the appliance") {
		t.Fatalf("a response without a ceremony record: %d %s", code, out)
	}
	// The folder the appliance exported: published.
	out, code = run(t, work, nil, bin, "gate", "submit", "--gate", gate.url, id, signed)
	if code != 0 || !strings.Contains(out, "published") {
		t.Fatalf("airlock gate submit: %d %s", code, out)
	}
	select {
	case err := <-waited:
		if err != nil || !strings.Contains(waitOut.String(), "tuf-js@1.0.0: published") {
			t.Fatalf("airlock gate wait: %v\n%s", err, waitOut.String())
		}
	case <-time.After(5 * time.Minute):
		waitCmd.Process.Kill()
		t.Fatalf("airlock gate wait did not return:\n%s", waitOut.String())
	}

	// Installable now; the bytes are the release's.
	out, code = run(t, dl, env, "npm", "pack", "tuf-js@1.0.0", "--prefer-online")
	if got, err := os.ReadFile(filepath.Join(dl, "tuf-js-1.0.0.tgz")); code != 0 || err != nil || !bytes.Equal(got, tgz) {
		t.Fatalf("npm pack after publishing: %d %v %s", code, err, out)
	}
	script := filepath.Join(work, "pacote-check.js")
	os.WriteFile(script, []byte(pacoteCheck), 0o644)
	out, code = run(t, work, env, "node", script, gate.url+"/", "tuf-js@1.0.0")
	if code != 0 || !strings.Contains(out, `"keyid":"SHA256:`) {
		t.Fatalf("pacote signature check: %d %s", code, out)
	}
	var att struct {
		Attestations []struct {
			PredicateType string          `json:"predicateType"`
			Bundle        json.RawMessage `json:"bundle"`
		} `json:"attestations"`
	}
	if c := httpJSON(t, http.MethodGet, gate.url+"/-/npm/v1/attestations/tuf-js@1.0.0", "", nil, &att); c != 200 || len(att.Attestations) != 1 || !bytes.Equal(compact(att.Attestations[0].Bundle), compact(prov)) {
		t.Fatalf("provenance served by the gate: %d %+v", c, att)
	}

	// tuf-js and airlock client fetch the target from the gate.
	rootFile := repo.RootFile
	target := "tuf-js/-/tuf-js-1.0.0.tgz"
	tufjs, err := filepath.Abs("../interop/tufjs-fetch.js")
	if err != nil {
		t.Fatal(err)
	}
	out, code = run(t, work, nil, "node", tufjs, gate.url+"/tuf", rootFile, target, filepath.Join(work, "tufjs.tgz"))
	if got, err := os.ReadFile(filepath.Join(work, "tufjs.tgz")); code != 0 || err != nil || !bytes.Equal(got, tgz) {
		t.Fatalf("tuf-js from the gate: %d %v %s", code, err, out)
	}
	state := filepath.Join(work, "client")
	os.Mkdir(filepath.Join(work, "dl2"), 0o755)
	if out, code := run(t, work, nil, bin, "client", "--metadata-dir", state, "init", rootFile); code != 0 {
		t.Fatalf("airlock client init: %d %s", code, out)
	}
	out, code = run(t, work, nil, bin, "client", "--metadata-dir", state, "--metadata-url", gate.url+"/tuf/metadata",
		"--target-name", target, "--target-base-url", gate.url+"/tuf/targets", "--target-dir", filepath.Join(work, "dl2"), "download")
	if code != 0 || !strings.Contains(out, "verified") {
		t.Fatalf("airlock client download: %d %s", code, out)
	}

	// The monitor is quiet while every version is signed.
	monitor := []string{"monitor", "--registry", gate.url, "--tuf", gate.url + "/tuf", "--root", rootFile, "--package", "tuf-js", "--once"}
	if out, code := run(t, work, nil, bin, monitor...); code != 0 {
		t.Fatalf("monitor with every version signed: %d %s", code, out)
	}

	// A version published straight to Verdaccio, bypassing the gate.
	pkg := filepath.Join(work, "bypass")
	os.Mkdir(pkg, 0o755)
	os.WriteFile(filepath.Join(pkg, "package.json"), []byte(`{"name":"tuf-js","version":"1.0.1","description":"not signed"}`), 0o644)
	os.WriteFile(filepath.Join(pkg, "index.js"), []byte("module.exports = 'bypass'\n"), 0o644)
	if out, code := run(t, pkg, env, "npm", "publish", "--registry", upstream+"/"); code != 0 {
		t.Fatalf("direct publish to Verdaccio: %d %s", code, out)
	}
	alarmFile := filepath.Join(work, "alarms")
	out, code = run(t, work, nil, bin, append(monitor, "--alert-command", "cat >> "+alarmFile)...)
	if code != 1 {
		t.Fatalf("monitor after a bypassing publish: exit %d, want 1\n%s", code, out)
	}
	kinds := map[string]bool{}
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		var a struct{ Kind, Version string }
		if json.Unmarshal([]byte(line), &a) == nil && a.Version != "" {
			if a.Version != "1.0.1" {
				t.Errorf("alarm for %s: %s", a.Version, line)
			}
			kinds[a.Kind] = true
		}
	}
	if !kinds["unsigned"] || !kinds["downgrade"] {
		t.Fatalf("monitor alarms %v, want unsigned and downgrade for 1.0.1\n%s", kinds, out)
	}
	if b, _ := os.ReadFile(alarmFile); !strings.Contains(string(b), `"version":"1.0.1"`) {
		t.Fatalf("the alert command did not get the alarm: %q", b)
	}
}

func compact(b []byte) []byte {
	var buf bytes.Buffer
	if json.Compact(&buf, b) != nil {
		return b
	}
	return buf.Bytes()
}
