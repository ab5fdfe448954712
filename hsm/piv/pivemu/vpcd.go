package pivemu

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"time"
)

// vpcd control messages (one-byte frames from the reader).
const (
	vpcdPowerOff = 0
	vpcdPowerOn  = 1
	vpcdReset    = 2
	vpcdGetATR   = 4

	maxFrame    = 0xffff
	dialTimeout = 5 * time.Second
)

// Insert plugs the card into the vpcd reader whose card port is addr
// (127.0.0.1:PORT): it dials the reader and answers it until Remove or
// until the reader hangs up.
func (c *Card) Insert(addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("vpcd address %q: %w", addr, err)
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("vpcd address %q: the emulator only connects to a loopback address", addr)
	}
	c.mu.Lock()
	if c.conn != nil {
		c.mu.Unlock()
		return errors.New("card is already inserted; remove it first")
	}
	c.mu.Unlock()
	conn, err := net.DialTimeout("tcp", addr, dialTimeout)
	if err != nil {
		return fmt.Errorf("connecting the emulated card to vpcd at %s: %w", addr, err)
	}
	atr := make(chan struct{})
	c.mu.Lock()
	c.conn = conn
	c.atrAsked = atr
	c.sess = session{}
	c.mu.Unlock()
	go c.serve(conn, atr)
	return nil
}

// ATRRequested is closed once the reader has asked the current insertion
// for its ATR, the sign that pcscd has seen the card.
func (c *Card) ATRRequested() <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.atrAsked
}

// Remove pulls the card out of the reader. It does not wait for an
// operation in progress (a touch hook may be running); that operation's
// answer is lost, as with a real card.
func (c *Card) Remove() {
	c.mu.Lock()
	conn := c.conn
	c.conn = nil
	c.sess = session{}
	c.mu.Unlock()
	if conn != nil {
		conn.Close()
	}
}

// Inserted reports whether the card is connected to a reader.
func (c *Card) Inserted() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.conn != nil
}

func (c *Card) serve(conn net.Conn, atr chan struct{}) {
	defer func() {
		conn.Close()
		c.mu.Lock()
		if c.conn == conn {
			c.conn = nil
		}
		c.mu.Unlock()
	}()
	atrSent := false
	var hdr [2]byte
	buf := make([]byte, maxFrame)
	for {
		if _, err := io.ReadFull(conn, hdr[:]); err != nil {
			return
		}
		// vpcd may send the length and the body as two segments; ack the
		// first at once or the body waits for a delayed ack.
		quickAck(conn)
		n := int(binary.BigEndian.Uint16(hdr[:]))
		if _, err := io.ReadFull(conn, buf[:n]); err != nil {
			return
		}
		quickAck(conn)
		var resp []byte
		if n == 1 {
			switch buf[0] {
			case vpcdPowerOff, vpcdReset:
				c.mu.Lock()
				c.sess = session{}
				c.mu.Unlock()
				continue
			case vpcdPowerOn:
				continue
			case vpcdGetATR:
				resp = ATR
			default:
				continue
			}
		} else {
			pull := c.takePull()
			if pull == PullBefore {
				c.Remove()
				return
			}
			resp = c.Process(buf[:n])
			if pull == PullAfter {
				c.Remove()
				return
			}
		}
		frame := binary.BigEndian.AppendUint16(nil, uint16(len(resp)))
		if _, err := conn.Write(append(frame, resp...)); err != nil {
			return
		}
		if n == 1 && !atrSent {
			// Signal readiness once the ATR has gone out, not before.
			atrSent = true
			close(atr)
		}
	}
}
