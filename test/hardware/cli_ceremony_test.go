package hardware_test

// airlock-appliance sign, the appliance's scripted ceremony, with the two
// hardware holders: the fingerprint is confirmed on the command line and
// the PINs are typed on the controlling terminal (a pseudo-terminal here).

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"airlock.dev/airlock/appliance"
	"airlock.dev/airlock/hsm/attest"
	"airlock.dev/airlock/hsm/tpm/tpmtest"
	"airlock.dev/airlock/internal/testrig"
	"airlock.dev/airlock/tuf"
)

// cliWithin bounds a run of airlock-appliance sign that waits for an answer
// the test never types.
const cliWithin = 2 * time.Minute

// openPTY opens a pseudo-terminal pair.
func openPTY(t *testing.T) (master, slave *os.File) {
	t.Helper()
	m, err := os.OpenFile("/dev/ptmx", os.O_RDWR, 0)
	if err != nil {
		t.Fatalf("opening /dev/ptmx (a pseudo-terminal is needed to type the pins): %v", err)
	}
	t.Cleanup(func() { m.Close() })
	if err := unix.IoctlSetPointerInt(int(m.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		t.Fatalf("unlocking the pty: %v", err)
	}
	n, err := unix.IoctlGetInt(int(m.Fd()), unix.TIOCGPTN)
	if err != nil {
		t.Fatalf("pty number: %v", err)
	}
	s, err := os.OpenFile("/dev/pts/"+strconv.Itoa(n), os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Fatalf("opening the pty slave: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return m, s
}

// terminal answers the PIN prompts a program writes on its
// pseudo-terminal: each prompt with the first unused answer whose prompt it
// shows, or with an empty line (which cancels) when none fits, so that an
// unexpected prompt ends the run instead of hanging it.
type terminal struct {
	mu      sync.Mutex
	text    bytes.Buffer
	answers []answer
	handled int // PIN prompts answered
}

// answer is typed at a PIN prompt showing prompt.
type answer struct {
	prompt, typed string
	done          bool
}

func (tm *terminal) run(m *os.File) {
	buf := make([]byte, 4096)
	for {
		n, err := m.Read(buf)
		tm.mu.Lock()
		tm.text.Write(buf[:n])
		text := tm.text.String()
		if strings.Count(text, "PIN for ") > tm.handled && strings.HasSuffix(strings.TrimRight(text, " "), ":") {
			tm.handled++
			last := text[strings.LastIndex(text, "PIN for "):]
			typed := ""
			for i := range tm.answers {
				if a := &tm.answers[i]; !a.done && strings.Contains(last, a.prompt) {
					a.done, typed = true, a.typed
					break
				}
			}
			m.Write([]byte(typed + "\n"))
		}
		tm.mu.Unlock()
		if err != nil {
			return
		}
	}
}

func (tm *terminal) String() string {
	tm.mu.Lock()
	defer tm.mu.Unlock()
	return tm.text.String()
}

func TestApplianceSignCommandWithHardwareKeys(t *testing.T) {
	r := newRig(t, tpmtest.Swtpm)
	// airlock-appliance trusts only Yubico's attestation roots, not the
	// emulator's: this role asks for no attestation.
	rp := r.policy.Roles[role]
	rp.Attestation = attest.Policy{}
	r.policy.Roles[role] = rp
	st := r.state(true)
	rel := r.bundle("1.0.0")
	c, err := appliance.New(appliance.Config{State: st, UI: testrig.NewScriptedUI(nil), Clock: r.clock(), Date: r.now, Bundle: testrig.DirBundle(rel.dir)})
	if err != nil {
		t.Fatal(err)
	}
	rev, err := c.Review(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	stateDir := st.Path()
	st.Close()

	bin := filepath.Join(t.TempDir(), "airlock-appliance")
	if out, err := exec.Command("go", "build", "-o", bin, "airlock.dev/airlock/cmd/airlock-appliance").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	sign := func(answers ...answer) (code int, tty, stdout, stderr string, out string) {
		t.Helper()
		m, s := openPTY(t)
		out = filepath.Join(r.dir, "cli-out-"+time.Now().Format("150405.000000000"))
		cmd := exec.Command(bin, "sign", "--state", stateDir, rel.dir, "--key", r.YubiKeyURI.String(), "--key", r.TPMURI.String(),
			"--out", out, "--date", r.now.Format(time.DateOnly), "--confirm-fingerprint", rev.SHA256)
		var so, se bytes.Buffer
		cmd.Stdin, cmd.Stdout, cmd.Stderr = s, &so, &se
		cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0}
		tm := &terminal{answers: answers}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		s.Close()
		read := make(chan struct{})
		go func() { tm.run(m); close(read) }()
		waited := make(chan error, 1)
		go func() { waited <- cmd.Wait() }()
		var err error
		select {
		case err = <-waited:
		case <-time.After(cliWithin):
			// A prompt the test does not answer waits forever.
			cmd.Process.Kill()
			<-waited
			t.Fatalf("airlock-appliance sign still ran after %v; the terminal shows:\n%s\nstderr:\n%s", cliWithin, tm.String(), se.String())
		}
		<-read // the pty reads EOF once the program has gone
		code = cmd.ProcessState.ExitCode()
		if err != nil && code < 0 {
			t.Fatalf("airlock-appliance sign: %v", err)
		}
		return code, tm.String(), so.String(), se.String(), out
	}

	// A wrong YubiKey PIN: exit status 1 saying how many tries are left.
	code, tty, _, stderr, _ := sign(answer{prompt: "PIN for " + alice + " (" + r.YubiKeyURI.String() + ") [3 tries left]: ", typed: "000000"})
	if code != 1 || !strings.Contains(stderr, "wrong pin: 2 retries left before the key is blocked") {
		t.Fatalf("wrong pin: exit %d, stderr:\n%s\nterminal:\n%s", code, stderr, tty)
	}
	if strings.Contains(tty, "000000") {
		t.Fatalf("the pin typed was echoed:\n%s", tty)
	}

	// Both PINs right; the prompt shows Alice's 2 tries left and the touch
	// prompt names her.
	code, tty, stdout, stderr, out := sign(
		answer{prompt: "PIN for " + alice + " (" + r.YubiKeyURI.String() + ") [2 tries left]: ", typed: yubiKeyPIN},
		answer{prompt: "PIN for " + bob + " (" + r.TPMURI.String() + ") [", typed: tpmPIN})
	if code != 0 {
		t.Fatalf("exit %d, stderr:\n%s\nterminal:\n%s", code, stderr, tty)
	}
	if !strings.Contains(stderr, alice+": touch the key "+r.YubiKeyURI.String()+" now") || !strings.Contains(stdout, "by 2 holders") {
		t.Errorf("stdout:\n%s\nstderr:\n%s", stdout, stderr)
	}
	b, err := os.ReadFile(filepath.Join(out, appliance.ResponseFile))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := tuf.ParseResponse(b)
	if err != nil {
		t.Fatal(err)
	}
	if resp.Dev || len(resp.Signatures) != 2 {
		t.Fatalf("response: development %v, %d signatures", resp.Dev, len(resp.Signatures))
	}
	r.publish(t, rel, resp)
}
