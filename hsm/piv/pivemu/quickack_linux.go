package pivemu

import (
	"net"
	"syscall"
)

// quickAck turns off delayed ACKs for the next segment: vpcd waits for the
// ACK before it sends again, so without this each APDU costs ~40 ms.
// The kernel clears TCP_QUICKACK by itself, so it is set after every read.
func quickAck(conn net.Conn) {
	tc, ok := conn.(*net.TCPConn)
	if !ok {
		return
	}
	raw, err := tc.SyscallConn()
	if err != nil {
		return
	}
	_ = raw.Control(func(fd uintptr) {
		_ = syscall.SetsockoptInt(int(fd), syscall.IPPROTO_TCP, syscall.TCP_QUICKACK, 1)
	})
}
