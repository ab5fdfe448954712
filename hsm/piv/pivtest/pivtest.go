// Package pivtest runs what YubiKey tests need on a machine without a
// YubiKey: a private pcscd whose only reader driver is vsmartcard-vpcd, and
// emulated cards (hsm/piv/pivemu) plugged into its readers. Tests then drive
// the real stack: piv-go → libpcsclite → pcscd → vpcd → emulator.
//
// pcscd always serves /run/pcscd/pcscd.comm, one per machine, so Start takes
// an exclusive lock file for the life of the test (serialising test binaries
// that run at the same time) and refuses to run beside a pcscd it did not
// start. Start must not be called again in a test that already holds an Env.
// Tests need root (pcscd writes /run/pcscd), /usr/sbin/pcscd and the vpcd
// driver; without them Start fails the test, naming the missing package.
package pivtest

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"airlock.dev/airlock/hsm/piv"
	"airlock.dev/airlock/hsm/piv/pivemu"
)

const (
	pcscdPath   = "/usr/sbin/pcscd"
	vpcdDriver  = "/usr/lib/pcsc/drivers/serial/libifdvpcd.so"
	pcscdDir    = "/run/pcscd"
	pidFile     = pcscdDir + "/pcscd.pid"
	lockName    = "airlock-pivtest-pcscd.lock"
	readyWithin = 20 * time.Second
	stopWithin  = 10 * time.Second
	pollEvery   = 20 * time.Millisecond
	// replugWithin is how long Replug waits for pcscd to see a card back.
	replugWithin = time.Second
	portBase     = 20000
	portSpan     = 12000
	// Readers is how many vpcd readers an Env has (vpcd opens two per port).
	Readers = 2
)

// Env is a running pcscd with vpcd readers.
type Env struct {
	// Ports are the readers' card ports on 127.0.0.1.
	Ports [Readers]int
	cmd   *exec.Cmd
	log   *bytes.Buffer
}

// Start runs a private pcscd with vpcd readers for the test and stops it
// (by pid) when the test ends.
func Start(t testing.TB) *Env {
	t.Helper()
	for _, p := range []struct{ path, pkg string }{{pcscdPath, "pcscd"}, {vpcdDriver, "vsmartcard-vpcd"}} {
		if _, err := os.Stat(p.path); err != nil {
			t.Fatalf("%s missing: install the Debian package %s (scripts/install-test-deps.sh)", p.path, p.pkg)
		}
	}
	if os.Geteuid() != 0 {
		t.Fatal("pcscd tests need root: pcscd serves /run/pcscd/pcscd.comm")
	}
	lock := takeLock(t)
	t.Cleanup(func() { lock.Close() })
	if pid, ok := runningPcscd(); ok {
		t.Fatalf("a pcscd this test did not start is running (pid %d); stop it to run the yubikey tests", pid)
	}

	port, err := freePortPair()
	if err != nil {
		t.Fatalf("finding free ports for vpcd: %v", err)
	}
	dir := t.TempDir()
	conf := filepath.Join(dir, "reader.conf.d")
	if err := os.Mkdir(conf, 0o755); err != nil {
		t.Fatal(err)
	}
	cfg := fmt.Sprintf("FRIENDLYNAME \"Airlock Test vpcd\"\nDEVICENAME   /dev/null:0x%04X\nLIBPATH      %s\nCHANNELID    0x%04X\n", port, vpcdDriver, port)
	if err := os.WriteFile(filepath.Join(conf, "vpcd"), []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	e := &Env{Ports: [Readers]int{port, port + 1}, log: &bytes.Buffer{}}
	e.cmd = exec.Command(pcscdPath, "--foreground", "--config", conf)
	e.cmd.Stdout = e.log
	e.cmd.Stderr = e.log
	dieWithTest(e.cmd)
	if err := e.cmd.Start(); err != nil {
		t.Fatalf("starting pcscd: %v", err)
	}
	t.Cleanup(func() { e.stop(t) })
	// pcscd is ready when its socket exists and vpcd has bound the port.
	deadline := time.Now().Add(readyWithin)
	for {
		if _, err := os.Stat(filepath.Join(pcscdDir, "pcscd.comm")); err == nil && listening(port) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("pcscd did not open the vpcd reader within %v; its log:\n%s", readyWithin, e.log)
		}
		time.Sleep(pollEvery)
	}
	return e
}

func (e *Env) stop(t testing.TB) {
	if e.cmd.Process == nil {
		return
	}
	_ = e.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- e.cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(stopWithin):
		_ = e.cmd.Process.Kill()
		<-done
		t.Logf("pcscd (pid %d) ignored SIGTERM for %v and was killed", e.cmd.Process.Pid, stopWithin)
	}
}

// Log returns what pcscd printed so far.
func (e *Env) Log() string { return e.log.String() }

// Insert plugs card into reader i and waits until piv.List sees it.
func (e *Env) Insert(t testing.TB, card *pivemu.Card, reader int) {
	t.Helper()
	if reader < 0 || reader >= Readers {
		t.Fatalf("reader %d: want 0 to %d", reader, Readers-1)
	}
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(e.Ports[reader]))
	if err := card.Insert(addr); err != nil {
		t.Fatalf("inserting card %d: %v", card.Serial(), err)
	}
	select {
	case <-card.ATRRequested():
	case <-time.After(readyWithin):
		t.Fatalf("vpcd never asked card %d for its ATR; pcscd log:\n%s", card.Serial(), e.log)
	}
	e.waitFor(t, card.Serial(), true)
}

// Replug puts card back into reader i after a test pulled it out. When
// pcscd cleans up a connection a dead process left open on the pulled card
// it resets the reader, which vpcd cannot do without a card, and pcscd then
// misses the next insertion into that reader. Replug inserts the card and,
// if pcscd has not seen it within a second, pulls it and inserts it again,
// as a holder would.
func (e *Env) Replug(t testing.TB, card *pivemu.Card, reader int) {
	t.Helper()
	if reader < 0 || reader >= Readers {
		t.Fatalf("reader %d: want 0 to %d", reader, Readers-1)
	}
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(e.Ports[reader]))
	if err := card.Insert(addr); err != nil {
		t.Fatalf("inserting card %d: %v", card.Serial(), err)
	}
	deadline := time.Now().Add(replugWithin)
	for time.Now().Before(deadline) {
		if e.present(card.Serial()) {
			return
		}
		time.Sleep(pollEvery)
	}
	t.Logf("pcscd missed card %d coming back; pulling it and inserting it again", card.Serial())
	card.Remove()
	time.Sleep(replugWithin)
	e.Insert(t, card, reader)
}

func (e *Env) present(serial uint32) bool {
	cards, err := piv.List(context.Background())
	if err != nil {
		return false
	}
	for _, c := range cards {
		if c.Serial == serial {
			return true
		}
	}
	return false
}

// Remove pulls card out and waits until pcscd has noticed.
func (e *Env) Remove(t testing.TB, card *pivemu.Card) {
	t.Helper()
	card.Remove()
	e.waitFor(t, card.Serial(), false)
}

// WaitGone waits until pcscd no longer lists the card (after a test
// removed it some other way, for example from a touch hook).
func (e *Env) WaitGone(t testing.TB, card *pivemu.Card) {
	t.Helper()
	e.waitFor(t, card.Serial(), false)
}

func (e *Env) waitFor(t testing.TB, serial uint32, present bool) {
	t.Helper()
	deadline := time.Now().Add(readyWithin)
	var last error
	for time.Now().Before(deadline) {
		cards, err := piv.List(context.Background())
		last = err
		if err == nil {
			seen := false
			for _, c := range cards {
				seen = seen || c.Serial == serial
			}
			if seen == present {
				return
			}
		}
		time.Sleep(pollEvery)
	}
	t.Fatalf("card %d present=%v not reached within %v (last error: %v); pcscd log:\n%s", serial, present, readyWithin, last, e.log)
}

// listening reports whether something (vpcd) has bound the port. It does
// not connect: vpcd would take a connection for a card.
func listening(port int) bool {
	l, err := net.Listen("tcp", ":"+strconv.Itoa(port))
	if err != nil {
		return true
	}
	l.Close()
	return false
}

// freePortPair finds P such that P and P+1 are both free (vpcd binds both
// on all addresses). It searches below the kernel's ephemeral range, where
// outgoing connections leave no TIME_WAIT sockets behind.
func freePortPair() (int, error) {
	for range 200 {
		n, err := rand.Int(rand.Reader, big.NewInt(portSpan))
		if err != nil {
			return 0, err
		}
		p := portBase + int(n.Int64())
		l, err := net.Listen("tcp", ":"+strconv.Itoa(p))
		if err != nil {
			continue
		}
		l2, err := net.Listen("tcp", ":"+strconv.Itoa(p+1))
		l.Close()
		if err != nil {
			continue
		}
		l2.Close()
		return p, nil
	}
	return 0, errors.New("no two consecutive free ports between 20000 and 32000")
}

func takeLock(t testing.TB) *os.File {
	t.Helper()
	f, err := os.OpenFile(filepath.Join(os.TempDir(), lockName), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		t.Fatalf("opening the pcscd test lock: %v", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		t.Fatalf("locking the pcscd test lock: %v", err)
	}
	return f
}

// runningPcscd reports a live pcscd named by /run/pcscd/pcscd.pid. A stale
// pid file (pcscd killed) is fine: pcscd replaces it.
func runningPcscd() (int, bool) {
	b, err := os.ReadFile(pidFile)
	if err != nil {
		return 0, false
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 0 {
		return 0, false
	}
	if err := syscall.Kill(pid, 0); err != nil {
		return 0, false
	}
	return pid, true
}
