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
// can write the state directory: such a person can also replace the ledger
// with an older copy. Exported ceremony records and signature responses, and
// the registry's own rollback checks, are the defence there.
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
	"sort"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	"airlock.dev/airlock/appliance/store"
)

// FileName is the ledger's file in the state directory.
const FileName = "ledger.json"

// Format names the file format version.
const Format = "airlock-ledger/1"

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

// Entry is one signing in the history.
type Entry struct {
	Role     string
	Version  int64
	Payload  [32]byte // SHA-256 of the canonical signed bytes
	Time     time.Time
	Ceremony string
}

type wireEntry struct {
	Role     string `json:"role"`
	Version  int64  `json:"version"`
	Payload  string `json:"payload"`
	Time     string `json:"time"`
	Ceremony string `json:"ceremony"`
}

type wireBody struct {
	Format  string      `json:"format"`
	Entries []wireEntry `json:"entries"`
}

type wireFile struct {
	Format   string      `json:"format"`
	Entries  []wireEntry `json:"entries"`
	Checksum string      `json:"checksum"`
}

type head struct {
	version int64
	payload [32]byte
}

// Ledger is the open ledger of one state directory.
type Ledger struct {
	dir *store.Dir

	mu      sync.Mutex
	entries []Entry
	heads   map[string]head
	broken  error
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
	b, err := encode(nil)
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
	entries, err := Parse(b)
	if err != nil {
		return nil, fmt.Errorf("open ledger %s: %w", FileName, err)
	}
	l := &Ledger{dir: d, entries: entries, heads: make(map[string]head)}
	for _, e := range entries {
		l.heads[e.Role] = head{e.Version, e.Payload}
	}
	return l, nil
}

// Parse strictly decodes and verifies the bytes of a ledger file. Errors wrap
// ErrCorrupt.
func Parse(b []byte) ([]Entry, error) {
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
	if f.Format != Format {
		return nil, bad("format %q, this appliance reads %q", truncate(f.Format), Format)
	}
	if len(f.Entries) > MaxEntries {
		return nil, bad("%d entries, above the cap of %d", len(f.Entries), MaxEntries)
	}
	canon, err := encodeWire(f.Entries)
	if err != nil {
		return nil, bad("%v", err)
	}
	sum, err := checksum(f.Entries)
	if err != nil {
		return nil, bad("%v", err)
	}
	if f.Checksum != sum {
		return nil, bad("checksum mismatch (file says %s, content hashes to %s)", truncate(f.Checksum), sum)
	}
	if !bytes.Equal(canon, b) {
		return nil, bad("not in canonical form (extra bytes, spacing or field order changed)")
	}
	entries := make([]Entry, 0, len(f.Entries))
	heads := make(map[string]head)
	for i, w := range f.Entries {
		e, err := fromWire(w)
		if err != nil {
			return nil, bad("entry %d: %v", i, err)
		}
		if h, ok := heads[e.Role]; ok {
			if err := rule(e.Role, h, e.Version, e.Payload); err != nil {
				return nil, bad("entry %d breaks the ledger's rules: %v", i, err)
			}
		}
		heads[e.Role] = head{e.Version, e.Payload}
		entries = append(entries, e)
	}
	return entries, nil
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
	e := Entry{Role: w.Role, Version: w.Version, Time: t, Ceremony: w.Ceremony}
	copy(e.Payload[:], p)
	return e, nil
}

func toWire(e Entry) wireEntry {
	return wireEntry{
		Role:     e.Role,
		Version:  e.Version,
		Payload:  hex.EncodeToString(e.Payload[:]),
		Time:     formatTime(e.Time),
		Ceremony: e.Ceremony,
	}
}

func formatTime(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }

func checksum(ws []wireEntry) (string, error) {
	if ws == nil {
		ws = []wireEntry{}
	}
	b, err := json.Marshal(wireBody{Format: Format, Entries: ws})
	if err != nil {
		return "", err
	}
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:]), nil
}

func encodeWire(ws []wireEntry) ([]byte, error) {
	if ws == nil {
		ws = []wireEntry{}
	}
	sum, err := checksum(ws)
	if err != nil {
		return nil, err
	}
	b, err := json.Marshal(wireFile{Format: Format, Entries: ws, Checksum: sum})
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}

func encode(es []Entry) ([]byte, error) {
	ws := make([]wireEntry, len(es))
	for i, e := range es {
		ws[i] = toWire(e)
	}
	return encodeWire(ws)
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

// Record checks the signing as Check does and makes it durable. It returns
// nil only once the entry is on stable storage; only then may the payload be
// signed and exported (see the package doc for the ordering contract).
func (l *Ledger) Record(role string, version int64, payload [32]byte, ceremonyID string, at time.Time) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := l.check(role, version, payload); err != nil {
		return err
	}
	if err := checkCeremonyID(ceremonyID); err != nil {
		return fmt.Errorf("ledger record: %w", err)
	}
	if at.IsZero() {
		return errors.New("ledger record: zero time")
	}
	if len(l.entries) >= MaxEntries {
		return fmt.Errorf("ledger record: the ledger holds %d signings, the cap: archive it with the security officer before signing more", len(l.entries))
	}
	e := Entry{Role: role, Version: version, Payload: payload, Time: at.UTC(), Ceremony: ceremonyID}
	next := append(l.entries[:len(l.entries):len(l.entries)], e)
	b, err := encode(next)
	if err != nil {
		return fmt.Errorf("ledger record: %w", err)
	}
	if err := l.dir.WriteFile(FileName, b); err != nil {
		l.broken = err
		return fmt.Errorf("ledger record: %w; signing is refused until the appliance is restarted", err)
	}
	l.entries = next
	l.heads[role] = head{version, payload}
	return nil
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
