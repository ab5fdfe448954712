package cli

import (
	"bytes"
	"os"
	"testing"

	"golang.org/x/sys/unix"
)

// openPTY opens a pseudo-terminal pair.
func openPTY(t *testing.T) (master, slave *os.File) {
	t.Helper()
	m, err := os.OpenFile("/dev/ptmx", os.O_RDWR, 0)
	if err != nil {
		t.Fatalf("opening /dev/ptmx (a pseudo-terminal is needed to test the pin prompt): %v", err)
	}
	t.Cleanup(func() { m.Close() })
	if err := unix.IoctlSetPointerInt(int(m.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		t.Fatalf("unlocking the pty: %v", err)
	}
	n, err := unix.IoctlGetInt(int(m.Fd()), unix.TIOCGPTN)
	if err != nil {
		t.Fatalf("pty number: %v", err)
	}
	s, err := os.OpenFile("/dev/pts/"+itoa(n), os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Fatalf("opening the pty slave: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return m, s
}

func itoa(n int) string {
	if n == 0 {
		return "0"
	}
	var b []byte
	for ; n > 0; n /= 10 {
		b = append([]byte{byte('0' + n%10)}, b...)
	}
	return string(b)
}

// TestReadSecretEchoOffBeforePrompt checks that when the prompt reaches the
// screen, echo is already off, and that the PIN typed is never echoed.
func TestReadSecretEchoOffBeforePrompt(t *testing.T) {
	m, s := openPTY(t)
	type result struct {
		pin []byte
		err error
	}
	done := make(chan result, 1)
	go func() {
		pin, err := readSecret(s, "PIN: ")
		done <- result{pin, err}
	}()
	buf := make([]byte, 5)
	if _, err := m.Read(buf); err != nil || string(buf) != "PIN: " {
		t.Fatalf("reading the prompt: %q %v", buf, err)
	}
	tios, err := unix.IoctlGetTermios(int(s.Fd()), unix.TCGETS)
	if err != nil {
		t.Fatal(err)
	}
	if tios.Lflag&unix.ECHO != 0 {
		t.Fatal("echo was still on when the prompt was shown")
	}
	if _, err := m.Write([]byte("123456\n")); err != nil {
		t.Fatal(err)
	}
	r := <-done
	if r.err != nil || string(r.pin) != "123456" {
		t.Fatalf("readSecret = %q, %v", r.pin, r.err)
	}
	rest := make([]byte, 64)
	n, _ := m.Read(rest)
	if bytes.Contains(rest[:n], []byte("123456")) {
		t.Fatalf("the pin was echoed: %q", rest[:n])
	}
	after, err := unix.IoctlGetTermios(int(s.Fd()), unix.TCGETS)
	if err != nil {
		t.Fatal(err)
	}
	if after.Lflag&unix.ECHO == 0 {
		t.Fatal("echo was not restored after the prompt")
	}
}
