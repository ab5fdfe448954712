// Package interop checks that repositories Airlock writes are standard TUF:
// independent clients (tuf-js from npm, go-tuf's updater) fetch a released
// target, and both refuse the repository when the release carries fewer
// distinct signatures than its threshold or when the target bytes change.
package interop

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/theupdateframework/go-tuf/v2/metadata"

	"airlock.dev/airlock/internal/demo"
	"airlock.dev/airlock/internal/gotuf"
	"airlock.dev/airlock/tuf"
)

const target = "sigstore/sigstore-2.0.0.tgz"

// repo runs the demo release flow and serves its repository on 127.0.0.1.
func repo(t *testing.T) (dir, url string, root, want []byte) {
	t.Helper()
	work := t.TempDir()
	if err := demo.Run(context.Background(), work, io.Discard); err != nil {
		t.Fatal(err)
	}
	dir = filepath.Join(work, "repo")
	srv := httptest.NewServer(fileServer(dir))
	t.Cleanup(srv.Close)
	root, err := os.ReadFile(filepath.Join(dir, "metadata", "1.root.json"))
	if err != nil {
		t.Fatal(err)
	}
	want, err = os.ReadFile(filepath.Join(work, "ci", "sigstore-2.0.0.tgz"))
	if err != nil {
		t.Fatal(err)
	}
	return dir, srv.URL, root, want
}

func tufjs(t *testing.T, url string, root []byte) ([]byte, error) {
	t.Helper()
	if _, err := os.Stat("node_modules/tuf-js"); err != nil {
		t.Fatal("tuf-js is not installed: run scripts/install-test-deps.sh")
	}
	tmp := t.TempDir()
	rootFile := filepath.Join(tmp, "root.json")
	if err := os.WriteFile(rootFile, root, 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(tmp, "out")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "node", "tufjs-fetch.js", url, rootFile, target, out)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return nil, &clientError{msg: strings.TrimSpace(stderr.String()), err: err}
	}
	return os.ReadFile(out)
}

type clientError struct {
	msg string
	err error
}

func (e *clientError) Error() string { return e.msg + ": " + e.err.Error() }

type client struct {
	name  string
	fetch func(t *testing.T, dir, url string, root []byte) ([]byte, error)
}

var clients = []client{
	{"tuf-js", func(t *testing.T, _, url string, root []byte) ([]byte, error) { return tufjs(t, url, root) }},
	{"go-tuf", func(t *testing.T, _, url string, root []byte) ([]byte, error) { return gotuf.Fetch(url, root, target) }},
	{"airlock", func(t *testing.T, dir, _ string, root []byte) ([]byte, error) {
		_, data, err := (&tuf.Client{Fetch: tuf.DirFetcher(dir)}).Verify(context.Background(), root, target)
		return data, err
	}},
}

func TestClientsAcceptRelease(t *testing.T) {
	dir, url, root, want := repo(t)
	for _, c := range clients {
		t.Run(c.name, func(t *testing.T) {
			got, err := c.fetch(t, dir, url, root)
			if err != nil {
				t.Fatalf("%s refused a correctly signed release: %v", c.name, err)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("%s returned %d bytes that differ from the release", c.name, len(got))
			}
		})
	}
}

func TestClientsRejectUnderSignedRelease(t *testing.T) {
	dir, url, root, _ := repo(t)
	// Publish the release with one of its two signatures removed, bypassing
	// airlock combine (which refuses it), as a compromised server would.
	p := filepath.Join(dir, "metadata", "2.sigstore.json")
	raw, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	m, err := tuf.ParseStrict[metadata.TargetsType](raw)
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Signatures) != 2 {
		t.Fatalf("release has %d signatures, want 2", len(m.Signatures))
	}
	m.Signatures = m.Signatures[:1]
	b, _ := m.ToBytes(true)
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, c := range clients {
		t.Run(c.name, func(t *testing.T) {
			_, err := c.fetch(t, dir, url, root)
			mustRefuse(t, c.name, err, `signed by 1/2 keys|not enough signatures, got 1, want 2|1 valid signature\(s\) from distinct keys, threshold is 2`)
		})
	}
}

func TestClientsRejectDuplicatedSignature(t *testing.T) {
	dir, url, root, _ := repo(t)
	// One holder's signature listed twice must not meet a threshold of 2.
	p := filepath.Join(dir, "metadata", "2.sigstore.json")
	raw, _ := os.ReadFile(p)
	m, err := tuf.ParseStrict[metadata.TargetsType](raw)
	if err != nil {
		t.Fatal(err)
	}
	m.Signatures = []metadata.Signature{m.Signatures[0], m.Signatures[0]}
	b, _ := m.ToBytes(true)
	os.WriteFile(p, b, 0o644)
	for _, c := range clients {
		t.Run(c.name, func(t *testing.T) {
			_, err := c.fetch(t, dir, url, root)
			mustRefuse(t, c.name, err, `(?i)multiple signatures found for key|signed by 1/2 keys|key [0-9a-f]+ already counted|key id [0-9a-f]+ signs twice`)
		})
	}
}

func TestClientsRejectAlteredTarget(t *testing.T) {
	dir, url, root, _ := repo(t)
	files, _ := filepath.Glob(filepath.Join(dir, "targets", "sigstore", "*.sigstore-2.0.0.tgz"))
	if len(files) == 0 {
		t.Fatal("no target files")
	}
	for _, f := range files {
		b, _ := os.ReadFile(f)
		b[len(b)/2] ^= 0xff
		if err := os.WriteFile(f, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range clients {
		t.Run(c.name, func(t *testing.T) {
			_, err := c.fetch(t, dir, url, root)
			mustRefuse(t, c.name, err, `(?i)hash|length`)
		})
	}
}

// mustRefuse passes only if the client ran and refused for the expected
// reason: an external client must have exited with status 1 (its "refused"
// status, not a crash or a usage error) and its message must match reason.
func mustRefuse(t *testing.T, name string, err error, reason string) {
	t.Helper()
	if err == nil {
		t.Fatalf("%s accepted the repository", name)
	}
	var ce *clientError
	if errors.As(err, &ce) {
		var ee *exec.ExitError
		if !errors.As(ce.err, &ee) || ee.ExitCode() != 1 {
			t.Fatalf("%s did not run to a refusal (want exit status 1): %v", name, err)
		}
	}
	if !regexp.MustCompile(reason).MatchString(err.Error()) {
		t.Fatalf("%s refused for another reason than /%s/: %v", name, reason, err)
	}
	t.Logf("%s refused: %v", name, err)
}
