package tui

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"airlock.dev/airlock/internal/appdemo"
	"airlock.dev/airlock/transfer/bundle"
	"airlock.dev/airlock/transfer/qr"
	"airlock.dev/airlock/transfer/ur"
	"airlock.dev/airlock/tuf"
)

// needTools skips when a tool scripts/install-test-deps.sh installs is
// absent.
func needTools(t *testing.T, tools ...string) {
	t.Helper()
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not installed (scripts/install-test-deps.sh installs it)", tool)
		}
	}
}

// buildAppliance builds cmd/airlock-appliance into dir.
func buildAppliance(t *testing.T, dir string) string {
	t.Helper()
	bin := filepath.Join(dir, "airlock-appliance")
	out, err := exec.Command("go", "build", "-o", bin, "airlock.dev/airlock/cmd/airlock-appliance").CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// runCmd runs a command and fails the test on error.
func runCmd(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %v: %v\n%s", name, args, err, out)
	}
	return string(out)
}

// fat32Image makes an empty FAT32 image (no partition table) with mkfs.vfat.
func fat32Image(t *testing.T, dir, name string) string {
	t.Helper()
	img := filepath.Join(dir, name)
	f, err := os.Create(img)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(40 << 20); err != nil {
		t.Fatal(err)
	}
	f.Close()
	runCmd(t, "mkfs.vfat", "-F", "32", img)
	return img
}

// startTmux runs cmd in a private tmux server at 80×25 and returns the
// session; the program's exit status goes to status.
func startTmux(t *testing.T, cmd, status string) *tmuxSession {
	s := &tmuxSession{t: t, socket: fmt.Sprintf("airlock-%s-%d", strings.ToLower(t.Name()), os.Getpid())}
	full := fmt.Sprintf("TERM=linux %s > %s.out 2>&1; echo $? > %s; sleep 600", cmd, status, status)
	s.tmux("new-session", "-d", "-s", "e2e", "-x", "80", "-y", "25", full)
	t.Cleanup(func() { exec.Command("tmux", "-L", s.socket, "kill-server").Run() })
	return s
}

// waitExit waits for the program's exit status and fails unless it is 0.
func (s *tmuxSession) waitExit(status string) {
	s.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		b, _ := os.ReadFile(status)
		if len(b) > 0 {
			if strings.TrimSpace(string(b)) != "0" {
				out, _ := os.ReadFile(status + ".out")
				s.t.Fatalf("airlock-appliance exited with %s: %s", b, out)
			}
			return
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("airlock-appliance did not exit; screen:\n%s", s.capture())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// keyFlags are the --key flags of a demo's holders.
func keyFlags(d *appdemo.Demo) string {
	var b strings.Builder
	for _, k := range d.Keys {
		fmt.Fprintf(&b, " --key %s", k)
	}
	return b.String()
}

// TestE2EImportFromUSBImage copies a demo bundle onto a FAT32 image with
// mtools, runs airlock-appliance --usb IMAGE under tmux, checks the import
// screen's progress and source, and signs the bundle it read.
func TestE2EImportFromUSBImage(t *testing.T) {
	needTools(t, "tmux", "mkfs.vfat", "mcopy")
	tmp := t.TempDir()
	bin := buildAppliance(t, tmp)
	d, err := appdemo.Prepare(filepath.Join(tmp, "demo"), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	img := fat32Image(t, tmp, "stick.img")
	runCmd(t, "mcopy", "-s", "-i", img, d.Bundle, "::")
	outImg := fat32Image(t, tmp, "out.img")
	out := filepath.Join(tmp, "out")
	status := filepath.Join(tmp, "status")
	s := startTmux(t, fmt.Sprintf("%s --state %s --usb %s --export-usb %s --dev --out %s%s", bin, d.StateDir, img, outImg, out, keyFlags(d)), status)

	s.wait("> 20")
	s.send("Enter") // today's date
	req, err := os.ReadFile(filepath.Join(d.Bundle, "request.json"))
	if err != nil {
		t.Fatal(err)
	}
	saveScreen(t, "2-sender-fingerprint-usb", s.wait(ur.Fingerprint(req)))
	s.send("y", "Enter") // the same fingerprint as the sender's
	s.wait("approve sigstore version 1 - alice (DEMO)")
	// Look back at the import screen: it shows the stick and a full bar.
	s.send("Escape")
	for range 3 {
		if strings.Contains(s.capture(), "2 import") {
			break
		}
		s.send("Escape")
		time.Sleep(200 * time.Millisecond)
	}
	screen := s.wait("2 import")
	saveScreen(t, "2-import-usb", screen)
	for _, want := range []string{"usb " + img[:20], "(FAT32): bundle", "[########################################]", "Read from usb"} {
		if !strings.Contains(screen, want) {
			t.Errorf("import screen lacks %q:\n%s", want, screen)
		}
	}
	s.send("Tab", "y", "Enter") // back to the question, approve as alice
	s.wait("approve sigstore version 1 - bob (DEMO)")
	s.send("y", "Enter")
	screen = s.wait("SIGNED")
	if !strings.Contains(screen, "out.img:/sigstore-") {
		t.Errorf("done screen does not say the response went to the usb image:\n%s", screen)
	}
	s.send("Enter")
	s.waitExit(status)

	rb, err := os.ReadFile(filepath.Join(out, "response.json"))
	if err != nil {
		t.Fatal(err)
	}
	// The same response is on the exported FAT32 image, read with mtools.
	dirs := strings.Fields(runCmd(t, "mdir", "-b", "-i", outImg, "::"))
	if len(dirs) != 1 {
		t.Fatalf("export image holds %q, want one response folder", dirs)
	}
	onStick := runCmd(t, "mtype", "-i", outImg, dirs[0]+"/response.json")
	if onStick != string(rb) {
		t.Fatalf("response.json on the usb image differs from the folder's:\n%s", onStick)
	}
	resp, err := tuf.ParseResponse(rb)
	if err != nil {
		t.Fatalf("exported response: %v", err)
	}
	if len(resp.Signatures) != 2 {
		t.Fatalf("response has %d signatures, want 2", len(resp.Signatures))
	}
}

// TestE2EImportOverQR packs a demo bundle's request and provenance as
// airlock qr show BUNDLE does, renders the UR parts as PNG frames, runs
// airlock-appliance --qr-images under tmux, and checks the sender
// fingerprint question, the scan progress, that provenance arrived (the
// demo policy requires it) and that the review says content diffs were not
// available.
func TestE2EImportOverQR(t *testing.T) {
	needTools(t, "tmux")
	if _, err := qr.NewZbar(); err != nil {
		t.Fatalf("zbar (scripts/install-test-deps.sh installs it): %v", err)
	}
	tmp := t.TempDir()
	bin := buildAppliance(t, tmp)
	d, err := appdemo.Prepare(filepath.Join(tmp, "demo"), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	req, err := os.ReadFile(filepath.Join(d.Bundle, "request.json"))
	if err != nil {
		t.Fatal(err)
	}
	msg, m, err := bundle.WriteQR(os.DirFS(d.Bundle))
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Files) != 2 || m.Files[0].Path != "provenance/sigstore@2.0.0.provenance.sigstore.json" {
		t.Fatalf("the QR message holds %+v, want request.json and the provenance bundle", m.Files)
	}
	enc, err := ur.NewEncoder(msg, ur.EncoderOptions{MaxFragmentLen: 600})
	if err != nil {
		t.Fatal(err)
	}
	frames := filepath.Join(tmp, "frames")
	if err := os.Mkdir(frames, 0o755); err != nil {
		t.Fatal(err)
	}
	for i := range enc.SeqLen() + 3 {
		png, err := qr.RenderPNG([]byte(enc.NextPart()), 3)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(frames, fmt.Sprintf("frame-%04d.png", i)), png, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	state := d.StateDir
	out := filepath.Join(tmp, "out")
	status := filepath.Join(tmp, "status")
	s := startTmux(t, fmt.Sprintf("%s --state %s --qr-images %s --dev --out %s%s", bin, state, frames, out, keyFlags(d)), status)
	s.wait("> 20")
	s.send("Enter")
	saveScreen(t, "2-sender-fingerprint-qr", s.wait(ur.Fingerprint(req)))
	s.send("y", "Enter")
	s.wait("approve sigstore version 1 - alice (DEMO)")
	// The diff tab says why it is empty. Keys go one by one: an Escape
	// followed at once by more keys reads as an escape sequence.
	for _, k := range []string{"Escape", "Right", "Right"} {
		s.send(k)
		time.Sleep(300 * time.Millisecond)
	}
	saveScreen(t, "4-review-3-diff-over-qr", s.wait("content diffs were not"))
	s.send("Left", "Left")
	for range 3 {
		if strings.Contains(s.capture(), "2 import") {
			break
		}
		s.send("Escape")
		time.Sleep(200 * time.Millisecond)
	}
	screen := s.wait("2 import")
	saveScreen(t, "2-import-qr", screen)
	for _, want := range []string{"Scanning QR codes: 100%", "Message fingerprint: " + ur.Fingerprint(msg), "request and 1 provenance files"} {
		if !strings.Contains(screen, want) {
			t.Errorf("import screen lacks %q:\n%s", want, screen)
		}
	}
	s.send("Tab", "y", "Enter")
	s.wait("approve sigstore version 1 - bob (DEMO)")
	s.send("y", "Enter")
	s.wait("SIGNED")
	s.send("Enter")
	s.waitExit(status)
	if _, err := os.Stat(filepath.Join(out, "response.json")); err != nil {
		t.Fatal(err)
	}
}
