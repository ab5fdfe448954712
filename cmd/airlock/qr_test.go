package main

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/theupdateframework/go-tuf/v2/metadata"

	"airlock.dev/airlock/hsm"
	"airlock.dev/airlock/internal/online"
	"airlock.dev/airlock/transfer/bundle"
	"airlock.dev/airlock/transfer/ur"
	"airlock.dev/airlock/tuf"
)

// signedResponse builds a real signature response: a repository with a
// delegated role, a release bundle for it, and a holder's signature.
func signedResponse(t *testing.T) []byte {
	t.Helper()
	dir := t.TempDir()
	now := time.Now()
	key := func(name string) hsm.Signer {
		s, err := hsm.GenerateFileKey(filepath.Join(dir, name+".pem"), hsm.ECDSAP256, name, nil)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	root, targets, onlineKey, alice := key("root"), key("targets"), key("online"), key("alice")
	repo, err := tuf.Init(filepath.Join(dir, "repo"), tuf.InitOptions{
		Root: []hsm.Signer{root}, RootThreshold: 1, Targets: []hsm.Signer{targets}, TargetsThreshold: 1,
		Online: onlineKey, Now: now,
	})
	if err != nil {
		t.Fatal(err)
	}
	next, err := repo.NextTargets("targets", now.Add(24*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	ak, err := tuf.KeyFromSigner(alice)
	if err != nil {
		t.Fatal(err)
	}
	if err := tuf.SetDelegation(next, tuf.DelegationSpec{Name: "app", Keys: []*metadata.Key{ak}, Threshold: 1, Paths: []string{"app/*"}, Terminating: true}); err != nil {
		t.Fatal(err)
	}
	d, err := repo.Delegation("targets")
	if err != nil {
		t.Fatal(err)
	}
	if err := tuf.SignAll(next, d, []hsm.Signer{targets}); err != nil {
		t.Fatal(err)
	}
	if err := repo.CommitTargets("targets", next, onlineKey, now); err != nil {
		t.Fatal(err)
	}
	artifact := filepath.Join(dir, "app-1.0.0.tgz")
	if err := os.WriteFile(artifact, bytes.Repeat([]byte("release bytes "), 500), 0o644); err != nil {
		t.Fatal(err)
	}
	b, err := online.CreateBundle(repo, online.BundleOptions{Role: "app", Now: now, Add: []online.FileArg{{File: artifact, Target: "app/app-1.0.0.tgz"}}})
	if err != nil {
		t.Fatal(err)
	}
	resp, err := online.Sign(b.Request, []hsm.Signer{alice}, now)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := resp.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

func TestQRShowScanImagesWithLoss(t *testing.T) {
	msg := signedResponse(t)
	dir := t.TempDir()
	respFile := filepath.Join(dir, "response.json")
	if err := os.WriteFile(respFile, msg, 0o644); err != nil {
		t.Fatal(err)
	}
	frames := filepath.Join(dir, "frames")
	// Small fragments so the response spans many frames.
	r := mustRun(t, "qr", "show", respFile, "--png", frames, "--fragment", "60")
	fingerprint := ur.Fingerprint(msg)
	if !strings.Contains(r.stderr, fingerprint) {
		t.Errorf("show does not print the fingerprint %q: %s", fingerprint, r.stderr)
	}
	entries, err := os.ReadDir(frames)
	if err != nil {
		t.Fatal(err)
	}
	fragments := (len(msg) + 59) / 60
	if len(entries) < 3*fragments+7 || len(entries) > 3*fragments+13 {
		t.Fatalf("%d frames for about %d fragments, want about three times as many", len(entries), fragments)
	}
	// Lose 30% of the frames, chosen at random.
	rng := rand.New(rand.NewPCG(1, 2))
	drop := len(entries) * 30 / 100
	for _, i := range rng.Perm(len(entries))[:drop] {
		if err := os.Remove(filepath.Join(frames, entries[i].Name())); err != nil {
			t.Fatal(err)
		}
	}
	out := filepath.Join(dir, "received.json")
	r = mustRun(t, "qr", "scan", "--images", frames, "--out", out)
	got, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, msg) {
		t.Fatalf("received %d bytes that differ from the %d sent", len(got), len(msg))
	}
	if _, err := online.ReadResponse(out); err != nil {
		t.Errorf("received response does not parse: %v", err)
	}
	for _, want := range []string{"100%", "frames seen", fingerprint} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("scan progress lacks %q:\n%s", want, r.stderr)
		}
	}
	// --out is never overwritten.
	mustFail(t, 1, "exists", "qr", "scan", "--images", frames, "--out", out)
}

func TestQRScanTooFewFrames(t *testing.T) {
	dir := t.TempDir()
	msg := bytes.Repeat([]byte("0123456789"), 200)
	src := filepath.Join(dir, "msg")
	if err := os.WriteFile(src, msg, 0o644); err != nil {
		t.Fatal(err)
	}
	frames := filepath.Join(dir, "frames")
	mustRun(t, "qr", "show", src, "--png", frames, "--fragment", "100", "--frames", "5")
	mustFail(t, 1, "frames ended before the message was complete", "qr", "scan", "--images", frames, "--out", filepath.Join(dir, "out"))
	if _, err := os.Stat(filepath.Join(dir, "out")); err == nil {
		t.Error("an incomplete scan wrote its output file")
	}
}

func TestQRScanLines(t *testing.T) {
	dir := t.TempDir()
	msg := []byte(strings.Repeat("airlock response ", 40))
	enc, err := ur.NewEncoder(msg, ur.EncoderOptions{MaxFragmentLen: 50})
	if err != nil {
		t.Fatal(err)
	}
	var lines strings.Builder
	lines.WriteString("UR:BYTES/NOT-A-PART\n") // a stray symbol is refused and skipped
	for range 3 * enc.SeqLen() {
		lines.WriteString(enc.NextPart() + "\n")
	}
	linesFile := filepath.Join(dir, "zbarcam.txt")
	if err := os.WriteFile(linesFile, []byte(lines.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "out")
	r := mustRun(t, "qr", "scan", "--lines", linesFile, "--out", out)
	got, err := os.ReadFile(out)
	if err != nil || !bytes.Equal(got, msg) {
		t.Fatalf("scan --lines: %v, %d bytes", err, len(got))
	}
	if !strings.Contains(r.stderr, "refused") {
		t.Errorf("stray symbol not reported: %s", r.stderr)
	}
}

func TestQRShowTerminal(t *testing.T) {
	dir := t.TempDir()
	msg := bytes.Repeat([]byte{0, 1, 2, 0xff}, 100)
	src := filepath.Join(dir, "msg")
	if err := os.WriteFile(src, msg, 0o644); err != nil {
		t.Fatal(err)
	}
	enc, err := ur.NewEncoder(msg, ur.EncoderOptions{MaxFragmentLen: 100})
	if err != nil {
		t.Fatal(err)
	}
	n := 3*enc.SeqLen() + 10
	r := mustRun(t, "qr", "show", src, "--fps", "60", "--fragment", "100")
	if got := strings.Count(r.stdout, "\x1b[H\x1b[2J"); got != n {
		t.Errorf("%d frames drawn, want %d (three times the fragments, plus 10)", got, n)
	}
	for _, want := range []string{"▀", fmt.Sprintf("frame %d/%d", n, n), "fingerprint: " + ur.Fingerprint(msg), "\x1b[30;107m"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("terminal output lacks %q", want)
		}
	}
}

func TestQRUsage(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "msg")
	if err := os.WriteFile(src, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	empty := filepath.Join(dir, "empty")
	if err := os.WriteFile(empty, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		code int
		want string
		args []string
	}{
		{2, "needs a subcommand", []string{"qr"}},
		{2, "want one FILE", []string{"qr", "show"}},
		{2, "--fps", []string{"qr", "show", src, "--fps", "0"}},
		{2, "--fragment", []string{"qr", "show", src, "--fragment", "5"}},
		{2, "--loop animates in the terminal", []string{"qr", "show", src, "--loop", "--png", dir}},
		{2, "exactly one source", []string{"qr", "scan", "--out", "x"}},
		{2, "exactly one source", []string{"qr", "scan", "--images", dir, "--lines", "-", "--out", "x"}},
		{2, "--out FILE is required", []string{"qr", "scan", "--images", dir}},
		{1, "is not empty", []string{"qr", "show", src, "--png", dir}},
		{1, "empty; nothing to show", []string{"qr", "show", empty}},
	} {
		mustFail(t, tc.code, tc.want, tc.args...)
	}
}

// qr show BUNDLE sends the request with its provenance, never the
// artifacts, and prints the request fingerprint the appliance shows.
func TestQRShowBundleFolder(t *testing.T) {
	dir := t.TempDir()
	b := filepath.Join(dir, "bundle")
	for name, data := range map[string]string{
		"request.json":               `{"format":"airlock-request/1"}`,
		"artifacts/a-1.0.0.tgz":      strings.Repeat("A", 5000),
		"provenance/a.sigstore.json": `{"mediaType":"application/vnd.dev.sigstore.bundle+json;version=0.2"}`,
	} {
		p := filepath.Join(b, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	frames := filepath.Join(dir, "frames")
	r := mustRun(t, "qr", "show", b, "--png", frames)
	for _, want := range []string{"request.json and 1 provenance files", "artifacts are not sent", "request fingerprint: " + ur.Fingerprint([]byte(`{"format":"airlock-request/1"}`))} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("qr show BUNDLE does not say %q:\n%s", want, r.stderr)
		}
	}
	out := filepath.Join(dir, "received")
	mustRun(t, "qr", "scan", "--images", frames, "--out", out)
	msg, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if !bundle.IsQRTar(msg) || bytes.Contains(msg, []byte("AAAA")) {
		t.Fatalf("the received message is not the packed request and provenance (%d bytes)", len(msg))
	}
	m, err := bundle.ImportQR(msg, filepath.Join(dir, "in"), bundle.Options{})
	if err != nil || len(m.Files) != 2 {
		t.Fatalf("import of the received message: %v %+v", err, m)
	}
}
