// Package tpmtest gives tests a TPM: the in-process simulator (cgo builds)
// or a swtpm server started with a fresh state directory, and the few owner
// and lockout operations tests need (dictionary-attack parameters, lockout
// reset, PCR extend). Every helper cleans up what it started through
// t.Cleanup, by process id.
package tpmtest

import (
	"encoding/binary"
	"errors"
	"fmt"
	mathrand "math/rand/v2"
	"net"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-tpm/tpm2"
	"github.com/google/go-tpm/tpm2/transport"

	"airlock.dev/airlock/hsm/tpm"
	"airlock.dev/airlock/hsm/tpm/tpmsim"
)

// simLock makes tests that use the simulator take turns: there is one
// simulator per process.
var simLock sync.Mutex

// Simulator wipes the in-process simulator and returns its device name for
// key URIs ("simulator"). The test holds the simulator until it ends; a test
// must not call Simulator twice. Without cgo the test is skipped.
func Simulator(t testing.TB) string {
	t.Helper()
	if !tpmsim.Available {
		t.Skip("in-process tpm simulator needs cgo")
	}
	simLock.Lock()
	t.Cleanup(simLock.Unlock)
	if err := tpmsim.ResetInsecure(); err != nil {
		t.Fatalf("reset tpm simulator: %v", err)
	}
	return tpm.DeviceSimulator
}

const (
	swtpmStartTimeout = 10 * time.Second
	swtpmStopTimeout  = 5 * time.Second
)

// Swtpm starts a swtpm server with a fresh state directory on two free
// loopback ports and returns its device name for key URIs
// ("tcp:127.0.0.1:PORT"). The server is stopped (SIGTERM, then SIGKILL) when
// the test ends. The test is skipped when swtpm is not installed.
func Swtpm(t testing.TB) string {
	t.Helper()
	for attempt := 0; ; attempt++ {
		port, err := freePortPair()
		if err != nil {
			t.Fatalf("find free ports for swtpm: %v", err)
		}
		addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
		err = startSwtpm(t, addr, "tcp",
			"--server", fmt.Sprintf("type=tcp,port=%d,bindaddr=127.0.0.1", port),
			"--ctrl", fmt.Sprintf("type=tcp,port=%d,bindaddr=127.0.0.1", port+1))
		if err == nil {
			return "tcp:" + addr
		}
		if attempt == 4 {
			t.Fatal(err)
		}
		// Another process took a port meanwhile: try others.
	}
}

// SwtpmUnix is Swtpm serving on a unix socket in a temporary folder
// ("unix:/PATH").
func SwtpmUnix(t testing.TB) string {
	t.Helper()
	dir := t.TempDir()
	sock := filepath.Join(dir, "swtpm.sock")
	err := startSwtpm(t, sock, "unix",
		"--server", "type=unixio,path="+sock,
		"--ctrl", "type=unixio,path="+filepath.Join(dir, "swtpm.ctrl"))
	if err != nil {
		t.Fatal(err)
	}
	return "unix:" + sock
}

func startSwtpm(t testing.TB, addr, network string, args ...string) error {
	t.Helper()
	bin, err := exec.LookPath("swtpm")
	if err != nil {
		t.Skip("swtpm not installed (apt-get install swtpm)")
	}
	args = append([]string{"socket", "--tpm2",
		"--tpmstate", "dir=" + t.TempDir(),
		"--flags", "not-need-init,startup-clear"}, args...)
	cmd := exec.Command(bin, args...)
	out := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatalf("start swtpm: %v", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	pid := cmd.Process.Pid
	t.Cleanup(func() { stop(t, pid, exited) })
	if err := waitListening(network, addr, exited); err != nil {
		return fmt.Errorf("swtpm did not start: %v\n%s", err, out.String())
	}
	return nil
}

func stop(t testing.TB, pid int, exited chan error) {
	select {
	case <-exited:
		return
	default:
	}
	if err := syscall.Kill(pid, syscall.SIGTERM); err != nil {
		t.Logf("stop swtpm pid %d: %v", pid, err)
	}
	select {
	case <-exited:
	case <-time.After(swtpmStopTimeout):
		_ = syscall.Kill(pid, syscall.SIGKILL)
		<-exited
	}
}

// freePortPair finds P such that P and P+1 are free on 127.0.0.1, below
// the kernel's ephemeral range so that outgoing connections do not take
// them meanwhile.
func freePortPair() (int, error) {
	for i := 0; i < 200; i++ {
		port := 10000 + 2*mathrand.IntN(10000)
		l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
		if err != nil {
			continue
		}
		l2, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port+1)))
		l.Close()
		if err != nil {
			continue
		}
		l2.Close()
		return port, nil
	}
	return 0, errors.New("no two consecutive free ports in 10000–30000")
}

func waitListening(network, addr string, exited chan error) error {
	deadline := time.Now().Add(swtpmStartTimeout)
	for time.Now().Before(deadline) {
		select {
		case err := <-exited:
			exited <- err
			return fmt.Errorf("swtpm exited: %v", err)
		default:
		}
		c, err := net.DialTimeout(network, addr, time.Second)
		if err == nil {
			c.Close()
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	return fmt.Errorf("nothing listening on %s after %v", addr, swtpmStartTimeout)
}

type syncBuffer struct {
	mu  sync.Mutex
	buf []byte
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf = append(b.buf, p...)
	return len(p), nil
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return string(b.buf)
}

// With opens dev, runs f and closes dev again: a swtpm server serves one
// connection at a time, so no test may hold one open.
func With(t testing.TB, dev string, f func(transport.TPM) error) error {
	t.Helper()
	tp, err := tpm.OpenDevice(dev)
	if err != nil {
		t.Fatalf("open tpm %s: %v", dev, err)
	}
	defer tp.Close()
	return f(tp)
}

// Command codes go-tpm v0.9.8 has no command structures for.
const (
	ccDictionaryAttackLockReset  = 0x00000139
	ccDictionaryAttackParameters = 0x0000013A
	rhLockout                    = 0x4000000A
	rsPW                         = 0x40000009
	stSessions                   = 0x8002
)

// lockoutCommand sends a command on TPM_RH_LOCKOUT with an empty password.
func lockoutCommand(tp transport.TPM, cc uint32, params ...uint32) error {
	b := binary.BigEndian.AppendUint16(nil, stSessions)
	b = binary.BigEndian.AppendUint32(b, 0) // size, set below
	b = binary.BigEndian.AppendUint32(b, cc)
	b = binary.BigEndian.AppendUint32(b, rhLockout)
	b = binary.BigEndian.AppendUint32(b, 9) // authorization area size
	b = binary.BigEndian.AppendUint32(b, rsPW)
	b = append(b, 0, 0, 0, 0, 0) // empty nonce, attributes 0, empty password
	for _, p := range params {
		b = binary.BigEndian.AppendUint32(b, p)
	}
	binary.BigEndian.PutUint32(b[2:], uint32(len(b)))
	rsp, err := tp.Send(b)
	if err != nil {
		return err
	}
	if len(rsp) < 10 {
		return fmt.Errorf("short response (%d bytes)", len(rsp))
	}
	if rc := tpm2.TPMRC(binary.BigEndian.Uint32(rsp[6:])); rc != tpm2.TPMRCSuccess {
		return rc
	}
	return nil
}

// SetDictionaryAttack sets the TPM's dictionary-attack parameters
// (TPM2_DictionaryAttackParameters): how many wrong authorisations lock it
// out, and the recovery intervals in seconds.
func SetDictionaryAttack(t testing.TB, dev string, maxTries, recoverySeconds, lockoutRecoverySeconds uint32) {
	t.Helper()
	err := With(t, dev, func(tp transport.TPM) error {
		return lockoutCommand(tp, ccDictionaryAttackParameters, maxTries, recoverySeconds, lockoutRecoverySeconds)
	})
	if err != nil {
		t.Fatalf("TPM2_DictionaryAttackParameters: %v", err)
	}
}

// ResetLockout clears the dictionary-attack counter
// (TPM2_DictionaryAttackLockReset), as the TPM owner would.
func ResetLockout(t testing.TB, dev string) {
	t.Helper()
	err := With(t, dev, func(tp transport.TPM) error { return lockoutCommand(tp, ccDictionaryAttackLockReset) })
	if err != nil {
		t.Fatalf("TPM2_DictionaryAttackLockReset: %v", err)
	}
}

// ExtendPCR extends a SHA-256 PCR with the digest of data, as a boot stage
// would when it measures the next one.
func ExtendPCR(t testing.TB, dev string, pcr int, digest []byte) {
	t.Helper()
	err := With(t, dev, func(tp transport.TPM) error {
		_, err := tpm2.PCRExtend{
			PCRHandle: tpm2.AuthHandle{Handle: tpm2.TPMHandle(pcr), Auth: tpm2.PasswordAuth(nil)},
			Digests: tpm2.TPMLDigestValues{Digests: []tpm2.TPMTHA{{
				HashAlg: tpm2.TPMAlgSHA256,
				Digest:  digest,
			}}},
		}.Execute(tp)
		return err
	})
	if err != nil {
		t.Fatalf("extend pcr %d: %v", pcr, err)
	}
}
