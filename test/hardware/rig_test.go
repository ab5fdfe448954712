package hardware_test

import (
	"bytes"
	"context"
	"crypto"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/theupdateframework/go-tuf/v2/metadata"

	"airlock.dev/airlock/appliance"
	"airlock.dev/airlock/hsm"
	"airlock.dev/airlock/hsm/attest"
	"airlock.dev/airlock/hsm/hsmtest"
	"airlock.dev/airlock/hsm/piv"
	"airlock.dev/airlock/hsm/piv/pivemu"
	"airlock.dev/airlock/hsm/piv/pivtest"
	"airlock.dev/airlock/hsm/tpm"
	"airlock.dev/airlock/internal/gotuf"
	"airlock.dev/airlock/internal/online"
	"airlock.dev/airlock/tuf"
)

// The two holders of the hardware ceremonies.
const (
	alice = "Alice Example" // YubiKey
	bob   = "Bob Example"   // TPM
)

// rig is an appliance whose release role is delegated 2 of 2 to an
// emulated YubiKey (through pcscd and vpcd) and a TPM key (simulator or
// swtpm), with an online repository that combines what the appliance
// exports and serves it to the independent clients.
type rig struct {
	t         *testing.T
	dir       string
	now       time.Time
	env       *pivtest.Env
	card      *pivemu.Card
	ca        *pivemu.AttestationCA
	ykURI     hsm.URI
	tpmURI    hsm.URI
	tpmAK     crypto.PublicKey
	repo      *tuf.Repository
	onlineKey hsm.Signer
	rootFile  string
	srv       *httptest.Server
	policy    appliance.Policy
	bundles   int

	// onTouch runs while the card waits for a touch; timeOut makes the
	// next touch time out.
	onTouch atomic.Pointer[func()]
	timeOut atomic.Bool
}

// newRig enrols both keys and delegates the release role to them. dev names
// the TPM: tpmtest.Simulator or tpmtest.Swtpm.
func newRig(t *testing.T, tpmDev func(testing.TB) string) *rig {
	t.Helper()
	return newRigWith(t, tpmDev, 0)
}

// newRigWith is newRig with a YubiKey whose key gets touchPolicy (as a card
// configured otherwise would make it), when not 0.
func newRigWith(t *testing.T, tpmDev func(testing.TB) string, touchPolicy byte) *rig {
	t.Helper()
	ctx := context.Background()
	r := &rig{t: t, dir: t.TempDir(), now: time.Now()}
	r.env = pivtest.Start(t)
	ca, err := pivemu.NewAttestationCA()
	if err != nil {
		t.Fatal(err)
	}
	r.ca = ca
	r.card, err = pivemu.New(pivemu.Config{Serial: yubiKeySerial, CA: ca,
		Touch: func() {
			if f := r.onTouch.Load(); f != nil {
				(*f)()
			}
		},
		TouchTimedOut:    func() bool { return r.timeOut.CompareAndSwap(true, false) },
		ForceTouchPolicy: touchPolicy,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.card.Remove)
	r.env.Insert(t, r.card, 0)
	ye, err := piv.Enroll(ctx, yubiKeySerial, piv.EnrollOptions{Holder: alice, Prompter: &hsmtest.ScriptedPrompter{PINs: pins(yubiKeyPIN, 1)}})
	if err != nil {
		t.Fatalf("enrol yubikey: %v", err)
	}
	if err := ye.Signer.(hsm.Closer).Close(); err != nil {
		t.Fatal(err)
	}
	r.ykURI = ye.URI

	dev := tpmDev(t)
	te, err := tpm.Enroll(ctx, dev, tpm.EnrollOptions{Handle: tpmHandle, PIN: []byte(tpmPIN), Holder: bob})
	if err != nil {
		t.Fatalf("enrol tpm: %v", err)
	}
	r.tpmURI = te.URI
	if r.tpmAK, err = tpm.AttestationKey(ctx, dev); err != nil {
		t.Fatal(err)
	}

	root, targets := fileKey(t, r.dir, "root"), fileKey(t, r.dir, "targets")
	r.onlineKey = fileKey(t, r.dir, "online")
	repoDir := filepath.Join(r.dir, "repo")
	r.repo, err = tuf.Init(repoDir, tuf.InitOptions{
		Root: []hsm.Signer{root}, RootThreshold: 1, Targets: []hsm.Signer{targets}, TargetsThreshold: 1,
		Online: r.onlineKey, Now: r.now,
	})
	if err != nil {
		t.Fatal(err)
	}
	next, err := r.repo.NextTargets("targets", r.now.Add(30*24*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	var keys []*metadata.Key
	for _, u := range []hsm.URI{r.ykURI, r.tpmURI} {
		s := open(t, u, &hsmtest.ScriptedPrompter{})
		k, err := tuf.KeyFromSigner(s)
		if err != nil {
			t.Fatal(err)
		}
		keys = append(keys, k)
		s.(hsm.Closer).Close()
	}
	if err := tuf.SetDelegation(next, tuf.DelegationSpec{Name: role, Keys: keys, Threshold: 2, Paths: []string{"app/*"}, Terminating: true}); err != nil {
		t.Fatal(err)
	}
	td, err := r.repo.Delegation("targets")
	if err != nil {
		t.Fatal(err)
	}
	if err := tuf.SignAll(next, td, []hsm.Signer{targets}); err != nil {
		t.Fatal(err)
	}
	if err := r.repo.CommitTargets("targets", next, r.onlineKey, r.now); err != nil {
		t.Fatal(err)
	}
	r.rootFile = filepath.Join(repoDir, "metadata", "1.root.json")
	r.srv = httptest.NewServer(http.FileServer(http.Dir(repoDir)))
	t.Cleanup(r.srv.Close)
	if !strings.HasPrefix(r.srv.URL, "http://127.0.0.1:") {
		t.Fatalf("test server at %s, want 127.0.0.1", r.srv.URL)
	}
	r.policy = appliance.Policy{Format: appliance.PolicyFormat, Roles: map[string]appliance.RolePolicy{role: {
		Holders:     []string{alice, bob},
		KeyKinds:    []hsm.Kind{hsm.KindYubiKey, hsm.KindTPM},
		Attestation: attest.Policy{RequireHardware: true, RequirePINAlways: true, RequireTouchAlways: true},
	}}}
	return r
}

// state provisions an appliance state directory: the repository's root,
// the policy, and the TPM's attestation key when pinAK is set.
func (r *rig) state(pinAK bool) *appliance.StateDir {
	r.t.Helper()
	return r.stateWith(pinAK, nil)
}

// stateWith provisions a state as state does, with edit applied to what
// init-state writes.
func (r *rig) stateWith(pinAK bool, edit func(*appliance.Provision)) *appliance.StateDir {
	r.t.Helper()
	root, err := os.ReadFile(r.rootFile)
	if err != nil {
		r.t.Fatal(err)
	}
	pol, err := json.Marshal(r.policy)
	if err != nil {
		r.t.Fatal(err)
	}
	p := appliance.Provision{Root: root, Policy: pol}
	if pinAK {
		der, err := x509.MarshalPKIXPublicKey(r.tpmAK)
		if err != nil {
			r.t.Fatal(err)
		}
		p.TPMAK = pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
	}
	if edit != nil {
		edit(&p)
	}
	dir, err := os.MkdirTemp(r.dir, "state-")
	if err != nil {
		r.t.Fatal(err)
	}
	dir = filepath.Join(dir, "state")
	if err := appliance.InitState(dir, p, r.clock()); err != nil {
		r.t.Fatal(err)
	}
	st, err := appliance.OpenState(dir, r.clock())
	if err != nil {
		r.t.Fatal(err)
	}
	r.t.Cleanup(func() { st.Close() })
	return st
}

func (r *rig) clock() appliance.Clock { return appliance.ClockFunc(func() time.Time { return r.now }) }

// attestOptions trust the emulator's attestation CA (not Yubico's).
func (r *rig) attestOptions() attest.Options {
	pool := x509.NewCertPool()
	pool.AddCert(r.ca.Root)
	return attest.Options{YubicoRoots: pool}
}

// release is a bundle of a new release of the role.
type release struct {
	dir    string
	target string
	data   []byte
}

func (r *rig) bundle(version string) release {
	r.t.Helper()
	r.bundles++
	data := []byte(strings.Repeat("app "+version+" release bytes\n", 300))
	file := filepath.Join(r.dir, "app-"+version+".tgz")
	if err := os.WriteFile(file, data, 0o644); err != nil {
		r.t.Fatal(err)
	}
	target := "app/app-" + version + ".tgz"
	b, err := online.CreateBundle(r.repo, online.BundleOptions{Role: role, Now: r.now, Note: "release " + version,
		Add: []online.FileArg{{File: file, Target: target}}})
	if err != nil {
		r.t.Fatal(err)
	}
	dir := filepath.Join(r.dir, "bundle-"+version)
	if err := b.WriteDir(dir); err != nil {
		r.t.Fatal(err)
	}
	return release{dir: dir, target: target, data: data}
}

// dirBundle loads a bundle folder as the appliance's bundle source.
type dirBundle string

func (d dirBundle) Load(context.Context) (*appliance.Bundle, error) {
	req, err := os.ReadFile(filepath.Join(string(d), "request.json"))
	if err != nil {
		return nil, err
	}
	root, err := os.OpenRoot(string(d))
	if err != nil {
		return nil, err
	}
	return &appliance.Bundle{Source: string(d), Request: req, Files: root.FS()}, nil
}

// keySource opens the holders' keys by URI, as the appliance does, and
// closes them when the ceremony is over: a YubiKey is held exclusively
// while open.
type keySource struct {
	uris   appliance.KeyURIs
	mu     sync.Mutex
	opened []hsm.Signer
}

func (k *keySource) Keys(ctx context.Context, p hsm.Prompter) ([]hsm.Signer, error) {
	ss, err := k.uris.Keys(ctx, p)
	k.mu.Lock()
	k.opened = append(k.opened, ss...)
	k.mu.Unlock()
	return ss, err
}

func (k *keySource) close() {
	k.mu.Lock()
	defer k.mu.Unlock()
	for _, s := range k.opened {
		if c, ok := s.(hsm.Closer); ok {
			c.Close()
		}
	}
	k.opened = nil
}

// outcome is how one ceremony ended.
type outcome struct {
	state appliance.State
	err   error
	out   string
}

// ceremony runs one appliance ceremony on rel with both holders' keys.
func (r *rig) ceremony(st *appliance.StateDir, ui appliance.UI, l appliance.Listener, opts attest.Options, rel release) outcome {
	r.t.Helper()
	out := filepath.Join(r.dir, "out-"+time.Now().Format("150405.000000000"))
	keys := &keySource{uris: appliance.KeyURIs{r.ykURI.String(), r.tpmURI.String()}}
	c, err := appliance.New(appliance.Config{State: st, UI: ui, Listener: l, Clock: r.clock(), Date: r.now,
		Bundle: dirBundle(rel.dir), Keys: keys, Sink: appliance.DirSink(out), AttestOptions: opts})
	if err != nil {
		r.t.Fatal(err)
	}
	s, err := c.Run(context.Background())
	keys.close()
	return outcome{state: s, err: err, out: out}
}

// refused checks that the ceremony was refused under rule for a reason
// containing why, and exported nothing.
func (o outcome) refused(t *testing.T, rule appliance.Rule, why string) {
	t.Helper()
	var re *appliance.RefusedError
	if !errors.As(o.err, &re) {
		t.Fatalf("ceremony ended at %s with %v, want a refusal (%s) saying %q", o.state.Step, o.err, rule, why)
	}
	if re.Refusal.Rule != rule || !strings.Contains(re.Refusal.Reason, why) {
		t.Fatalf("refused for %s: %s\nwant %s saying %q", re.Refusal.Rule, re.Refusal.Reason, rule, why)
	}
	if _, err := os.Stat(filepath.Join(o.out, appliance.ResponseFile)); err == nil {
		t.Fatal("a refused ceremony wrote a response")
	}
}

// response returns the exported response of a ceremony that must be done.
func (o outcome) response(t *testing.T) *tuf.Response {
	t.Helper()
	if o.err != nil || o.state.Step != appliance.StepDone {
		t.Fatalf("ceremony ended at %s: %v", o.state.Step, o.err)
	}
	b, err := os.ReadFile(filepath.Join(o.out, appliance.ResponseFile))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := tuf.ParseResponse(b)
	if err != nil {
		t.Fatal(err)
	}
	if resp.Dev || len(resp.Signatures) != 2 || strings.Join(resp.Holders, ",") != alice+","+bob {
		t.Fatalf("response: development %v, %d signatures by %v; want 2 hardware signatures by %s and %s", resp.Dev, len(resp.Signatures), resp.Holders, alice, bob)
	}
	return resp
}

// publish combines the appliance's response into the repository and has
// Airlock's client, go-tuf, tuf-js and python-tuf fetch the release.
func (r *rig) publish(t *testing.T, rel release, resp *tuf.Response) {
	t.Helper()
	res, err := online.Combine(r.repo, rel.dir, []*tuf.Response{resp}, r.onlineKey, r.now)
	if err != nil {
		t.Fatalf("combine: %v", err)
	}
	if len(res.Signers) != 2 {
		t.Fatalf("combined %d signers, want 2", len(res.Signers))
	}
	rootBytes, err := os.ReadFile(r.rootFile)
	if err != nil {
		t.Fatal(err)
	}
	c := &tuf.Client{Fetch: tuf.DirFetcher(filepath.Dir(filepath.Dir(r.rootFile))), RefTime: r.now}
	if _, got, err := c.Verify(context.Background(), rootBytes, rel.target); err != nil || !bytes.Equal(got, rel.data) {
		t.Errorf("airlock client: %v (%d bytes)", err, len(got))
	}
	if got, err := gotuf.Fetch(r.srv.URL, rootBytes, rel.target); err != nil || !bytes.Equal(got, rel.data) {
		t.Errorf("go-tuf: %v (%d bytes)", err, len(got))
	}
	if got, err := tufjs(t, r.srv.URL, r.rootFile, rel.target); err != nil || !bytes.Equal(got, rel.data) {
		t.Errorf("tuf-js: %v (%d bytes)", err, len(got))
	}
	if got, err := pytuf(t, r.srv.URL, r.rootFile, rel.target); err != nil || !bytes.Equal(got, rel.data) {
		t.Errorf("python-tuf: %v (%d bytes)", err, len(got))
	}
}

// pydeps holds the pinned pure-Python sources of python-tuf and
// securesystemslib (see ../shared/tuf-conformance/README.md).
var pydeps = filepath.Join("..", "..", "..", "shared", "tuf-conformance", "pydeps")

// pytuf fetches target with python-tuf's ngclient; it returns the bytes, or
// the client's refusal (exit status 1).
func pytuf(t *testing.T, base, rootFile, target string) ([]byte, error) {
	t.Helper()
	dir, err := filepath.Abs(pydeps)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "tuf", "ngclient")); err != nil {
		t.Fatalf("python-tuf sources not found at %s (the pinned tuf-conformance pydeps): %v", dir, err)
	}
	script, err := filepath.Abs(filepath.Join("..", "interop", "pytuf-fetch.py"))
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "target")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "python3", script, base, rootFile, target, out)
	cmd.Env = append(os.Environ(), "PYTHONPATH="+dir, "PYTHONDONTWRITEBYTECODE=1")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) && ee.ExitCode() == 1 {
			return nil, errors.New(strings.TrimSpace(stderr.String()))
		}
		t.Fatalf("pytuf-fetch.py: %v: %s", err, stderr.String())
	}
	return os.ReadFile(out)
}
