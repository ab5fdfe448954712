// Package ledger is the appliance's equivocation ledger: for every TUF role,
// the highest version this appliance has signed and the SHA-256 of the
// canonical bytes it signed for that version, with the full history of every
// signing (role, version, payload hash, time, ceremony id).
//
// # Rules
//
// Check refuses, for a role:
//   - a version below the highest one already signed (rollback);
//   - the highest signed version with a different payload (equivocation).
//
// and, for every key that signs (by public-key fingerprint, not key ID):
//   - a payload of a metadata type and version that key already signed with
//     other bytes (equivocation across roles that share keys).
//
// The second rule is what makes relabelling harmless: TUF targets metadata
// does not name its role, so bytes signed as one role are accepted by a
// client for any role whose threshold the same keys meet. Keyed by the keys
// that sign, the ledger never lets those keys sign two different payloads
// for one type and version, whatever role name a request claims.
//
// It allows the highest signed version with the same payload: signing the
// same bytes again is an idempotent retry (for example after a crash between
// recording and exporting), it gives a registry nothing it could not already
// have, and it is recorded in the history like any other signing.
//
// # Ordering contract
//
// Record must return nil BEFORE any signature over the payload is made or
// leaves the appliance: record first, then sign and export. Record writes the
// whole ledger atomically and durably (see package store) and only then
// updates its view, so:
//   - a crash before Record returns leaves the ledger either without the new
//     entry (nothing was signed, nothing is lost) or with it;
//   - a crash after Record returns but before the signature is exported
//     "burns" that version for that payload: the same bytes can still be
//     signed again (idempotent retry), different bytes need a higher version.
//     This is safe: it can refuse a signature, never allow an equivocation.
//
// If a write fails, the on-disk state is unknown (the rename may have
// happened); the Ledger then refuses everything until it is reopened, which
// re-reads the truth from disk.
//
// # Fail closed
//
// The file is versioned ("airlock-ledger/1"), carries a SHA-256 checksum of
// its content, must be in canonical form, and must obey the rules above
// entry by entry. A missing, unreadable, oversized, non-canonical, checksum-
// failing or rule-breaking ledger makes Open fail with ErrCorrupt or
// ErrNotInitialised and a message telling the officer what to do; the ledger
// is never silently reset. A brand-new appliance creates its ledger once with
// Init, which refuses to overwrite an existing one.
//
// The checksum detects damage and careless edits, not a deliberate forger who
// can write the state directory. Against an older copy of ledger.json the
// ledger is bound to the audit log (see appliance.OpenState): each file
// records the SHA-256 of the ledger file it replaced (Prev) and the audit
// log's head when it was written (AuditHead), and each audit entry records
// the SHA-256 of the ledger file current when it was written.
//
// # Other state
//
// Besides signings, the ledger keeps the confirmed date of each signing
// (LastDate: the appliance refuses an earlier date) and the newest version
// of each delegating role it has signed or accepted in a chain of trust
// (Delegator: the appliance refuses an older chain).
//
// # Thread safety
//
// A Ledger is safe for concurrent use; Check and Record are serialised. The
// state directory's lock (store.OpenDir) keeps other processes away.
package ledger

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"slices"
	"sort"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	"airlock.dev/airlock/appliance/store"
)

// FileName is the ledger's file in the state directory.
const FileName = "ledger.json"

// Format names the file format version this package writes. Format1 files
// (no keys, dates, delegators or audit binding) are still read.
const (
	Format  = "airlock-ledger/2"
	Format1 = "airlock-ledger/1"
)

// Caps on the ledger file and its fields.
const (
	MaxFileSize      = 32 << 20 // bytes of ledger.json
	MaxEntries       = 100_000  // signings kept in the history
	MaxRoleLen       = 255      // bytes of a role name
	MaxCeremonyIDLen = 128      // bytes of a ceremony id
)

// Errors callers branch on. Messages wrap them with the details.
var (
	// ErrRollback: the version is below the highest already signed.
	ErrRollback = errors.New("rollback")
	// ErrEquivocation: the version was already signed with other bytes.
	ErrEquivocation = errors.New("equivocation")
	// ErrCorrupt: the ledger file is damaged or was altered; signing is refused.
	ErrCorrupt = errors.New("signed-version ledger is damaged or was altered")
	// ErrNotInitialised: there is no ledger in the state directory.
	ErrNotInitialised = errors.New("signed-version ledger not found")
	// ErrBroken: a write failed; the ledger must be reopened.
	ErrBroken = errors.New("signed-version ledger write failed earlier")
)

const corruptAdvice = "signing is refused: do not delete or edit the file; restore ledger.json from the appliance's last backup (it must be at least as new as every exported signature) and have the security officer compare it with the exported ceremony records"

// Caps on the other state.
const (
	MaxKeysPerEntry = 64   // keys that sign in one ceremony
	MaxDelegators   = 1000 // delegating roles tracked for freshness
	MaxTypeLen      = 16
)

// Entry is one signing in the history.
type Entry struct {
	Role     string
	Version  int64
	Payload  [32]byte // SHA-256 of the canonical signed bytes
	Time     time.Time
	Ceremony string
	// Type is the metadata type signed ("targets", "root"); empty in
	// entries of a Format1 file.
	Type string
	// Keys are the public-key fingerprints of the keys that signed, sorted.
	Keys []string
	// Date is the date the operator confirmed (UTC midnight), zero if unknown.
	Date time.Time
}

// Signing is what RecordSigning records and CheckSigning checks.
type Signing struct {
	Role    string
	Type    string // metadata type: "targets" or "root"
	Version int64
	Payload [32]byte
	// Keys are the public-key fingerprints of the keys that will sign.
	Keys []string
	// Date is the confirmed date of the ceremony.
	Date time.Time
	// Delegators are the versions of the delegating roles of the verified
	// chain of trust, recorded as accepted.
	Delegators map[string]int64
	Ceremony   string
	At         time.Time
	// AuditHead is the audit log's head when the signing is recorded.
	AuditHead AuditHead
	// Counter, when not 0, is the monotonic counter's value once this
	// signing is recorded (see State.Counter).
	Counter uint64
}

// AuditHead is a position in the audit log: the number of entries and the
// SHA-256 of the last one.
type AuditHead struct {
	Entries int64
	Last    [32]byte
}

type wireEntry struct {
	Role     string   `json:"role"`
	Version  int64    `json:"version"`
	Payload  string   `json:"payload"`
	Time     string   `json:"time"`
	Ceremony string   `json:"ceremony"`
	Type     string   `json:"type,omitempty"`
	Keys     []string `json:"keys,omitempty"`
	Date     string   `json:"date,omitempty"`
}

type wireDelegator struct {
	Role    string `json:"role"`
	Version int64  `json:"version"`
}

type wireAuditHead struct {
	Entries int64  `json:"entries"`
	Last    string `json:"last"`
}

type wireBody struct {
	Format     string          `json:"format"`
	Entries    []wireEntry     `json:"entries"`
	Delegators []wireDelegator `json:"delegators,omitempty"`
	Prev       string          `json:"prev,omitempty"`
	AuditHead  *wireAuditHead  `json:"audit_head,omitempty"`
	Counter    uint64          `json:"counter,omitempty"`
}

type wireFile struct {
	Format     string          `json:"format"`
	Entries    []wireEntry     `json:"entries"`
	Delegators []wireDelegator `json:"delegators,omitempty"`
	Prev       string          `json:"prev,omitempty"`
	AuditHead  *wireAuditHead  `json:"audit_head,omitempty"`
	Counter    uint64          `json:"counter,omitempty"`
	Checksum   string          `json:"checksum"`
}

type head struct {
	version int64
	payload [32]byte
}

// keySlot is one key's signing of one metadata type and version.
type keySlot struct {
	typ     string
	version int64
	key     string
}

// State is a parsed, verified ledger file.
type State struct {
	// Format is the file's format (Format or Format1); encoding keeps it,
	// RecordSigning writes Format.
	Format  string
	Entries []Entry
	// Delegators maps a delegating role to the newest version accepted in a
	// chain of trust.
	Delegators map[string]int64
	// Prev is the SHA-256 of the ledger file this one replaced; HasPrev is
	// false for a file written by Init or in Format1.
	Prev    [32]byte
	HasPrev bool
	// AuditHead is the audit log's head when this file was written.
	AuditHead    AuditHead
	HasAuditHead bool
	// Counter is the value of the monotonic counter outside the state
	// directory (a TPM NV counter) that this file goes with; 0 when the
	// ledger is not bound to one.
	Counter uint64
}

// Ledger is the open ledger of one state directory.
type Ledger struct {
	dir *store.Dir

	mu      sync.Mutex
	st      State
	entries []Entry
	heads   map[string]head
	slots   map[keySlot]keySigning
	sum     [32]byte // SHA-256 of the file as last read or written
	broken  error
}

type keySigning struct {
	payload  [32]byte
	role     string
	ceremony string
}

// Init creates an empty ledger in d. It refuses if a ledger already exists.
func Init(d *store.Dir) error {
	ok, err := d.Exists(FileName)
	if err != nil {
		return fmt.Errorf("initialise ledger: %w", err)
	}
	if ok {
		return fmt.Errorf("initialise ledger: %s already exists in %s: an appliance's ledger is never reset", FileName, d.Path())
	}
	b, err := encode(&State{})
	if err != nil {
		return fmt.Errorf("initialise ledger: %w", err)
	}
	if err := d.WriteFile(FileName, b); err != nil {
		return fmt.Errorf("initialise ledger: %w", err)
	}
	return nil
}

// Open reads and verifies the ledger in d. See the package doc for what makes
// it fail.
func Open(d *store.Dir) (*Ledger, error) {
	b, err := d.ReadFile(FileName, MaxFileSize)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("open ledger: %w in %s: if this is a new appliance, initialise it; otherwise restore %s from backup, signing is refused", ErrNotInitialised, d.Path(), FileName)
	}
	if errors.Is(err, store.ErrTooLarge) {
		return nil, fmt.Errorf("open ledger %s: %w: %v; %s", FileName, ErrCorrupt, err, corruptAdvice)
	}
	if err != nil {
		return nil, fmt.Errorf("open ledger: %w", err)
	}
	st, err := ParseState(b)
	if err != nil {
		return nil, fmt.Errorf("open ledger %s: %w", FileName, err)
	}
	l := &Ledger{dir: d}
	l.load(st, sha256.Sum256(b))
	return l, nil
}

func (l *Ledger) load(st *State, sum [32]byte) {
	l.st = *st
	l.entries = st.Entries
	l.heads = make(map[string]head)
	l.slots = make(map[keySlot]keySigning)
	for _, e := range st.Entries {
		l.heads[e.Role] = head{e.Version, e.Payload}
		for _, k := range e.Keys {
			l.slots[keySlot{e.Type, e.Version, k}] = keySigning{e.Payload, e.Role, e.Ceremony}
		}
	}
	l.sum = sum
}

// Parse strictly decodes and verifies the bytes of a ledger file and returns
// its signings. Errors wrap ErrCorrupt.
func Parse(b []byte) ([]Entry, error) {
	st, err := ParseState(b)
	if err != nil {
		return nil, err
	}
	return st.Entries, nil
}

// ParseState strictly decodes and verifies the bytes of a ledger file.
// Errors wrap ErrCorrupt.
func ParseState(b []byte) (*State, error) {
	bad := func(format string, a ...any) error {
		return fmt.Errorf("%w: %s; %s", ErrCorrupt, fmt.Sprintf(format, a...), corruptAdvice)
	}
	if len(b) > MaxFileSize {
		return nil, bad("%d bytes, above the cap of %d", len(b), MaxFileSize)
	}
	var f wireFile
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&f); err != nil {
		return nil, bad("not a ledger file: %v", err)
	}
	if f.Format != Format && f.Format != Format1 {
		return nil, bad("format %q, this appliance reads %q", truncate(f.Format), Format)
	}
	if f.Format == Format1 && (len(f.Delegators) > 0 || f.Prev != "" || f.AuditHead != nil || f.Counter != 0) {
		return nil, bad("format %q with fields of a later format", Format1)
	}
	if len(f.Entries) > MaxEntries {
		return nil, bad("%d entries, above the cap of %d", len(f.Entries), MaxEntries)
	}
	if len(f.Delegators) > MaxDelegators {
		return nil, bad("%d delegators, above the cap of %d", len(f.Delegators), MaxDelegators)
	}
	body := wireBody{Format: f.Format, Entries: f.Entries, Delegators: f.Delegators, Prev: f.Prev, AuditHead: f.AuditHead, Counter: f.Counter}
	canon, err := encodeWire(body)
	if err != nil {
		return nil, bad("%v", err)
	}
	sum, err := checksum(body)
	if err != nil {
		return nil, bad("%v", err)
	}
	if f.Checksum != sum {
		return nil, bad("checksum mismatch (file says %s, content hashes to %s)", truncate(f.Checksum), sum)
	}
	if !bytes.Equal(canon, b) {
		return nil, bad("not in canonical form (extra bytes, spacing or field order changed)")
	}
	st := &State{Format: f.Format, Entries: make([]Entry, 0, len(f.Entries)), Delegators: map[string]int64{}, Counter: f.Counter}
	heads := make(map[string]head)
	slots := make(map[keySlot]keySigning)
	for i, w := range f.Entries {
		e, err := fromWire(w)
		if err != nil {
			return nil, bad("entry %d: %v", i, err)
		}
		if f.Format == Format1 && (e.Type != "" || len(e.Keys) > 0 || !e.Date.IsZero()) {
			return nil, bad("entry %d: fields of a later format in a %q file", i, Format1)
		}
		if h, ok := heads[e.Role]; ok {
			if err := rule(e.Role, h, e.Version, e.Payload); err != nil {
				return nil, bad("entry %d breaks the ledger's rules: %v", i, err)
			}
		}
		if err := keyRule(slots, e.Type, e.Version, e.Payload, e.Keys); err != nil {
			return nil, bad("entry %d breaks the ledger's rules: %v", i, err)
		}
		heads[e.Role] = head{e.Version, e.Payload}
		for _, k := range e.Keys {
			slots[keySlot{e.Type, e.Version, k}] = keySigning{e.Payload, e.Role, e.Ceremony}
		}
		st.Entries = append(st.Entries, e)
	}
	prevRole := ""
	for i, d := range f.Delegators {
		if err := checkRole(d.Role); err != nil {
			return nil, bad("delegator %d: %v", i, err)
		}
		if i > 0 && d.Role <= prevRole {
			return nil, bad("delegator %d: not sorted by role", i)
		}
		if d.Version < 1 {
			return nil, bad("delegator %d: version %d is not positive", i, d.Version)
		}
		prevRole = d.Role
		st.Delegators[d.Role] = d.Version
	}
	if f.Prev != "" {
		if st.Prev, err = parseHexSum(f.Prev); err != nil {
			return nil, bad("prev: %v", err)
		}
		st.HasPrev = true
	}
	if f.AuditHead != nil {
		if f.AuditHead.Entries < 1 {
			return nil, bad("audit head: %d entries", f.AuditHead.Entries)
		}
		if st.AuditHead.Last, err = parseHexSum(f.AuditHead.Last); err != nil {
			return nil, bad("audit head: %v", err)
		}
		st.AuditHead.Entries = f.AuditHead.Entries
		st.HasAuditHead = true
	}
	return st, nil
}

func parseHexSum(s string) ([32]byte, error) {
	var out [32]byte
	p, err := hex.DecodeString(s)
	if err != nil || len(p) != sha256.Size || hex.EncodeToString(p) != s {
		return out, errors.New("not a lowercase hex SHA-256")
	}
	copy(out[:], p)
	return out, nil
}

func truncate(s string) string {
	if len(s) > 80 {
		return s[:80] + "…"
	}
	return s
}

func fromWire(w wireEntry) (Entry, error) {
	if err := checkRole(w.Role); err != nil {
		return Entry{}, err
	}
	if w.Version < 1 {
		return Entry{}, fmt.Errorf("version %d is not positive", w.Version)
	}
	p, err := hex.DecodeString(w.Payload)
	if err != nil || len(p) != sha256.Size || hex.EncodeToString(p) != w.Payload {
		return Entry{}, errors.New("payload is not a lowercase hex SHA-256")
	}
	t, err := time.Parse(time.RFC3339Nano, w.Time)
	if err != nil || formatTime(t) != w.Time {
		return Entry{}, errors.New("time is not an RFC 3339 UTC timestamp")
	}
	if err := checkCeremonyID(w.Ceremony); err != nil {
		return Entry{}, err
	}
	e := Entry{Role: w.Role, Version: w.Version, Time: t, Ceremony: w.Ceremony, Type: w.Type}
	copy(e.Payload[:], p)
	if len(w.Type) > MaxTypeLen {
		return Entry{}, fmt.Errorf("type is over %d bytes", MaxTypeLen)
	}
	if len(w.Keys) > 0 {
		if w.Type == "" {
			return Entry{}, errors.New("keys without a metadata type")
		}
		if len(w.Keys) > MaxKeysPerEntry {
			return Entry{}, fmt.Errorf("%d keys, above the cap of %d", len(w.Keys), MaxKeysPerEntry)
		}
		for i, k := range w.Keys {
			if _, err := parseHexSum(k); err != nil {
				return Entry{}, fmt.Errorf("keys[%d]: %v", i, err)
			}
			if i > 0 && k <= w.Keys[i-1] {
				return Entry{}, errors.New("keys are not sorted and distinct")
			}
		}
		e.Keys = append([]string(nil), w.Keys...)
	}
	if w.Date != "" {
		d, err := time.Parse(time.DateOnly, w.Date)
		if err != nil || d.Format(time.DateOnly) != w.Date {
			return Entry{}, errors.New("date is not YYYY-MM-DD")
		}
		e.Date = d
	}
	return e, nil
}

func toWire(e Entry) wireEntry {
	return wireEntry{
		Role:     e.Role,
		Version:  e.Version,
		Payload:  hex.EncodeToString(e.Payload[:]),
		Time:     formatTime(e.Time),
		Ceremony: e.Ceremony,
		Type:     e.Type,
		Keys:     e.Keys,
		Date:     formatDate(e.Date),
	}
}

func formatDate(d time.Time) string {
	if d.IsZero() {
		return ""
	}
	return d.UTC().Format(time.DateOnly)
}

func formatTime(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }

func checksum(body wireBody) (string, error) {
	if body.Entries == nil {
		body.Entries = []wireEntry{}
	}
	b, err := json.Marshal(body)
	if err != nil {
		return "", err
	}
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:]), nil
}

func encodeWire(body wireBody) ([]byte, error) {
	if body.Entries == nil {
		body.Entries = []wireEntry{}
	}
	sum, err := checksum(body)
	if err != nil {
		return nil, err
	}
	b, err := json.Marshal(wireFile{Format: body.Format, Entries: body.Entries, Delegators: body.Delegators,
		Prev: body.Prev, AuditHead: body.AuditHead, Counter: body.Counter, Checksum: sum})
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}

func encode(st *State) ([]byte, error) {
	format := st.Format
	if format == "" {
		format = Format
	}
	body := wireBody{Format: format, Entries: make([]wireEntry, len(st.Entries))}
	for i, e := range st.Entries {
		body.Entries[i] = toWire(e)
	}
	roles := make([]string, 0, len(st.Delegators))
	for r := range st.Delegators {
		roles = append(roles, r)
	}
	sort.Strings(roles)
	for _, r := range roles {
		body.Delegators = append(body.Delegators, wireDelegator{Role: r, Version: st.Delegators[r]})
	}
	if st.HasPrev {
		body.Prev = hex.EncodeToString(st.Prev[:])
	}
	if st.HasAuditHead {
		body.AuditHead = &wireAuditHead{Entries: st.AuditHead.Entries, Last: hex.EncodeToString(st.AuditHead.Last[:])}
	}
	body.Counter = st.Counter
	return encodeWire(body)
}

func checkRole(role string) error {
	if role == "" {
		return errors.New("empty role name")
	}
	if len(role) > MaxRoleLen {
		return fmt.Errorf("role name is %d bytes, above the cap of %d", len(role), MaxRoleLen)
	}
	if !utf8.ValidString(role) {
		return errors.New("role name is not valid UTF-8")
	}
	for _, r := range role {
		if unicode.IsControl(r) || unicode.Is(unicode.Cf, r) {
			return fmt.Errorf("role name %q contains a control or format character", role)
		}
	}
	return nil
}

func checkCeremonyID(id string) error {
	if id == "" {
		return errors.New("empty ceremony id")
	}
	if len(id) > MaxCeremonyIDLen {
		return fmt.Errorf("ceremony id is %d bytes, above the cap of %d", len(id), MaxCeremonyIDLen)
	}
	for _, c := range []byte(id) {
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.' || c == ':'
		if !ok {
			return fmt.Errorf("ceremony id %q may contain only letters, digits and - _ . :", id)
		}
	}
	return nil
}

// rule applies the ledger's rules against the current head of a role.
func rule(role string, h head, version int64, payload [32]byte) error {
	switch {
	case version < h.version:
		return fmt.Errorf("%w: role %s version %d is below version %d already signed; build the release with a version above %d",
			ErrRollback, role, version, h.version, h.version)
	case version == h.version && payload != h.payload:
		return fmt.Errorf("%w: role %s version %d was already signed for payload sha256:%x; this appliance never signs different bytes (sha256:%x) for the same version, use version %d",
			ErrEquivocation, role, version, h.payload, payload, h.version+1)
	}
	return nil
}

// keyRule refuses a payload of type and version that one of keys already
// signed with other bytes.
func keyRule(slots map[keySlot]keySigning, typ string, version int64, payload [32]byte, keys []string) error {
	for _, k := range keys {
		if prev, ok := slots[keySlot{typ, version, k}]; ok && prev.payload != payload {
			return fmt.Errorf("%w: key %s already signed %s version %d (as role %s, ceremony %s) for payload sha256:%x; a key never signs different bytes (sha256:%x) for the same type and version, whatever role they are for: build the release with a version no key of this role has signed",
				ErrEquivocation, k[:12], typ, version, prev.role, prev.ceremony, prev.payload, payload)
		}
	}
	return nil
}

// Check reports whether signing payload (the SHA-256 of the canonical signed
// bytes) as version of role is allowed. It changes nothing; see Record.
func (l *Ledger) Check(role string, version int64, payload [32]byte) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.check(role, version, payload)
}

func (l *Ledger) check(role string, version int64, payload [32]byte) error {
	if l.broken != nil {
		return fmt.Errorf("%w (%v): signing is refused until the appliance is restarted", ErrBroken, l.broken)
	}
	if err := checkRole(role); err != nil {
		return fmt.Errorf("ledger check: %w", err)
	}
	if version < 1 {
		return fmt.Errorf("ledger check: role %s version %d is not positive", role, version)
	}
	if h, ok := l.heads[role]; ok {
		return rule(role, h, version, payload)
	}
	return nil
}

// CheckSigning reports whether s may be recorded: the role's rules and the
// rule of every key that will sign. It changes nothing.
func (l *Ledger) CheckSigning(s Signing) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.checkSigning(&s)
}

func (l *Ledger) checkSigning(s *Signing) error {
	if err := l.check(s.Role, s.Version, s.Payload); err != nil {
		return err
	}
	if len(s.Keys) > 0 && s.Type == "" {
		return errors.New("ledger check: keys without a metadata type")
	}
	keys := slices.Clone(s.Keys)
	sort.Strings(keys)
	s.Keys = slices.Compact(keys)
	return keyRule(l.slots, s.Type, s.Version, s.Payload, s.Keys)
}

// Record checks the signing as Check does and makes it durable. It returns
// nil only once the entry is on stable storage; only then may the payload be
// signed and exported (see the package doc for the ordering contract).
func (l *Ledger) Record(role string, version int64, payload [32]byte, ceremonyID string, at time.Time) error {
	return l.RecordSigning(Signing{Role: role, Version: version, Payload: payload, Ceremony: ceremonyID, At: at})
}

// RecordSigning checks s as CheckSigning does and makes it durable, with the
// delegator versions and audit head it carries. It returns nil only once the
// entry is on stable storage; only then may the payload be signed and
// exported (see the package doc for the ordering contract).
func (l *Ledger) RecordSigning(s Signing) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := l.checkSigning(&s); err != nil {
		return err
	}
	if err := checkCeremonyID(s.Ceremony); err != nil {
		return fmt.Errorf("ledger record: %w", err)
	}
	if s.At.IsZero() {
		return errors.New("ledger record: zero time")
	}
	if len(s.Type) > MaxTypeLen || len(s.Keys) > MaxKeysPerEntry {
		return fmt.Errorf("ledger record: type over %d bytes or over %d keys", MaxTypeLen, MaxKeysPerEntry)
	}
	if len(l.entries) >= MaxEntries {
		return fmt.Errorf("ledger record: the ledger holds %d signings, the cap: archive it with the security officer before signing more", len(l.entries))
	}
	e := Entry{Role: s.Role, Version: s.Version, Payload: s.Payload, Time: s.At.UTC(), Ceremony: s.Ceremony, Type: s.Type, Keys: s.Keys}
	if !s.Date.IsZero() {
		d := s.Date.UTC()
		e.Date = time.Date(d.Year(), d.Month(), d.Day(), 0, 0, 0, 0, time.UTC)
	}
	next := l.st
	next.Format = Format
	next.Entries = append(l.entries[:len(l.entries):len(l.entries)], e)
	next.Delegators = maps.Clone(l.st.Delegators)
	if next.Delegators == nil {
		next.Delegators = map[string]int64{}
	}
	for r, v := range s.Delegators {
		if err := checkRole(r); err != nil {
			return fmt.Errorf("ledger record: delegator: %w", err)
		}
		if v > next.Delegators[r] {
			next.Delegators[r] = v
		}
	}
	if len(next.Delegators) > MaxDelegators {
		return fmt.Errorf("ledger record: more than %d delegators", MaxDelegators)
	}
	next.Prev, next.HasPrev = l.sum, true
	if s.AuditHead.Entries > 0 {
		next.AuditHead, next.HasAuditHead = s.AuditHead, true
	}
	if s.Counter != 0 {
		if s.Counter <= l.st.Counter {
			return fmt.Errorf("ledger record: counter %d is not above the ledger's %d", s.Counter, l.st.Counter)
		}
		next.Counter = s.Counter
	}
	b, err := encode(&next)
	if err != nil {
		return fmt.Errorf("ledger record: %w", err)
	}
	if err := l.dir.WriteFile(FileName, b); err != nil {
		l.broken = err
		return fmt.Errorf("ledger record: %w; signing is refused until the appliance is restarted", err)
	}
	l.load(&next, sha256.Sum256(b))
	return nil
}

// Counter returns the monotonic counter value the ledger goes with, 0 when
// it is not bound to a counter.
func (l *Ledger) Counter() uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.st.Counter
}

// BindCounter records that the ledger goes with the monotonic counter's
// value v, with the audit log's head ah. It refuses a v not above the value
// already recorded.
func (l *Ledger) BindCounter(v uint64, ah AuditHead) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.broken != nil {
		return fmt.Errorf("ledger bind counter: %w: %v", ErrBroken, l.broken)
	}
	if v == 0 || v <= l.st.Counter {
		return fmt.Errorf("ledger bind counter: %d is not above the ledger's %d", v, l.st.Counter)
	}
	next := l.st
	next.Entries = l.entries
	next.Prev, next.HasPrev = l.sum, true
	if ah.Entries > 0 {
		next.AuditHead, next.HasAuditHead = ah, true
	}
	next.Counter = v
	b, err := encode(&next)
	if err != nil {
		return fmt.Errorf("ledger bind counter: %w", err)
	}
	if err := l.dir.WriteFile(FileName, b); err != nil {
		l.broken = err
		return fmt.Errorf("ledger bind counter: %w", err)
	}
	l.load(&next, sha256.Sum256(b))
	return nil
}

// Sum returns the SHA-256 of the ledger file as last read or written: what
// audit entries commit to.
func (l *Ledger) Sum() [32]byte {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.sum
}

// Binding returns what the ledger file says about its predecessor and the
// audit log (see State).
func (l *Ledger) Binding() State {
	l.mu.Lock()
	defer l.mu.Unlock()
	st := l.st
	st.Entries = nil
	st.Delegators = maps.Clone(st.Delegators)
	return st
}

// LastDate returns the latest confirmed date of any signing, zero if none
// was recorded.
func (l *Ledger) LastDate() time.Time {
	l.mu.Lock()
	defer l.mu.Unlock()
	var last time.Time
	for _, e := range l.entries {
		if e.Date.After(last) {
			last = e.Date
		}
	}
	return last
}

// Delegator returns the newest version of role this appliance signed or
// accepted as a delegator in a chain of trust; 0 if none.
func (l *Ledger) Delegator(role string) int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	v := l.st.Delegators[role]
	if h, ok := l.heads[role]; ok && h.version > v {
		v = h.version
	}
	return v
}

// Highest returns the highest version signed for role and its payload hash;
// ok is false if the appliance never signed role.
func (l *Ledger) Highest(role string) (version int64, payload [32]byte, ok bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	h, ok := l.heads[role]
	return h.version, h.payload, ok
}

// Roles lists the roles this appliance has signed, sorted.
func (l *Ledger) Roles() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make([]string, 0, len(l.heads))
	for r := range l.heads {
		out = append(out, r)
	}
	sort.Strings(out)
	return out
}

// History returns every signing of role ("" for all roles), oldest first.
func (l *Ledger) History(role string) []Entry {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []Entry
	for _, e := range l.entries {
		if role == "" || e.Role == role {
			out = append(out, e)
		}
	}
	return out
}
