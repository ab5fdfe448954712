package interop

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"airlock.dev/airlock/hsm"
	"airlock.dev/airlock/internal/online"
	"airlock.dev/airlock/tuf"
)

// resign re-signs the demo's sigstore role with the same targets and a new
// expiry (kind resign), signed by alice and bob and combined with the
// online key, as `airlock bundle create` + `airlock combine` do.
func resign(t *testing.T, dir string) {
	t.Helper()
	repo, load := demoRepo(t, dir)
	now := time.Now()
	b, err := online.CreateBundle(repo, online.BundleOptions{Role: "sigstore", Now: now, Expires: 120 * 24 * time.Hour, Note: "resign"})
	if err != nil {
		t.Fatal(err)
	}
	if b.Request.Kind != tuf.KindResign {
		t.Fatalf("bundle kind %q, want %q", b.Request.Kind, tuf.KindResign)
	}
	bdir := filepath.Join(t.TempDir(), "bundle")
	if err := b.WriteDir(bdir); err != nil {
		t.Fatal(err)
	}
	var resps []*tuf.Response
	for _, who := range []string{"alice", "bob"} {
		r, err := online.Sign(b.Request, []hsm.Signer{load(who)}, now)
		if err != nil {
			t.Fatal(err)
		}
		resps = append(resps, r)
	}
	if _, err := online.Combine(repo, bdir, resps, load("online"), now); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "metadata", "3.sigstore.json")); err != nil {
		t.Fatalf("resign did not write sigstore version 3: %v", err)
	}
}

// TestClientsAcceptResign: after a resign (same targets, new version and
// expiry) every client still fetches the same verified target.
func TestClientsAcceptResign(t *testing.T) {
	dir, url, root, want := repo(t)
	resign(t, dir)
	for _, c := range clients {
		t.Run(c.name, func(t *testing.T) {
			got, err := c.fetch(t, dir, url, root)
			if err != nil {
				t.Fatalf("%s refused a resigned role: %v", c.name, err)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("%s returned %d bytes that differ from the release", c.name, len(got))
			}
		})
	}
}

// TestPythonTUFVerifiesEveryKind has python-tuf parse and verify each
// metadata file of a fresh repository (init only) and of a repository after
// a resign, as TestPythonTUFParsesAndVerifiesEveryFile does for a release
// under a delegation with an approval group.
func TestPythonTUFVerifiesEveryKind(t *testing.T) {
	fresh := filepath.Join(t.TempDir(), "fresh")
	var signers []hsm.Signer
	for range 3 {
		s, err := hsm.GenerateFileKey(filepath.Join(t.TempDir(), "k.pem"), hsm.ECDSAP256, "k", nil)
		if err != nil {
			t.Fatal(err)
		}
		signers = append(signers, s)
	}
	if _, err := tuf.Init(fresh, tuf.InitOptions{
		Root: signers[:2], RootThreshold: 2, Targets: signers[2:3], TargetsThreshold: 1,
		Online: signers[2], Now: time.Now(),
	}); err != nil {
		t.Fatal(err)
	}
	resigned, _, _, _ := repo(t)
	resign(t, resigned)
	rotated, _, _, _ := repo(t)
	rotateRoot(t, rotated)
	for name, dir := range map[string]string{"fresh": fresh, "resign": resigned, "root": rotated} {
		t.Run(name, func(t *testing.T) { pytufVerify(t, dir) })
	}
}

func pytufVerify(t *testing.T, dir string) {
	t.Helper()
	py, err := filepath.Abs(pydeps)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(py, "tuf", "api")); err != nil {
		t.Fatalf("python-tuf sources not found at %s: %v", py, err)
	}
	cmd := exec.Command("python3", "pytuf-verify.py", filepath.Join(dir, "metadata"))
	cmd.Env = append(os.Environ(), "PYTHONPATH="+py, "PYTHONDONTWRITEBYTECODE=1")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("python-tuf refused metadata Airlock wrote: %v\n%s", err, out)
	}
	files, _ := filepath.Glob(filepath.Join(dir, "metadata", "*.json"))
	if len(files) == 0 {
		t.Fatal("no metadata files")
	}
	if n := strings.Count(string(out), "verified "); n != len(files) {
		t.Fatalf("python-tuf verified %d of %d metadata files:\n%s", n, len(files), out)
	}
}

// demoRepo opens the demo repository in dir and returns a loader of the
// demo's development keys (kept beside it in keys/).
func demoRepo(t *testing.T, dir string) (*tuf.Repository, func(who string) hsm.Signer) {
	t.Helper()
	keys := filepath.Join(filepath.Dir(dir), "keys")
	load := func(who string) hsm.Signer {
		s, err := hsm.LoadFileKey(filepath.Join(keys, who+".pem"))
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	repo, err := tuf.OpenRepository(dir)
	if err != nil {
		t.Fatal(err)
	}
	return repo, load
}
