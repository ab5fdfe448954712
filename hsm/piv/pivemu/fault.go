package pivemu

import "fmt"

// Fault says when an injected removal happens, relative to the command it
// is attached to.
type Fault int

const (
	// PullBefore pulls the card out as the command arrives: the card never
	// acts on it.
	PullBefore Fault = iota + 1
	// PullAfter pulls the card out once it has acted on the command, before
	// the answer goes out: the host never learns that it succeeded.
	PullAfter
)

func (f Fault) String() string {
	switch f {
	case PullBefore:
		return "before"
	case PullAfter:
		return "after"
	}
	return fmt.Sprintf("Fault(%d)", int(f))
}

// PullAt arranges for the card to be pulled out of its reader at the nth
// command APDU it receives from a reader from now on (1 is the next one),
// before or after acting on it. n <= 0 cancels an arranged pull. Commands
// given to Process directly do not count.
func (c *Card) PullAt(n int, f Fault) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if n <= 0 {
		c.pullIn, c.pullKind = 0, 0
		return
	}
	c.pullIn, c.pullKind = n, f
}

// takePull counts one command from the reader and reports the arranged
// fault if this is its command.
func (c *Card) takePull() Fault {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.pullIn == 0 {
		return 0
	}
	c.pullIn--
	if c.pullIn > 0 {
		return 0
	}
	f := c.pullKind
	c.pullKind = 0
	return f
}

// Commands returns the names (see CommandName) of the command APDUs the
// card has received since it was made or since the last ResetCommands, up
// to 4096 of them.
func (c *Card) Commands() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.trace...)
}

// ResetCommands forgets the commands received so far.
func (c *Card) ResetCommands() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.trace = nil
}

// CommandName names a command APDU the way the emulator logs it:
// "VERIFY PIN", "PUT DATA 5fc109", "GENERATE 9c", "SIGN 9c", ... A chained
// part of a longer command is named "(chained)" after it.
func CommandName(apdu []byte) string {
	if len(apdu) < 4 {
		return "SHORT APDU"
	}
	ins, p1, p2 := apdu[1], apdu[2], apdu[3]
	var data []byte
	if len(apdu) > 5 && len(apdu) >= 5+int(apdu[4]) {
		data = apdu[5 : 5+int(apdu[4])]
	}
	var name string
	switch ins {
	case 0xa4:
		name = "SELECT"
	case 0xfd:
		name = "GET VERSION"
	case 0xf8:
		name = "GET SERIAL"
	case 0x20:
		name = "VERIFY PIN"
		if len(data) == 0 {
			name = "VERIFY PIN (status)"
		}
	case 0x24:
		name = "CHANGE REFERENCE"
	case 0x2c:
		name = "RESET RETRY COUNTER"
	case 0xf7:
		name = fmt.Sprintf("GET METADATA %02x", p2)
	case 0x87:
		if p2 == slotMgmt {
			name = "AUTHENTICATE 9b"
		} else {
			name = fmt.Sprintf("SIGN %02x", p2)
		}
	case 0x47:
		name = fmt.Sprintf("GENERATE %02x", p2)
	case 0xf9:
		name = fmt.Sprintf("ATTEST %02x", p1)
	case 0xcb, 0xdb:
		name = "GET DATA"
		if ins == 0xdb {
			name = "PUT DATA"
		}
		if id, ok := objectID(data); ok {
			name += fmt.Sprintf(" %06x", id)
		}
	case 0xff:
		name = "SET MANAGEMENT KEY"
	case 0xfb:
		name = "RESET"
	case 0xc0:
		name = "GET RESPONSE"
	default:
		name = fmt.Sprintf("INS %02x", ins)
	}
	if apdu[0]&0x10 != 0 {
		name += " (chained)"
	}
	return name
}

// Object returns a copy of a data object's content as stored (inside the
// 53 tag), or nil when the card has no such object, so tests can read back
// what was written without going through the card's access rules.
func (c *Card) Object(id uint32) []byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	obj, ok := c.objects[id]
	if !ok {
		return nil
	}
	return append([]byte(nil), obj...)
}

// TimeOutNextTouch makes the next operation that waits for a touch fail as
// when nobody touches the key in time: the card answers 6982 (security
// status not satisfied) and signs nothing.
func (c *Card) TimeOutNextTouch() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.touchTimeout = true
}

// PutObjectInsecure stores a data object's content (inside 53) as another
// tool would have written it, without the management key. Test-only.
func (c *Card) PutObjectInsecure(id uint32, content []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.objects[id] = append([]byte(nil), content...)
}
