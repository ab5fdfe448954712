package interop

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// pydeps holds the pinned pure-Python sources of python-tuf 5.1.0 and
// securesystemslib (see ../shared/tuf-conformance/README.md).
var pydeps = filepath.Join("..", "..", "..", "shared", "tuf-conformance", "pydeps")

// pytuf fetches target with python-tuf's ngclient. Outside CI, where the
// pinned sources are absent, the test fails with the reason: a missing
// client must never look like a passing one.
func pytuf(t *testing.T, url string, root []byte) ([]byte, error) {
	t.Helper()
	dir, err := filepath.Abs(pydeps)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "tuf", "ngclient")); err != nil {
		t.Fatalf("python-tuf sources not found at %s (the pinned tuf-conformance pydeps): %v", dir, err)
	}
	tmp := t.TempDir()
	rootFile := filepath.Join(tmp, "root.json")
	if err := os.WriteFile(rootFile, root, 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(tmp, "out")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "python3", "pytuf-fetch.py", url, rootFile, target, out)
	cmd.Env = append(os.Environ(), "PYTHONPATH="+dir, "PYTHONDONTWRITEBYTECODE=1")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return nil, &clientError{msg: strings.TrimSpace(stderr.String()), err: err}
	}
	return os.ReadFile(out)
}

func init() {
	clients = append(clients, client{"python-tuf", func(t *testing.T, _, url string, root []byte) ([]byte, error) { return pytuf(t, url, root) }})
}

// TestPythonTUFParsesAndVerifiesEveryFile has python-tuf parse each metadata
// file Airlock wrote (Metadata.from_bytes) and verify its signatures against
// its delegating role.
func TestPythonTUFParsesAndVerifiesEveryFile(t *testing.T) {
	dir, _, _, _ := repo(t)
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
	if n := strings.Count(string(out), "verified "); n != len(files) {
		t.Fatalf("python-tuf verified %d of %d metadata files:\n%s", n, len(files), out)
	}
	t.Logf("%s", out)
}
