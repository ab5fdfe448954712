package hardware_test

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"airlock.dev/airlock/appliance"
	"airlock.dev/airlock/hsm/attest"
	"airlock.dev/airlock/internal/gotuf"
	"airlock.dev/airlock/internal/online"
	"airlock.dev/airlock/internal/testrig"
	"airlock.dev/airlock/tuf"
)

// The two holders of the hardware ceremonies.
const (
	alice = testrig.Alice // YubiKey
	bob   = testrig.Bob   // TPM
)

// rig is an appliance whose release role is delegated 2 of 2 to an
// emulated YubiKey (through pcscd and vpcd) and a TPM key (simulator or
// swtpm), with an online repository that combines what the appliance
// exports and serves it to the independent clients.
type rig struct {
	*testrig.Hardware
	t      *testing.T
	dir    string
	now    time.Time
	repo   *testrig.Repo
	srv    *httptest.Server
	policy appliance.Policy
}

// newRig enrols both keys and delegates the release role to them. tpmDev
// names the TPM: tpmtest.Simulator or tpmtest.Swtpm.
func newRig(t *testing.T, tpmDev func(testing.TB) string) *rig {
	t.Helper()
	return newRigWith(t, tpmDev, 0)
}

// newRigWith is newRig with a YubiKey whose key gets touchPolicy (as a card
// configured otherwise would make it), when not 0.
func newRigWith(t *testing.T, tpmDev func(testing.TB) string, touchPolicy byte) *rig {
	t.Helper()
	r := &rig{t: t, dir: t.TempDir(), now: time.Now()}
	r.Hardware = testrig.Start(t, testrig.Config{Serial: yubiKeySerial, TPM: tpmDev, TPMHandle: tpmHandle, TPMPIN: tpmPIN, TouchPolicy: touchPolicy})
	r.repo = r.Repository(t, r.dir, r.now, tuf.DelegationSpec{Name: role, Paths: []string{"app/*"}, Terminating: true})
	r.srv = httptest.NewServer(http.FileServer(http.Dir(r.repo.Dir)))
	t.Cleanup(r.srv.Close)
	if !strings.HasPrefix(r.srv.URL, "http://127.0.0.1:") {
		t.Fatalf("test server at %s, want 127.0.0.1", r.srv.URL)
	}
	r.policy = appliance.Policy{Format: appliance.PolicyFormat, Roles: map[string]appliance.RolePolicy{role: testrig.RolePolicy()}}
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
	return r.State(r.t, r.dir, testrig.Provision{RootFile: r.repo.RootFile, Policy: r.policy, PinAK: pinAK, Edit: edit}, r.clock())
}

func (r *rig) clock() appliance.Clock { return appliance.ClockFunc(func() time.Time { return r.now }) }

// release is a bundle of a new release of the role.
type release struct {
	dir    string
	target string
	data   []byte
}

func (r *rig) bundle(version string) release {
	r.t.Helper()
	data := []byte(strings.Repeat("app "+version+" release bytes\n", 300))
	file := filepath.Join(r.dir, "app-"+version+".tgz")
	if err := os.WriteFile(file, data, 0o644); err != nil {
		r.t.Fatal(err)
	}
	target := "app/app-" + version + ".tgz"
	b, err := online.CreateBundle(r.repo.Repository, online.BundleOptions{Role: role, Now: r.now, Note: "release " + version,
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

// ceremony runs one appliance ceremony on rel with both holders' keys.
func (r *rig) ceremony(st *appliance.StateDir, ui appliance.UI, l appliance.Listener, opts attest.Options, rel release) testrig.Outcome {
	r.t.Helper()
	return r.Run(r.t, testrig.Ceremony{State: st, UI: ui, Listener: l, Clock: r.clock(), Date: r.now,
		AttestOptions: opts, Bundle: rel.dir, Out: r.dir})
}

// publish combines the appliance's response into the repository and has
// Airlock's client, go-tuf, tuf-js and python-tuf fetch the release.
func (r *rig) publish(t *testing.T, rel release, resp *tuf.Response) {
	t.Helper()
	res, err := online.Combine(r.repo.Repository, rel.dir, []*tuf.Response{resp}, r.repo.Online, r.now)
	if err != nil {
		t.Fatalf("combine: %v", err)
	}
	if len(res.Signers) != 2 {
		t.Fatalf("combined %d signers, want 2", len(res.Signers))
	}
	rootBytes, err := os.ReadFile(r.repo.RootFile)
	if err != nil {
		t.Fatal(err)
	}
	c := &tuf.Client{Fetch: tuf.DirFetcher(r.repo.Dir), RefTime: r.now}
	if _, got, err := c.Verify(context.Background(), rootBytes, rel.target); err != nil || !bytes.Equal(got, rel.data) {
		t.Errorf("airlock client: %v (%d bytes)", err, len(got))
	}
	if got, err := gotuf.Fetch(r.srv.URL, rootBytes, rel.target); err != nil || !bytes.Equal(got, rel.data) {
		t.Errorf("go-tuf: %v (%d bytes)", err, len(got))
	}
	if got, err := tufjs(t, r.srv.URL, r.repo.RootFile, rel.target); err != nil || !bytes.Equal(got, rel.data) {
		t.Errorf("tuf-js: %v (%d bytes)", err, len(got))
	}
	if got, err := pytuf(t, r.srv.URL, r.repo.RootFile, rel.target); err != nil || !bytes.Equal(got, rel.data) {
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
