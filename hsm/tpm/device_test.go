package tpm

import (
	"bytes"
	"encoding/binary"
	"io"
	"net"
	"strings"
	"testing"

	"github.com/google/go-tpm/tpm2/transport"
)

// TestFramedConnSplitResponse: a response that arrives in pieces is read
// whole; an oversized announcement is refused.
func TestFramedConnSplitResponse(t *testing.T) {
	resp := make([]byte, 300)
	binary.BigEndian.PutUint16(resp, 0x8001)
	binary.BigEndian.PutUint32(resp[2:], uint32(len(resp)))
	for i := 10; i < len(resp); i++ {
		resp[i] = byte(i)
	}
	client, server := net.Pipe()
	defer client.Close()
	go func() {
		defer server.Close()
		cmd := make([]byte, 12)
		if _, err := io.ReadFull(server, cmd); err != nil {
			return
		}
		for _, piece := range [][]byte{resp[:3], resp[3:10], resp[10:200], resp[200:]} {
			if _, err := server.Write(piece); err != nil {
				return
			}
		}
		if _, err := io.ReadFull(server, cmd); err != nil {
			return
		}
		bad := bytes.Clone(resp[:10])
		binary.BigEndian.PutUint32(bad[2:], maxResponseLen+1)
		server.Write(bad)
	}()
	tp := transport.FromReadWriteCloser(&framedConn{conn: client})
	cmd := []byte{0x80, 0x01, 0, 0, 0, 12, 0, 0, 0x01, 0x7b, 0, 8}
	got, err := tp.Send(cmd)
	if err != nil {
		t.Fatalf("Send: %v", err)
	}
	if !bytes.Equal(got, resp) {
		t.Fatalf("got %d bytes, want the %d-byte response", len(got), len(resp))
	}
	if _, err := tp.Send(cmd); err == nil || !strings.Contains(err.Error(), "announces") {
		t.Fatalf("oversized response: %v", err)
	}
}

func TestOpenDeviceRefuses(t *testing.T) {
	for _, name := range []string{"bogus", "unix:", "/dev/no-such-tpm", "tcp:127.0.0.1:1"} {
		if tp, err := OpenDevice(name); err == nil {
			tp.Close()
			t.Errorf("OpenDevice(%q) succeeded", name)
		}
	}
}
