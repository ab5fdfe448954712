// Package pivemu is a TEST-ONLY emulator of a YubiKey PIV card. It must never
// hold a real key: private keys, the PIN and the management key live in
// plain process memory, and its attestations chain to a throwaway CA the
// emulator makes up (AttestationCA), never to Yubico.
//
// The emulated card plugs into pcscd through the vsmartcard-vpcd reader
// driver: it dials the reader's port on 127.0.0.1 as the card and answers
// the APDUs piv-go sends, so tests exercise piv-go, libpcsclite and pcscd
// for real. It implements the PIV subset Airlock uses — select, version,
// serial, verify/change/unblock PIN with retry counters and blocking, the
// management key (3DES or AES) challenge-response, metadata, P-256 key
// generation with PIN and touch policies, ECDSA signing, attestation,
// get/put data with command and response chaining — and refuses the rest
// with 6D00.
//
// A Card is safe for concurrent use: its methods may be called from tests
// while the card answers APDUs.
package pivemu

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/des"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/binary"
	"fmt"
	"net"
	"sync"
	"time"
)

// PIV policy bytes, as in the generate command and the attestation.
const (
	PINPolicyNever  byte = 0x01
	PINPolicyOnce   byte = 0x02
	PINPolicyAlways byte = 0x03

	TouchPolicyNever  byte = 0x01
	TouchPolicyAlways byte = 0x02
	TouchPolicyCached byte = 0x03
)

const (
	algTDES   = 0x03
	algAES128 = 0x08
	algAES192 = 0x0a
	algAES256 = 0x0c
	algP256   = 0x11

	slotMgmt = 0x9b
	slotPIN  = 0x80
	slotPUK  = 0x81
	slotAtt  = 0xf9

	maxObjectLen  = 3 * 1024 // a YubiKey stores objects of about 3 KB
	maxChainedLen = 4 * 1024 // command chaining cap
	maxLeShort    = 256
	defaultRetry  = 3
	maxTrace      = 4096 // commands remembered for Commands
	cachedTouch   = 15 * time.Second
)

var (
	aidPIV = []byte{0xa0, 0x00, 0x00, 0x03, 0x08}
	// DefaultManagementKey is the factory management key of every YubiKey.
	DefaultManagementKey = []byte{
		1, 2, 3, 4, 5, 6, 7, 8, 1, 2, 3, 4, 5, 6, 7, 8, 1, 2, 3, 4, 5, 6, 7, 8,
	}
	// ATR is a YubiKey 5 NFC's answer to reset (T=1).
	ATR = []byte{0x3b, 0xfd, 0x13, 0x00, 0x00, 0x81, 0x31, 0xfe, 0x15, 0x80, 0x73, 0xc0, 0x21, 0xc0, 0x57, 0x59, 0x75, 0x62, 0x69, 0x4b, 0x65, 0x79, 0x40}
)

// Config describes an emulated card. Zero fields take YubiKey defaults.
type Config struct {
	// Serial is the card's serial number (default 10000001).
	Serial uint32
	// Firmware is the version the card reports (default 5.7.2). Firmware
	// 5.7 and later ship an AES-192 default management key, older ones 3DES.
	Firmware [3]byte
	// PIN and PUK default to 123456 and 12345678.
	PIN, PUK string
	// PINRetries defaults to 3.
	PINRetries int
	// CA issues the card's attestation certificate; nil makes a fresh one.
	// Cards sharing a CA model several keys from one vendor.
	CA *AttestationCA
	// ForceTouchPolicy, when set, replaces the touch policy a generate
	// command asks for — as a card with another configuration would — so
	// tests can make keys whose attestation shows that policy.
	ForceTouchPolicy byte
	// Touch is called when the card starts waiting for a touch; the card
	// answers the operation once it returns. Nil means an immediate touch.
	Touch func()
	// TouchTimedOut, when set, is asked after Touch returns whether the
	// holder failed to touch in time; if it returns true the card answers
	// as a YubiKey does when its touch timeout passes: 6982, security
	// status not satisfied, and no signature.
	TouchTimedOut func() bool
}

type slotKey struct {
	priv  *ecdsa.PrivateKey
	pin   byte
	touch byte
	gen   bool
}

// Card is one emulated YubiKey. Its persistent state (keys, PIN, objects)
// survives Remove and Insert, as on a real card; session state (PIN
// verified, management key authenticated) does not.
type Card struct {
	cfg Config

	mu           sync.Mutex
	pin, puk     []byte
	pinRetries   int
	pukRetries   int
	maxRetries   int
	mgmtAlg      byte
	mgmtKey      []byte
	keys         map[byte]*slotKey
	objects      map[uint32][]byte
	attKey       *ecdsa.PrivateKey
	device       *x509.Certificate
	ca           *AttestationCA
	conn         net.Conn
	atrAsked     chan struct{}
	sess         session
	lastTouch    time.Time
	signs, apdus int
	trace        []string
	pullIn       int
	pullKind     Fault
	touchTimeout bool
}

type session struct {
	selected    bool
	pinOK       bool // verified this session (PIN policy once)
	pinFresh    bool // verified by the previous command (PIN policy always)
	mgmtOK      bool
	witness     []byte
	chain       []byte
	chainINS    byte
	pendingResp []byte
}

// New makes a card in its factory state with an attestation key and
// certificate issued by cfg.CA.
func New(cfg Config) (*Card, error) {
	if cfg.Serial == 0 {
		cfg.Serial = 10000001
	}
	if cfg.Firmware == ([3]byte{}) {
		cfg.Firmware = [3]byte{5, 7, 2}
	}
	if cfg.PIN == "" {
		cfg.PIN = "123456"
	}
	if cfg.PUK == "" {
		cfg.PUK = "12345678"
	}
	if cfg.PINRetries == 0 {
		cfg.PINRetries = defaultRetry
	}
	if cfg.PINRetries < 1 || cfg.PINRetries > 15 {
		return nil, fmt.Errorf("pin retries %d: want 1 to 15", cfg.PINRetries)
	}
	pin, err := padPIN([]byte(cfg.PIN))
	if err != nil {
		return nil, fmt.Errorf("pin: %w", err)
	}
	puk, err := padPIN([]byte(cfg.PUK))
	if err != nil {
		return nil, fmt.Errorf("puk: %w", err)
	}
	ca := cfg.CA
	if ca == nil {
		if ca, err = NewAttestationCA(); err != nil {
			return nil, err
		}
	}
	attKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generating attestation key: %w", err)
	}
	device, err := ca.deviceCert(cfg.Serial, cfg.Firmware, attKey.Public())
	if err != nil {
		return nil, err
	}
	c := &Card{
		cfg: cfg, pin: pin, puk: puk,
		pinRetries: cfg.PINRetries, pukRetries: cfg.PINRetries, maxRetries: cfg.PINRetries,
		mgmtAlg: algTDES, mgmtKey: append([]byte(nil), DefaultManagementKey...),
		keys:    map[byte]*slotKey{},
		objects: map[uint32][]byte{},
		attKey:  attKey, device: device, ca: ca,
		atrAsked: make(chan struct{}),
	}
	if fwAtLeast(cfg.Firmware, 5, 7, 0) {
		c.mgmtAlg = algAES192
	}
	c.objects[0x5fff01] = certObject(device.Raw)
	return c, nil
}

// Serial is the card's serial number.
func (c *Card) Serial() uint32 { return c.cfg.Serial }

// AttestationRoot is the root the card's attestations chain to.
func (c *Card) AttestationRoot() *x509.Certificate { return c.ca.Root }

// ManagementKey returns a copy of the card's current management key, so
// tests can check it is no longer the factory default.
func (c *Card) ManagementKey() []byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]byte(nil), c.mgmtKey...)
}

// PINRetries is how many wrong PINs the card still accepts.
func (c *Card) PINRetries() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.pinRetries
}

// Signatures counts the signatures the card has made.
func (c *Card) Signatures() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.signs
}

// HasKey reports whether a slot holds a key.
func (c *Card) HasKey(slot byte) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.keys[slot] != nil
}

func certObject(der []byte) []byte {
	var b []byte
	b = appendTLV(b, 0x70, der)
	b = appendTLV(b, 0x71, []byte{0})
	b = appendTLV(b, 0xfe, nil)
	return b
}

func fwAtLeast(v [3]byte, major, minor, patch byte) bool {
	if v[0] != major {
		return v[0] > major
	}
	if v[1] != minor {
		return v[1] > minor
	}
	return v[2] >= patch
}

func padPIN(p []byte) ([]byte, error) {
	if len(p) < 1 || len(p) > 8 {
		return nil, fmt.Errorf("length %d: want 1 to 8 bytes", len(p))
	}
	out := bytes.Repeat([]byte{0xff}, 8)
	copy(out, p)
	return out, nil
}

// Status words.
const (
	swOK             = 0x9000
	swWrongLength    = 0x6700
	swSecurityStatus = 0x6982
	swAuthBlocked    = 0x6983
	swConditions     = 0x6985
	swWrongData      = 0x6a80
	swNotFound       = 0x6a82
	swNoMemory       = 0x6a84
	swWrongP1P2      = 0x6a86
	swRefNotFound    = 0x6a88
	swINSNotSupp     = 0x6d00
	swCLANotSupp     = 0x6e00
)

func sw(code int) []byte { return []byte{byte(code >> 8), byte(code)} }

func withSW(data []byte, code int) []byte { return append(append([]byte(nil), data...), sw(code)...) }

// Process answers one command APDU. It is what the vpcd link calls; tests
// may call it directly to probe edge cases.
func (c *Card) Process(apdu []byte) []byte {
	c.mu.Lock()
	c.apdus++
	if len(c.trace) < maxTrace {
		c.trace = append(c.trace, CommandName(apdu))
	}
	if len(apdu) < 4 {
		c.mu.Unlock()
		return sw(swWrongLength)
	}
	cla, ins, p1, p2 := apdu[0], apdu[1], apdu[2], apdu[3]
	var data []byte
	switch {
	case len(apdu) == 4:
	case len(apdu) == 5:
		// Case 2 (Le only) or case 3 with Lc = 0.
	default:
		lc := int(apdu[4])
		if lc == 0 || len(apdu) < 5+lc || len(apdu) > 5+lc+1 {
			c.mu.Unlock()
			return sw(swWrongLength)
		}
		data = apdu[5 : 5+lc]
	}
	if cla&^0x10 != 0 {
		c.mu.Unlock()
		return sw(swCLANotSupp)
	}
	if ins == 0xc0 {
		defer c.mu.Unlock()
		return c.nextChunk()
	}
	c.sess.pendingResp = nil
	if cla&0x10 != 0 {
		if c.sess.chain != nil && c.sess.chainINS != ins {
			c.sess.chain = nil
		}
		if len(c.sess.chain)+len(data) > maxChainedLen {
			c.sess.chain = nil
			c.mu.Unlock()
			return sw(swNoMemory)
		}
		c.sess.chain = append(c.sess.chain, data...)
		c.sess.chainINS = ins
		c.mu.Unlock()
		return sw(swOK)
	}
	if c.sess.chain != nil {
		if c.sess.chainINS == ins {
			data = append(c.sess.chain, data...)
		}
		c.sess.chain = nil
	}
	fresh := c.sess.pinFresh
	c.sess.pinFresh = false
	if ins == 0x87 && p2 != slotMgmt {
		// Signing may wait for a touch; it unlocks the card itself.
		return c.chunk(c.sign(p1, p2, data, fresh))
	}
	defer c.mu.Unlock()
	resp, code := c.dispatch(ins, p1, p2, data)
	if code != swOK {
		return sw(code)
	}
	return c.chunk(resp, swOK)
}

// chunk answers with at most 256 bytes and keeps the rest for GET RESPONSE.
func (c *Card) chunk(resp []byte, code int) []byte {
	if code != swOK {
		return sw(code)
	}
	if len(resp) <= maxLeShort {
		return withSW(resp, swOK)
	}
	c.sess.pendingResp = resp[maxLeShort:]
	return withSW(resp[:maxLeShort], 0x6100|min(len(c.sess.pendingResp), 0xff)&0xff)
}

func (c *Card) nextChunk() []byte {
	rest := c.sess.pendingResp
	if rest == nil {
		return sw(swConditions)
	}
	c.sess.pendingResp = nil
	return c.chunk(rest, swOK)
}

func (c *Card) dispatch(ins, p1, p2 byte, data []byte) ([]byte, int) {
	if ins == 0xa4 {
		if p1 != 0x04 || !bytes.HasPrefix(aidPIV, data) || len(data) == 0 {
			c.sess.selected = false
			return nil, swNotFound
		}
		c.sess = session{selected: true}
		var apt []byte
		apt = appendTLV(apt, 0x4f, []byte{0x00, 0x00, 0x10, 0x00, 0x01, 0x00})
		apt = appendTLV(apt, 0x79, appendTLV(nil, 0x4f, aidPIV))
		return appendTLV(nil, 0x61, apt), swOK
	}
	if !c.sess.selected {
		return nil, swNotFound
	}
	switch ins {
	case 0xfd:
		return c.cfg.Firmware[:], swOK
	case 0xf8:
		return binary.BigEndian.AppendUint32(nil, c.cfg.Serial), swOK
	case 0x20:
		return c.verify(p1, p2, data)
	case 0x24:
		return c.changeRef(p2, data)
	case 0x2c:
		return c.unblock(p2, data)
	case 0xf7:
		return c.metadata(p2)
	case 0x87:
		return c.mgmtAuth(p1, data)
	case 0x47:
		return c.generate(p2, data)
	case 0xf9:
		return c.attest(p1)
	case 0xcb:
		return c.getData(p1, p2, data)
	case 0xdb:
		return c.putData(p1, p2, data)
	case 0xff:
		return c.setMgmtKey(p1, p2, data)
	case 0xfb:
		return c.reset()
	default:
		return nil, swINSNotSupp
	}
}

func (c *Card) verify(p1, p2 byte, data []byte) ([]byte, int) {
	if p1 != 0 || p2 != slotPIN {
		return nil, swRefNotFound
	}
	if len(data) == 0 {
		switch {
		case c.pinRetries == 0:
			return nil, swAuthBlocked
		case c.sess.pinOK:
			return nil, swOK
		default:
			return nil, 0x63c0 | c.pinRetries
		}
	}
	if len(data) != 8 {
		return nil, swWrongData
	}
	if c.pinRetries == 0 {
		return nil, swAuthBlocked
	}
	if !bytes.Equal(data, c.pin) {
		c.pinRetries--
		c.sess.pinOK = false
		return nil, 0x63c0 | c.pinRetries
	}
	c.pinRetries = c.maxRetries
	c.sess.pinOK = true
	c.sess.pinFresh = true
	return nil, swOK
}

// checkRef checks old against ref with the counter, as verify does.
func checkRef(old, ref []byte, retries *int, max int) int {
	if *retries == 0 {
		return swAuthBlocked
	}
	if !bytes.Equal(old, ref) {
		*retries--
		return 0x63c0 | *retries
	}
	*retries = max
	return swOK
}

func (c *Card) changeRef(p2 byte, data []byte) ([]byte, int) {
	if len(data) != 16 {
		return nil, swWrongData
	}
	newRef := data[8:]
	if bytes.IndexByte(newRef, 0xff) == 0 {
		return nil, swWrongData
	}
	switch p2 {
	case slotPIN:
		if code := checkRef(data[:8], c.pin, &c.pinRetries, c.maxRetries); code != swOK {
			return nil, code
		}
		c.pin = append([]byte(nil), newRef...)
	case slotPUK:
		if code := checkRef(data[:8], c.puk, &c.pukRetries, c.maxRetries); code != swOK {
			return nil, code
		}
		c.puk = append([]byte(nil), newRef...)
	default:
		return nil, swRefNotFound
	}
	return nil, swOK
}

func (c *Card) unblock(p2 byte, data []byte) ([]byte, int) {
	if p2 != slotPIN || len(data) != 16 {
		return nil, swWrongData
	}
	if code := checkRef(data[:8], c.puk, &c.pukRetries, c.maxRetries); code != swOK {
		return nil, code
	}
	c.pin = append([]byte(nil), data[8:]...)
	c.pinRetries = c.maxRetries
	return nil, swOK
}

func (c *Card) metadata(p2 byte) ([]byte, int) {
	if !fwAtLeast(c.cfg.Firmware, 5, 3, 0) {
		return nil, swINSNotSupp
	}
	var b []byte
	switch p2 {
	case slotMgmt:
		b = appendTLV(b, 0x01, []byte{c.mgmtAlg})
		b = appendTLV(b, 0x02, []byte{0x00, TouchPolicyNever})
		def := byte(0)
		if bytes.Equal(c.mgmtKey, DefaultManagementKey) {
			def = 1
		}
		b = appendTLV(b, 0x05, []byte{def})
	case slotPIN:
		b = appendTLV(b, 0x01, []byte{0xff})
		b = appendTLV(b, 0x02, []byte{0x00, 0x00})
		b = appendTLV(b, 0x06, []byte{byte(c.maxRetries), byte(c.pinRetries)})
	case slotPUK:
		b = appendTLV(b, 0x01, []byte{0xff})
		b = appendTLV(b, 0x02, []byte{0x00, 0x00})
		b = appendTLV(b, 0x06, []byte{byte(c.maxRetries), byte(c.pukRetries)})
	default:
		k := c.keys[p2]
		if k == nil {
			return nil, swRefNotFound
		}
		origin := byte(0x01)
		if !k.gen {
			origin = 0x02
		}
		b = appendTLV(b, 0x01, []byte{algP256})
		b = appendTLV(b, 0x02, []byte{k.pin, k.touch})
		b = appendTLV(b, 0x03, []byte{origin})
		b = appendTLV(b, 0x04, appendTLV(nil, 0x86, pointBytes(&k.priv.PublicKey)))
	}
	return b, swOK
}

func (c *Card) mgmtBlock() (cipher.Block, int, error) {
	switch c.mgmtAlg {
	case algTDES:
		b, err := des.NewTripleDESCipher(c.mgmtKey)
		return b, 8, err
	default:
		b, err := aes.NewCipher(c.mgmtKey)
		return b, 16, err
	}
}

func (c *Card) mgmtAuth(p1 byte, data []byte) ([]byte, int) {
	if p1 != c.mgmtAlg {
		return nil, swWrongP1P2
	}
	block, n, err := c.mgmtBlock()
	if err != nil {
		return nil, swConditions
	}
	outer, ok := findTLV(data, 0x7c)
	if !ok {
		return nil, swWrongData
	}
	wit, hasWit := findTLV(outer, 0x80)
	chal, hasChal := findTLV(outer, 0x81)
	switch {
	case hasWit && len(wit) == 0 && !hasChal:
		// Step 1: the host asks for an encrypted witness.
		c.sess.mgmtOK = false
		w := make([]byte, n)
		if _, err := rand.Read(w); err != nil {
			return nil, swConditions
		}
		c.sess.witness = w
		enc := make([]byte, n)
		block.Encrypt(enc, w)
		return appendTLV(nil, 0x7c, appendTLV(nil, 0x80, enc)), swOK
	case hasWit && hasChal && len(wit) == n && len(chal) == n:
		// Step 2: the host returns the decrypted witness and its challenge.
		w := c.sess.witness
		c.sess.witness = nil
		if w == nil || !bytes.Equal(w, wit) {
			return nil, swSecurityStatus
		}
		c.sess.mgmtOK = true
		resp := make([]byte, n)
		block.Encrypt(resp, chal)
		return appendTLV(nil, 0x7c, appendTLV(nil, 0x82, resp)), swOK
	default:
		return nil, swWrongData
	}
}

func (c *Card) generate(p2 byte, data []byte) ([]byte, int) {
	if !c.sess.mgmtOK {
		return nil, swSecurityStatus
	}
	if p2 != 0x9a && p2 != 0x9c && p2 != 0x9d && p2 != 0x9e {
		return nil, swWrongP1P2
	}
	tmpl, ok := findTLV(data, 0xac)
	if !ok {
		return nil, swWrongData
	}
	alg, ok := findTLV(tmpl, 0x80)
	if !ok || len(alg) != 1 || alg[0] != algP256 {
		return nil, swWrongData
	}
	pin, touch := PINPolicyOnce, TouchPolicyNever
	if v, ok := findTLV(tmpl, 0xaa); ok {
		if len(v) != 1 || v[0] < PINPolicyNever || v[0] > PINPolicyAlways {
			return nil, swWrongData
		}
		pin = v[0]
	}
	if v, ok := findTLV(tmpl, 0xab); ok {
		if len(v) != 1 || v[0] < TouchPolicyNever || v[0] > TouchPolicyCached {
			return nil, swWrongData
		}
		touch = v[0]
	}
	if c.cfg.ForceTouchPolicy != 0 {
		touch = c.cfg.ForceTouchPolicy
	}
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, swConditions
	}
	c.keys[p2] = &slotKey{priv: priv, pin: pin, touch: touch, gen: true}
	return appendTLV(nil, 0x7f49, appendTLV(nil, 0x86, pointBytes(&priv.PublicKey))), swOK
}

// sign runs with c.mu held and releases it, since a touch may take long.
func (c *Card) sign(p1, p2 byte, data []byte, pinFresh bool) ([]byte, int) {
	unlocked := false
	defer func() {
		if !unlocked {
			c.mu.Unlock()
		}
	}()
	if !c.sess.selected {
		return nil, swNotFound
	}
	k := c.keys[p2]
	if k == nil {
		return nil, swWrongData
	}
	if p1 != algP256 {
		return nil, swWrongP1P2
	}
	outer, ok := findTLV(data, 0x7c)
	if !ok {
		return nil, swWrongData
	}
	digest, ok := findTLV(outer, 0x81)
	if _, hasResp := findTLV(outer, 0x82); !ok || !hasResp || len(digest) == 0 || len(digest) > 32 {
		return nil, swWrongData
	}
	switch k.pin {
	case PINPolicyAlways:
		if !pinFresh {
			return nil, swSecurityStatus
		}
	case PINPolicyOnce:
		if !c.sess.pinOK {
			return nil, swSecurityStatus
		}
	}
	needTouch := k.touch == TouchPolicyAlways ||
		(k.touch == TouchPolicyCached && time.Since(c.lastTouch) > cachedTouch)
	touch := c.cfg.Touch
	priv := k.priv
	digest = append([]byte(nil), digest...)
	if needTouch && c.touchTimeout {
		// Nobody touched the key within its timeout: the card refuses
		// with "security status not satisfied".
		c.touchTimeout = false
		return nil, swSecurityStatus
	}
	if needTouch {
		unlocked = true
		c.mu.Unlock()
		if touch != nil {
			touch()
		}
		timedOut := c.cfg.TouchTimedOut != nil && c.cfg.TouchTimedOut()
		c.mu.Lock()
		unlocked = false
		if timedOut {
			return nil, swSecurityStatus
		}
		c.lastTouch = time.Now()
	}
	sig, err := ecdsa.SignASN1(rand.Reader, priv, digest)
	if err != nil {
		return nil, swConditions
	}
	c.signs++
	return appendTLV(nil, 0x7c, appendTLV(nil, 0x82, sig)), swOK
}

func (c *Card) attest(p1 byte) ([]byte, int) {
	k := c.keys[p1]
	if k == nil || !k.gen {
		return nil, swWrongData
	}
	der, err := slotCert(c.device, c.attKey, p1, &k.priv.PublicKey, c.cfg.Serial, c.cfg.Firmware, k.pin, k.touch)
	if err != nil {
		return nil, swConditions
	}
	return der, swOK
}

func objectID(data []byte) (uint32, bool) {
	id, ok := findTLV(data, 0x5c)
	if !ok || len(id) != 3 {
		return 0, false
	}
	return uint32(id[0])<<16 | uint32(id[1])<<8 | uint32(id[2]), true
}

const objPrinted = 0x5fc109

func (c *Card) getData(p1, p2 byte, data []byte) ([]byte, int) {
	if p1 != 0x3f || p2 != 0xff {
		return nil, swWrongP1P2
	}
	id, ok := objectID(data)
	if !ok {
		return nil, swWrongData
	}
	if id == objPrinted && !c.sess.pinOK {
		return nil, swSecurityStatus
	}
	obj, ok := c.objects[id]
	if !ok {
		return nil, swNotFound
	}
	return appendTLV(nil, 0x53, obj), swOK
}

func (c *Card) putData(p1, p2 byte, data []byte) ([]byte, int) {
	if !c.sess.mgmtOK {
		return nil, swSecurityStatus
	}
	if p1 != 0x3f || p2 != 0xff {
		return nil, swWrongP1P2
	}
	id, ok := objectID(data)
	if !ok {
		return nil, swWrongData
	}
	rest := data[5:]
	obj, ok := findTLV(rest, 0x53)
	if !ok {
		return nil, swWrongData
	}
	if len(obj) > maxObjectLen {
		return nil, swNoMemory
	}
	if len(obj) == 0 {
		delete(c.objects, id)
		return nil, swOK
	}
	c.objects[id] = append([]byte(nil), obj...)
	return nil, swOK
}

func (c *Card) setMgmtKey(p1, p2 byte, data []byte) ([]byte, int) {
	if !c.sess.mgmtOK {
		return nil, swSecurityStatus
	}
	if p1 != 0xff || (p2 != 0xff && p2 != 0xfe) || len(data) < 3 || data[1] != slotMgmt || int(data[2]) != len(data)-3 {
		return nil, swWrongData
	}
	alg, key := data[0], data[3:]
	want := map[byte]int{algTDES: 24, algAES128: 16, algAES192: 24, algAES256: 32}[alg]
	if want == 0 || len(key) != want || (alg != algTDES && !fwAtLeast(c.cfg.Firmware, 5, 4, 0)) {
		return nil, swWrongData
	}
	c.mgmtAlg = alg
	c.mgmtKey = append([]byte(nil), key...)
	return nil, swOK
}

func (c *Card) reset() ([]byte, int) {
	if c.pinRetries != 0 || c.pukRetries != 0 {
		return nil, swConditions
	}
	fresh, err := New(Config{Serial: c.cfg.Serial, Firmware: c.cfg.Firmware, PINRetries: c.cfg.PINRetries, CA: c.ca})
	if err != nil {
		return nil, swConditions
	}
	c.pin, c.puk = fresh.pin, fresh.puk
	c.pinRetries, c.pukRetries, c.maxRetries = fresh.pinRetries, fresh.pukRetries, fresh.maxRetries
	c.mgmtAlg, c.mgmtKey = fresh.mgmtAlg, fresh.mgmtKey
	c.keys = map[byte]*slotKey{}
	c.objects = map[uint32][]byte{0x5fff01: c.objects[0x5fff01]}
	c.sess = session{selected: true}
	return nil, swOK
}

func pointBytes(pub *ecdsa.PublicKey) []byte {
	b := make([]byte, 65)
	b[0] = 4
	pub.X.FillBytes(b[1:33])
	pub.Y.FillBytes(b[33:])
	return b
}

// ImportKeyInsecure puts priv into slot as an imported key (PIN policy once,
// no touch), the way another tool would import one: the card cannot attest
// it. Test-only, like the whole package.
func (c *Card) ImportKeyInsecure(slot byte, priv *ecdsa.PrivateKey) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.keys[slot] = &slotKey{priv: priv, pin: PINPolicyOnce, touch: TouchPolicyNever}
}
