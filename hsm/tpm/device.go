package tpm

import (
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"strings"
	"time"

	"github.com/google/go-tpm/tpm2/transport"
	"github.com/google/go-tpm/tpm2/transport/linuxtpm"
	"github.com/google/go-tpm/tpm2/transport/linuxudstpm"
)

const (
	// DefaultDevice is the kernel's TPM resource manager, used when a URI
	// names no device.
	DefaultDevice = "/dev/tpmrm0"
	// DeviceSimulator names the in-process TPM simulator (cgo builds only).
	DeviceSimulator = "simulator"
	// dialTimeout bounds connecting to a swtpm server.
	dialTimeout = 10 * time.Second
	// commandTimeout bounds one command to a swtpm server (key generation
	// included).
	commandTimeout = 2 * time.Minute
	// maxResponseLen caps a TPM response (TPM 2.0 responses fit in 4 KiB).
	maxResponseLen = 8 << 10
)

// OpenDevice opens a TPM by name:
//
//	""  or /dev/...        a TPM character device (default /dev/tpmrm0)
//	tcp:HOST:PORT          a swtpm server's command port (swtpm socket --server type=tcp)
//	unix:/PATH             a swtpm server's unix socket (--server type=unixio)
//	simulator              the in-process simulator (cgo builds; tests only)
//
// The caller closes what it opened. The simulator is shared by the whole
// process: closing it releases this handle, not the simulator's state.
func OpenDevice(name string) (transport.TPMCloser, error) {
	t, err := openDevice(name)
	if err != nil || deviceHook == nil {
		return t, err
	}
	return deviceHook(t), nil
}

// deviceHook, when set (by tests only), wraps every opened device.
var deviceHook func(transport.TPMCloser) transport.TPMCloser

func openDevice(name string) (transport.TPMCloser, error) {
	switch {
	case name == "":
		return openCharDevice(DefaultDevice)
	case name == DeviceSimulator:
		return openSimulator()
	case strings.HasPrefix(name, "tcp:"):
		addr := strings.TrimPrefix(name, "tcp:")
		conn, err := net.DialTimeout("tcp", addr, dialTimeout)
		if err != nil {
			return nil, fmt.Errorf("tpm device %q: %w; is the swtpm server running?", name, err)
		}
		return transport.FromReadWriteCloser(&framedConn{conn: conn}), nil
	case strings.HasPrefix(name, "unix:"):
		path := strings.TrimPrefix(name, "unix:")
		if path == "" {
			return nil, fmt.Errorf("tpm device %q: want unix:/path/to/socket", name)
		}
		t, err := linuxudstpm.Open(path)
		if err != nil {
			return nil, fmt.Errorf("tpm device %q: %w; is the swtpm server running?", name, err)
		}
		return t, nil
	case strings.HasPrefix(name, "/dev/"):
		return openCharDevice(name)
	default:
		return nil, fmt.Errorf("tpm device %q: want /dev/tpmrm0, tcp:HOST:PORT, unix:/PATH or simulator", name)
	}
}

func openCharDevice(path string) (transport.TPMCloser, error) {
	t, err := linuxtpm.Open(path)
	if err != nil {
		return nil, fmt.Errorf("tpm device %s: %w; does this machine have a tpm 2.0, and may this user open it?", path, err)
	}
	return t, nil
}

// framedConn reads whole TPM responses from a stream: a Read returns one
// complete response (header, then the size it announces), however the
// bytes arrived, so that a response split across TCP segments is never
// taken for a short one.
type framedConn struct {
	conn    net.Conn
	pending []byte
}

func (c *framedConn) Write(p []byte) (int, error) {
	if err := c.conn.SetDeadline(time.Now().Add(commandTimeout)); err != nil {
		return 0, err
	}
	c.pending = nil
	return c.conn.Write(p)
}

func (c *framedConn) Read(p []byte) (int, error) {
	if len(c.pending) == 0 {
		head := make([]byte, 10)
		if _, err := io.ReadFull(c.conn, head); err != nil {
			return 0, fmt.Errorf("read tpm response header: %w", err)
		}
		size := int(binary.BigEndian.Uint32(head[2:6]))
		if size < len(head) || size > maxResponseLen {
			return 0, fmt.Errorf("tpm response announces %d bytes, want 10 to %d", size, maxResponseLen)
		}
		c.pending = make([]byte, size)
		copy(c.pending, head)
		if _, err := io.ReadFull(c.conn, c.pending[len(head):]); err != nil {
			return 0, fmt.Errorf("read tpm response: %w", err)
		}
	}
	n := copy(p, c.pending)
	c.pending = c.pending[n:]
	return n, nil
}

func (c *framedConn) Close() error { return c.conn.Close() }
