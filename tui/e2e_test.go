package tui

import (
	"bytes"
	"context"
	"fmt"
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

// tmuxSession drives one program in a private tmux server at 80×25.
type tmuxSession struct {
	t      *testing.T
	socket string
	keys   int // keystrokes sent
}

func (s *tmuxSession) tmux(args ...string) string {
	s.t.Helper()
	out, err := exec.Command("tmux", append([]string{"-L", s.socket}, args...)...).CombinedOutput()
	if err != nil {
		s.t.Fatalf("tmux %v: %v\n%s", args, err, out)
	}
	return string(out)
}

func (s *tmuxSession) capture() string { return s.tmux("capture-pane", "-p", "-t", "e2e") }

// send sends keys (tmux key names), counting each.
func (s *tmuxSession) send(keys ...string) {
	s.t.Helper()
	s.keys += len(keys)
	s.tmux(append([]string{"send-keys", "-t", "e2e"}, keys...)...)
}

// wait polls the pane until it shows want.
func (s *tmuxSession) wait(want string) string {
	s.t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		screen := s.capture()
		if strings.Contains(screen, want) {
			return screen
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("the screen never showed %q; it shows:\n%s", want, screen)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// saveScreen keeps a capture for reviewers when AIRLOCK_WRITE_SCREENS is
// set (go test ./tui -run E2E with AIRLOCK_WRITE_SCREENS=1).
func saveScreen(t *testing.T, name, screen string) {
	if os.Getenv("AIRLOCK_WRITE_SCREENS") == "" {
		return
	}
	dir := filepath.Join("..", "docs", "screens")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, name+".txt"), []byte(screen), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestE2EDemoUnderTmux builds airlock-appliance, runs --demo on an 80×25
// tmux pane with TERM=linux, walks the routine two-holder release with the
// keyboard, and checks that the exported response combines into the demo
// repository and verifies.
func TestE2EDemoUnderTmux(t *testing.T) {
	if _, err := exec.LookPath("tmux"); err != nil {
		t.Skip("tmux not installed (scripts/install-test-deps.sh installs it)")
	}
	tmp := t.TempDir()
	bin := filepath.Join(tmp, "airlock-appliance")
	build := exec.Command("go", "build", "-o", bin, "airlock.dev/airlock/cmd/airlock-appliance")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	demoDir := filepath.Join(tmp, "demo")
	status := filepath.Join(tmp, "status")
	s := &tmuxSession{t: t, socket: fmt.Sprintf("airlock-e2e-%d", os.Getpid())}
	cmd := fmt.Sprintf("TERM=linux %s --demo --dir %s > %s.out 2>&1; echo $? > %s; sleep 600", bin, demoDir, status, status)
	s.tmux("new-session", "-d", "-s", "e2e", "-x", "80", "-y", "25", cmd)
	t.Cleanup(func() { exec.Command("tmux", "-L", s.socket, "kill-server").Run() })

	screen := s.wait("> 20")
	saveScreen(t, "1-start", screen)
	if !strings.Contains(screen, "DEMO KEY") || !strings.Contains(screen, "Pinned root:  version 1") {
		t.Fatalf("start screen lacks the demo keys or the pinned root:\n%s", screen)
	}
	s.send("Enter") // confirm today's date

	screen = s.wait("approve sigstore version 1 - alice (DEMO)")
	saveScreen(t, "4-review-approve-alice", screen)
	fp := ""
	for _, l := range strings.Split(screen, "\n") {
		if i := strings.Index(l, "fingerprint "); i >= 0 && fp == "" && strings.Contains(l, "│") {
			fp = strings.Trim(l[i+len("fingerprint "):], " │")
		}
	}
	if fp == "" {
		t.Fatalf("review summary shows no fingerprint:\n%s", screen)
	}
	if os.Getenv("AIRLOCK_WRITE_SCREENS") != "" {
		// Browse the other tabs for the screenshots (not part of the count).
		k := s.keys
		s.send("Escape")
		time.Sleep(300 * time.Millisecond)
		for i, name := range reviewTabs[1:] {
			s.send(fmt.Sprint(i + 2))
			time.Sleep(300 * time.Millisecond)
			saveScreen(t, fmt.Sprintf("4-review-%d-%s", i+2, name), s.capture())
		}
		s.send("Tab")
		time.Sleep(300 * time.Millisecond)
		s.keys = k
	}
	s.send("y", "Enter") // alice: arm "approve and sign", take it
	s.wait("approve sigstore version 1 - bob (DEMO)")
	s.send("y", "Enter") // bob
	screen = s.wait("SIGNED")
	saveScreen(t, "7-done", screen)
	if !strings.Contains(screen, "alice (DEMO), bob (DEMO)") {
		t.Fatalf("done screen does not list both holders:\n%s", screen)
	}
	s.send("Enter") // leave
	deadline := time.Now().Add(30 * time.Second)
	for {
		b, _ := os.ReadFile(status)
		if len(b) > 0 {
			if strings.TrimSpace(string(b)) != "0" {
				out, _ := os.ReadFile(status + ".out")
				t.Fatalf("airlock-appliance exited with %s: %s", b, out)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("airlock-appliance did not exit; screen:\n%s", s.capture())
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("routine two-holder release: %d keystrokes (no PINs or touches with demo keys)", s.keys)
	if s.keys > 15 {
		t.Errorf("routine release took %d keystrokes, goal is at most 15", s.keys)
	}

	// The exported response must combine into the demo repository and verify.
	rb, err := os.ReadFile(filepath.Join(demoDir, "signatures", "response.json"))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := tuf.ParseResponse(rb)
	if err != nil {
		t.Fatalf("exported response: %v", err)
	}
	if len(resp.Signatures) != 2 {
		t.Fatalf("response has %d signatures, want 2", len(resp.Signatures))
	}
	repo, err := tuf.OpenRepository(filepath.Join(demoDir, "repo"))
	if err != nil {
		t.Fatal(err)
	}
	onlineKey, err := hsm.LoadFileKey(filepath.Join(demoDir, "keys", "online-demo-DEMO.pem"))
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	if _, err := online.Combine(repo, filepath.Join(demoDir, "bundle"), []*tuf.Response{resp}, onlineKey, now); err != nil {
		t.Fatalf("combining the exported response: %v", err)
	}
	root, err := os.ReadFile(filepath.Join(demoDir, "repo", "metadata", "1.root.json"))
	if err != nil {
		t.Fatal(err)
	}
	c := &tuf.Client{Fetch: tuf.DirFetcher(filepath.Join(demoDir, "repo")), RefTime: now}
	_, got, err := c.Verify(context.Background(), root, "sigstore/sigstore-2.0.0.tgz")
	if err != nil {
		t.Fatalf("verifying the signed release: %v", err)
	}
	want, _ := os.ReadFile(filepath.Join(demoDir, "ci", "sigstore-2.0.0.tgz"))
	if !bytes.Equal(got, want) {
		t.Fatal("verified target differs from the release")
	}
}
