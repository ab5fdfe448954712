// Package audit keeps the ceremony record: an append-only, hash-chained log
// of every ceremony step on the appliance — when, which ceremony, which step,
// who acted, which hashes were involved, the outcome and a detail — and
// exports the part of it that belongs to one ceremony, to travel with the
// signatures. The SHA-256 of an exported record goes into the signature
// response, which anchors the record outside the appliance.
//
// # Files
//
// The state directory holds two files:
//   - audit.log: one entry per line, each line the canonical JSON of the
//     entry. Entry n carries seq n and the SHA-256 of line n-1 (all zeros for
//     entry 0), so each entry commits to the whole history before it.
//   - audit.head: the committed head — the number of entries, the byte size
//     of the log they occupy and the SHA-256 of the last one — replaced
//     atomically (see package store).
//
// # Durability and crashes
//
// Append writes the line and fsyncs the log, then atomically replaces the
// head, and returns nil only after both. An entry whose Append returned nil
// is committed and survives a crash or power loss. A crash during Append
// leaves at most one line (complete or torn) after the committed head. Open
// discards it, truncating the log back to the head, and appends a "recovery"
// entry saying how many bytes were discarded and their SHA-256, so the
// interruption stays on the record. (A crash between that truncation and the
// recovery entry loses the note, not any committed entry.) Anything else
// after the head — more than one line — is not a crash artefact and makes
// Open fail. If an Append fails the Log refuses further appends until it is
// reopened, because the entry may or may not have become committed.
//
// # What verification detects
//
// Open and Verify check every line: canonical form, field caps, seq equal to
// the line number, prev equal to the previous line's hash, and the head equal
// to the last committed line. This detects a modified, removed, reordered or
// inserted entry, and the removal of committed entries from the end (the log
// is then shorter than its head). It cannot detect someone who rewrites the
// log and the head together with recomputed hashes, or who truncates both
// consistently: nothing on the appliance is secret from a person who can
// write its disk. Nor can it tell a head moved back by exactly one entry
// from a crash in Append: that entry is discarded like an interrupted append,
// and the recovery entry keeps its hash on the record. Exported records are
// the defence there: their hashes were sent out in signature responses, and
// Contains checks that a record is still part of the log.
//
// Entry times come from the caller's clock (the operator-confirmed date; the
// appliance has no network time) and are recorded, not ordered.
//
// # Thread safety
//
// A Log is safe for concurrent use; appends are serialised.
package audit

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	"airlock.dev/airlock/appliance/store"
)

// File names in the state directory.
const (
	LogFileName  = "audit.log"
	HeadFileName = "audit.head"
)

// Format names.
const (
	HeadFormat   = "airlock-audit-head/1"
	RecordFormat = "airlock-ceremony-record/1"
)

// Caps on the log, the exported record and entry fields.
const (
	MaxLineSize      = 16 << 10 // bytes of one log line, newline included
	MaxLogSize       = 64 << 20 // bytes of audit.log
	MaxHeadSize      = 1 << 10  // bytes of audit.head
	MaxRecordSize    = 4 << 20  // bytes of an exported record
	MaxRecordEntries = 4096     // entries in an exported record
	MaxCeremonyIDLen = 128
	MaxStepLen       = 64
	MaxActorLen      = 256
	MaxDetailLen     = 4096
	MaxHashes        = 16
	MaxHashNameLen   = 64
)

// ApplianceCeremony is the ceremony id of entries the appliance writes
// outside any ceremony, such as crash recovery notes.
const ApplianceCeremony = "appliance"

// StepRecovery is the step of the entry Open appends after discarding an
// interrupted append.
const StepRecovery = "recovery"

// Errors callers branch on.
var (
	// ErrCorrupt: the log or its head is damaged or was altered.
	ErrCorrupt = errors.New("audit log is damaged or was altered")
	// ErrNotInitialised: there is no audit log in the state directory.
	ErrNotInitialised = errors.New("audit log not found")
	// ErrBroken: an append failed; the log must be reopened.
	ErrBroken = errors.New("audit log append failed earlier")
	// ErrInvalidRecord: an exported record does not verify.
	ErrInvalidRecord = errors.New("invalid ceremony record")
)

const corruptAdvice = "ceremonies are refused: do not edit or delete the files; keep a copy of the state directory and have the security officer compare the log with the exported ceremony records"

// Outcome is how a step ended.
type Outcome string

// Outcomes.
const (
	OutcomeOK      Outcome = "ok"
	OutcomeRefused Outcome = "refused"
	OutcomeFailed  Outcome = "failed"
	OutcomeInfo    Outcome = "info"
)

// Hash is a named SHA-256 involved in a step ("payload", "bundle", "request").
type Hash struct {
	Name string
	Sum  [32]byte
}

// Entry is one ceremony step. Seq and Prev are set by Append.
type Entry struct {
	Seq      int64
	Time     time.Time
	Ceremony string
	Step     string
	Actor    string // the holder or officer who acted, "" for the appliance
	Hashes   []Hash
	Outcome  Outcome
	Detail   string
	Prev     [32]byte // SHA-256 of the previous entry's canonical encoding
}

type wireHash struct {
	Name   string `json:"name"`
	SHA256 string `json:"sha256"`
}

type wireEntry struct {
	Seq      int64      `json:"seq"`
	Time     string     `json:"time"`
	Ceremony string     `json:"ceremony"`
	Step     string     `json:"step"`
	Actor    string     `json:"actor"`
	Hashes   []wireHash `json:"hashes"`
	Outcome  string     `json:"outcome"`
	Detail   string     `json:"detail"`
	Prev     string     `json:"prev"`
}

type wireHead struct {
	Format  string `json:"format"`
	Entries int64  `json:"entries"`
	Size    int64  `json:"size"`
	Last    string `json:"last"`
}

type wireRecord struct {
	Format   string      `json:"format"`
	Ceremony string      `json:"ceremony"`
	Entries  []wireEntry `json:"entries"`
	Head     string      `json:"head"`
}

// Record is a verified exported ceremony record: a contiguous run of the
// log from the ceremony's first entry to its last (entries of other
// ceremonies in between, if any, are included so the chain can be checked).
type Record struct {
	Ceremony string
	Entries  []Entry
	Head     [32]byte // SHA-256 of the last entry
}

// Log is the open audit log of one state directory.
type Log struct {
	dir *store.Dir

	mu       sync.Mutex
	entries  []Entry
	sums     [][32]byte
	size     int64
	broken   error
	recovery *Entry
}

// EntrySum returns the SHA-256 of e's canonical encoding, the value the next
// entry's Prev holds.
func EntrySum(e Entry) [32]byte {
	// Marshal cannot fail: the wire form holds only strings and integers.
	b, _ := json.Marshal(toWire(e))
	return sha256.Sum256(b)
}

// Init creates an empty audit log in d. It refuses if one exists.
func Init(d *store.Dir) error {
	ok, err := d.Exists(HeadFileName)
	if err != nil {
		return fmt.Errorf("initialise audit log: %w", err)
	}
	if ok {
		return fmt.Errorf("initialise audit log: %s already exists in %s: an appliance's audit log is never reset", HeadFileName, d.Path())
	}
	b, err := d.ReadFile(LogFileName, 0)
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil || len(b) != 0:
		return fmt.Errorf("initialise audit log: %s exists in %s without its head: %w; %s", LogFileName, d.Path(), ErrCorrupt, corruptAdvice)
	}
	if err := d.AppendFile(LogFileName, nil); err != nil {
		return fmt.Errorf("initialise audit log: %w", err)
	}
	if err := d.WriteFile(HeadFileName, encodeHead(0, 0, [32]byte{})); err != nil {
		return fmt.Errorf("initialise audit log: %w", err)
	}
	return nil
}

// Open reads and verifies the audit log in d, discarding an interrupted
// append (see the package doc) and recording that with an entry stamped by
// clock.
func Open(d *store.Dir, clock func() time.Time) (*Log, error) {
	if clock == nil {
		return nil, errors.New("open audit log: nil clock")
	}
	entries, sums, size, tail, err := readFiles(d)
	if err != nil {
		return nil, fmt.Errorf("open audit log: %w", err)
	}
	l := &Log{dir: d, entries: entries, sums: sums, size: size}
	if len(tail) > 0 {
		note := Entry{
			Time:     clock().UTC(),
			Ceremony: ApplianceCeremony,
			Step:     StepRecovery,
			Hashes:   []Hash{{Name: "discarded", Sum: sha256.Sum256(tail)}},
			Outcome:  OutcomeInfo,
			Detail: fmt.Sprintf("an append interrupted by a crash was discarded: %d bytes after %d committed entries (complete line: %v)",
				len(tail), len(entries), tail[len(tail)-1] == '\n'),
		}
		// Validate the note before discarding anything, so that a bad clock
		// cannot make Open drop the tail without recording it.
		if err := validate(note); err != nil {
			return nil, fmt.Errorf("open audit log: recovery note: %w", err)
		}
		if err := d.Truncate(LogFileName, size); err != nil {
			return nil, fmt.Errorf("open audit log: discard interrupted append: %w", err)
		}
		e, _, err := l.Append(note)
		if err != nil {
			return nil, fmt.Errorf("open audit log: record recovery: %w", err)
		}
		l.recovery = &e
	}
	return l, nil
}

// Recovery returns the recovery entry Open appended, if it discarded an
// interrupted append.
func (l *Log) Recovery() (Entry, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.recovery == nil {
		return Entry{}, false
	}
	return *l.recovery, true
}

// readFiles reads and verifies the head and the committed part of the log,
// and returns what lies after the committed part.
func readFiles(d *store.Dir) (entries []Entry, sums [][32]byte, size int64, tail []byte, err error) {
	bad := func(format string, a ...any) error {
		return fmt.Errorf("%w: %s; %s", ErrCorrupt, fmt.Sprintf(format, a...), corruptAdvice)
	}
	hb, err := d.ReadFile(HeadFileName, MaxHeadSize)
	if errors.Is(err, fs.ErrNotExist) {
		if ok, _ := d.Exists(LogFileName); ok {
			if lb, err := d.ReadFile(LogFileName, 0); err != nil || len(lb) != 0 {
				return nil, nil, 0, nil, bad("%s is missing but %s is not empty", HeadFileName, LogFileName)
			}
		}
		return nil, nil, 0, nil, fmt.Errorf("%w in %s: if this is a new appliance, initialise it; otherwise restore the state directory from backup", ErrNotInitialised, d.Path())
	}
	if errors.Is(err, store.ErrTooLarge) {
		return nil, nil, 0, nil, bad("%v", err)
	}
	if err != nil {
		return nil, nil, 0, nil, err
	}
	n, hsize, last, err := parseHead(hb)
	if err != nil {
		return nil, nil, 0, nil, bad("%s: %v", HeadFileName, err)
	}
	lb, err := d.ReadFile(LogFileName, MaxLogSize+MaxLineSize)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil, 0, nil, bad("%s is missing", LogFileName)
	}
	if errors.Is(err, store.ErrTooLarge) {
		return nil, nil, 0, nil, bad("%v", err)
	}
	if err != nil {
		return nil, nil, 0, nil, err
	}
	if int64(len(lb)) < hsize {
		return nil, nil, 0, nil, bad("%s is %d bytes but its head commits %d bytes (%d entries): committed entries were removed", LogFileName, len(lb), hsize, n)
	}
	entries, sums, err = parseLog(lb[:hsize])
	if err != nil {
		return nil, nil, 0, nil, bad("%s: %v", LogFileName, err)
	}
	if int64(len(entries)) != n {
		return nil, nil, 0, nil, bad("%s holds %d entries in its committed %d bytes, its head says %d", LogFileName, len(entries), hsize, n)
	}
	var got [32]byte
	if n > 0 {
		got = sums[n-1]
	}
	if got != last {
		return nil, nil, 0, nil, bad("the last committed entry hashes to %x, its head says %x", got, last)
	}
	tail = lb[hsize:]
	if len(tail) > MaxLineSize || bytes.IndexByte(tail, '\n') >= 0 && bytes.IndexByte(tail, '\n') != len(tail)-1 {
		return nil, nil, 0, nil, bad("%d bytes after the committed head are more than one interrupted append", len(tail))
	}
	return entries, sums, hsize, tail, nil
}

func encodeHead(n, size int64, last [32]byte) []byte {
	// Marshal cannot fail: the wire form holds only strings and integers.
	b, _ := json.Marshal(wireHead{Format: HeadFormat, Entries: n, Size: size, Last: hex.EncodeToString(last[:])})
	return append(b, '\n')
}

func parseHead(b []byte) (n, size int64, last [32]byte, err error) {
	var h wireHead
	if err := strictDecode(b, &h); err != nil {
		return 0, 0, last, err
	}
	if h.Format != HeadFormat {
		return 0, 0, last, fmt.Errorf("format %q, this appliance reads %q", clip(h.Format), HeadFormat)
	}
	if h.Entries < 0 || h.Size < 0 || h.Size > MaxLogSize || (h.Entries == 0) != (h.Size == 0) {
		return 0, 0, last, fmt.Errorf("entries %d and size %d are not possible", h.Entries, h.Size)
	}
	last, err = parseSum(h.Last)
	if err != nil {
		return 0, 0, last, fmt.Errorf("last: %w", err)
	}
	if !bytes.Equal(encodeHead(h.Entries, h.Size, last), b) {
		return 0, 0, last, errors.New("not in canonical form")
	}
	return h.Entries, h.Size, last, nil
}

// strictDecode decodes exactly one JSON value with no unknown fields; the
// callers compare a re-encoding with the input for canonical form.
func strictDecode(b []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("malformed: %v", err)
	}
	return nil
}

// ParseLog strictly parses and verifies the bytes of a complete, committed
// audit log: newline-terminated canonical lines, seq from 0, each prev the
// hash of the line before. It returns the entries and their hashes.
func ParseLog(b []byte) ([]Entry, [][32]byte, error) {
	if len(b) > MaxLogSize {
		return nil, nil, fmt.Errorf("%w: %d bytes, above the cap of %d", ErrCorrupt, len(b), MaxLogSize)
	}
	es, sums, err := parseLog(b)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %v", ErrCorrupt, err)
	}
	return es, sums, nil
}

func parseLog(b []byte) ([]Entry, [][32]byte, error) {
	var (
		entries []Entry
		sums    [][32]byte
		prev    [32]byte
	)
	for off := 0; off < len(b); {
		i := bytes.IndexByte(b[off:], '\n')
		if i < 0 {
			return nil, nil, fmt.Errorf("entry %d at byte %d: no newline at the end", len(entries), off)
		}
		line := b[off : off+i]
		if i+1 > MaxLineSize {
			return nil, nil, fmt.Errorf("entry %d: %d bytes, above the cap of %d", len(entries), i+1, MaxLineSize)
		}
		e, err := parseEntry(line)
		if err != nil {
			return nil, nil, fmt.Errorf("entry %d: %w", len(entries), err)
		}
		if e.Seq != int64(len(entries)) {
			return nil, nil, fmt.Errorf("entry %d: seq %d (an entry was removed, inserted or moved)", len(entries), e.Seq)
		}
		if e.Prev != prev {
			return nil, nil, fmt.Errorf("entry %d: prev %x does not match the previous entry's hash %x (an entry was changed, removed, inserted or moved)", len(entries), e.Prev, prev)
		}
		prev = sha256.Sum256(line)
		entries = append(entries, e)
		sums = append(sums, prev)
		off += i + 1
	}
	return entries, sums, nil
}

func parseEntry(line []byte) (Entry, error) {
	var w wireEntry
	if err := strictDecode(line, &w); err != nil {
		return Entry{}, err
	}
	e, err := fromWire(w)
	if err != nil {
		return Entry{}, err
	}
	canon, err := json.Marshal(toWire(e))
	if err != nil || !bytes.Equal(canon, line) {
		return Entry{}, errors.New("not in canonical form")
	}
	return e, nil
}

func clip(s string) string {
	if len(s) > 80 {
		return s[:80] + "…"
	}
	return s
}

func parseSum(s string) ([32]byte, error) {
	var out [32]byte
	b, err := hex.DecodeString(s)
	if err != nil || len(b) != sha256.Size || hex.EncodeToString(b) != s {
		return out, fmt.Errorf("%q is not a lowercase hex SHA-256", clip(s))
	}
	copy(out[:], b)
	return out, nil
}

func formatTime(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }

func toWire(e Entry) wireEntry {
	hs := make([]wireHash, len(e.Hashes))
	for i, h := range e.Hashes {
		hs[i] = wireHash{Name: h.Name, SHA256: hex.EncodeToString(h.Sum[:])}
	}
	return wireEntry{
		Seq:      e.Seq,
		Time:     formatTime(e.Time),
		Ceremony: e.Ceremony,
		Step:     e.Step,
		Actor:    e.Actor,
		Hashes:   hs,
		Outcome:  string(e.Outcome),
		Detail:   e.Detail,
		Prev:     hex.EncodeToString(e.Prev[:]),
	}
}

func fromWire(w wireEntry) (Entry, error) {
	if w.Seq < 0 {
		return Entry{}, fmt.Errorf("seq %d is negative", w.Seq)
	}
	t, err := time.Parse(time.RFC3339Nano, w.Time)
	if err != nil || formatTime(t) != w.Time {
		return Entry{}, fmt.Errorf("time %q is not an RFC 3339 UTC timestamp", clip(w.Time))
	}
	if len(w.Hashes) > MaxHashes {
		return Entry{}, fmt.Errorf("%d hashes, above the cap of %d", len(w.Hashes), MaxHashes)
	}
	e := Entry{Seq: w.Seq, Time: t, Ceremony: w.Ceremony, Step: w.Step, Actor: w.Actor, Outcome: Outcome(w.Outcome), Detail: w.Detail}
	if w.Hashes != nil {
		e.Hashes = make([]Hash, len(w.Hashes))
	}
	for i, h := range w.Hashes {
		sum, err := parseSum(h.SHA256)
		if err != nil {
			return Entry{}, fmt.Errorf("hash %d: %w", i, err)
		}
		e.Hashes[i] = Hash{Name: h.Name, Sum: sum}
	}
	if e.Prev, err = parseSum(w.Prev); err != nil {
		return Entry{}, fmt.Errorf("prev: %w", err)
	}
	if err := validate(e); err != nil {
		return Entry{}, err
	}
	if len(e.Hashes) == 0 {
		e.Hashes = nil
	}
	return e, nil
}

// validate checks the fields a caller supplies.
func validate(e Entry) error {
	if e.Time.IsZero() {
		return errors.New("zero time")
	}
	if y := e.Time.UTC().Year(); y < 1 || y > 9999 {
		return fmt.Errorf("time year %d is out of range", y)
	}
	if err := checkToken("ceremony id", e.Ceremony, MaxCeremonyIDLen, true); err != nil {
		return err
	}
	if err := checkToken("step", e.Step, MaxStepLen, false); err != nil {
		return err
	}
	if err := checkText("actor", e.Actor, MaxActorLen, false); err != nil {
		return err
	}
	switch e.Outcome {
	case OutcomeOK, OutcomeRefused, OutcomeFailed, OutcomeInfo:
	default:
		return fmt.Errorf("outcome %q is not one of ok, refused, failed, info", clip(string(e.Outcome)))
	}
	if err := checkText("detail", e.Detail, MaxDetailLen, true); err != nil {
		return err
	}
	if len(e.Hashes) > MaxHashes {
		return fmt.Errorf("%d hashes, above the cap of %d", len(e.Hashes), MaxHashes)
	}
	seen := make(map[string]bool, len(e.Hashes))
	for i, h := range e.Hashes {
		if err := checkToken(fmt.Sprintf("hash %d name", i), h.Name, MaxHashNameLen, false); err != nil {
			return err
		}
		if seen[h.Name] {
			return fmt.Errorf("hash name %q appears twice", h.Name)
		}
		seen[h.Name] = true
	}
	return nil
}

// checkToken accepts 1..max bytes of [a-z0-9._:-], and upper case letters
// too when upper is set.
func checkToken(what, s string, max int, upper bool) error {
	if s == "" {
		return fmt.Errorf("empty %s", what)
	}
	if len(s) > max {
		return fmt.Errorf("%s is %d bytes, above the cap of %d", what, len(s), max)
	}
	for _, c := range []byte(s) {
		ok := c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.' || c == ':' ||
			upper && c >= 'A' && c <= 'Z'
		if !ok {
			return fmt.Errorf("%s %q may contain only letters, digits and - _ . :", what, clip(s))
		}
	}
	return nil
}

// checkText accepts valid UTF-8 up to max bytes without control or format
// characters (tab and newline allowed where multiline is set).
func checkText(what, s string, max int, multiline bool) error {
	if len(s) > max {
		return fmt.Errorf("%s is %d bytes, above the cap of %d", what, len(s), max)
	}
	if !utf8.ValidString(s) {
		return fmt.Errorf("%s is not valid UTF-8", what)
	}
	for _, r := range s {
		if multiline && (r == '\n' || r == '\t') {
			continue
		}
		if unicode.IsControl(r) || unicode.Is(unicode.Cf, r) {
			return fmt.Errorf("%s contains control or format character %U", what, r)
		}
	}
	return nil
}

// Append adds e to the log as the next entry, setting its Seq and Prev, and
// returns the committed entry and its hash once it is durable (see the
// package doc). A failed Append leaves the Log refusing appends until it is
// reopened.
func (l *Log) Append(e Entry) (Entry, [32]byte, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.broken != nil {
		return Entry{}, [32]byte{}, fmt.Errorf("audit append: %w (%v): restart the appliance", ErrBroken, l.broken)
	}
	e.Time = e.Time.UTC()
	if err := validate(e); err != nil {
		return Entry{}, [32]byte{}, fmt.Errorf("audit append: %w", err)
	}
	if len(e.Hashes) == 0 {
		e.Hashes = nil
	} else {
		e.Hashes = append([]Hash(nil), e.Hashes...)
	}
	e.Seq = int64(len(l.entries))
	e.Prev = [32]byte{}
	if n := len(l.sums); n > 0 {
		e.Prev = l.sums[n-1]
	}
	line, err := json.Marshal(toWire(e))
	if err != nil {
		return Entry{}, [32]byte{}, fmt.Errorf("audit append: %w", err)
	}
	sum := sha256.Sum256(line)
	line = append(line, '\n')
	if len(line) > MaxLineSize {
		return Entry{}, [32]byte{}, fmt.Errorf("audit append: entry is %d bytes, above the cap of %d: shorten the detail", len(line), MaxLineSize)
	}
	if l.size+int64(len(line)) > MaxLogSize {
		return Entry{}, [32]byte{}, fmt.Errorf("audit append: the audit log would exceed its cap of %d bytes: archive it with the security officer", MaxLogSize)
	}
	if err := l.dir.AppendFile(LogFileName, line); err != nil {
		l.broken = err
		return Entry{}, [32]byte{}, fmt.Errorf("audit append: %w", err)
	}
	newSize := l.size + int64(len(line))
	if err := l.dir.WriteFile(HeadFileName, encodeHead(e.Seq+1, newSize, sum)); err != nil {
		l.broken = err
		return Entry{}, [32]byte{}, fmt.Errorf("audit append: %w", err)
	}
	l.entries = append(l.entries, e)
	l.sums = append(l.sums, sum)
	l.size = newSize
	return e, sum, nil
}

// Head returns the number of committed entries and the hash of the last one.
func (l *Log) Head() (int64, [32]byte) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.sums) == 0 {
		return 0, [32]byte{}
	}
	return int64(len(l.sums)), l.sums[len(l.sums)-1]
}

// Len returns the number of committed entries.
func (l *Log) Len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.entries)
}

// Entries returns the committed entries, oldest first.
func (l *Log) Entries() []Entry {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]Entry(nil), l.entries...)
}

// Verify re-reads the log and its head from disk, verifies them completely,
// and checks that they hold exactly the entries this Log committed.
func (l *Log) Verify() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	_, sums, size, tail, err := readFiles(l.dir)
	if err != nil {
		return fmt.Errorf("verify audit log: %w", err)
	}
	if len(tail) > 0 {
		return fmt.Errorf("verify audit log: %w: %d bytes after the committed head were written by someone else; %s", ErrCorrupt, len(tail), corruptAdvice)
	}
	if len(sums) != len(l.sums) || size != l.size {
		return fmt.Errorf("verify audit log: %w: the files hold %d entries, this appliance committed %d; %s", ErrCorrupt, len(sums), len(l.sums), corruptAdvice)
	}
	for i := range sums {
		if sums[i] != l.sums[i] {
			return fmt.Errorf("verify audit log: %w: entry %d changed on disk; %s", ErrCorrupt, i, corruptAdvice)
		}
	}
	return nil
}

// Export returns the ceremony record of ceremonyID and its SHA-256, the
// value that goes into the signature response. The record runs from the
// ceremony's first entry to its last. Entries appended later (for example
// "record exported") are not part of it.
func (l *Log) Export(ceremonyID string) ([]byte, [32]byte, error) {
	if err := checkToken("ceremony id", ceremonyID, MaxCeremonyIDLen, true); err != nil {
		return nil, [32]byte{}, fmt.Errorf("export ceremony record: %w", err)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	first, last := -1, -1
	for i, e := range l.entries {
		if e.Ceremony == ceremonyID {
			if first < 0 {
				first = i
			}
			last = i
		}
	}
	if first < 0 {
		return nil, [32]byte{}, fmt.Errorf("export ceremony record: no audit entries for ceremony %s", ceremonyID)
	}
	if n := last - first + 1; n > MaxRecordEntries {
		return nil, [32]byte{}, fmt.Errorf("export ceremony record: %d entries, above the cap of %d", n, MaxRecordEntries)
	}
	b, err := encodeRecord(ceremonyID, l.entries[first:last+1], l.sums[last])
	if err != nil {
		return nil, [32]byte{}, fmt.Errorf("export ceremony record: %w", err)
	}
	if len(b) > MaxRecordSize {
		return nil, [32]byte{}, fmt.Errorf("export ceremony record: %d bytes, above the cap of %d", len(b), MaxRecordSize)
	}
	return b, sha256.Sum256(b), nil
}

func encodeRecord(ceremonyID string, es []Entry, head [32]byte) ([]byte, error) {
	ws := make([]wireEntry, len(es))
	for i, e := range es {
		ws[i] = toWire(e)
	}
	return json.Marshal(wireRecord{Format: RecordFormat, Ceremony: ceremonyID, Entries: ws, Head: hex.EncodeToString(head[:])})
}

// VerifyExport strictly parses an exported ceremony record and verifies its
// internal chain: canonical form, caps, contiguous seq, each prev the hash of
// the entry before, the head the hash of the last entry, and the ceremony's
// entries at both ends. The caller compares sha256.Sum256(b) with the record
// hash in the signature response. Errors wrap ErrInvalidRecord.
func VerifyExport(b []byte) (*Record, error) {
	bad := func(format string, a ...any) error {
		return fmt.Errorf("%w: %s", ErrInvalidRecord, fmt.Sprintf(format, a...))
	}
	if len(b) > MaxRecordSize {
		return nil, bad("%d bytes, above the cap of %d", len(b), MaxRecordSize)
	}
	var w wireRecord
	if err := strictDecode(b, &w); err != nil {
		return nil, bad("%v", err)
	}
	if w.Format != RecordFormat {
		return nil, bad("format %q, this appliance reads %q", clip(w.Format), RecordFormat)
	}
	if err := checkToken("ceremony id", w.Ceremony, MaxCeremonyIDLen, true); err != nil {
		return nil, bad("%v", err)
	}
	if len(w.Entries) == 0 || len(w.Entries) > MaxRecordEntries {
		return nil, bad("%d entries, want 1 to %d", len(w.Entries), MaxRecordEntries)
	}
	head, err := parseSum(w.Head)
	if err != nil {
		return nil, bad("head: %v", err)
	}
	r := &Record{Ceremony: w.Ceremony, Head: head, Entries: make([]Entry, len(w.Entries))}
	var prev [32]byte
	for i, we := range w.Entries {
		e, err := fromWire(we)
		if err != nil {
			return nil, bad("entry %d: %v", i, err)
		}
		if i > 0 {
			if e.Seq != r.Entries[0].Seq+int64(i) {
				return nil, bad("entry %d: seq %d does not follow %d (an entry was removed, inserted or moved)", i, e.Seq, r.Entries[i-1].Seq)
			}
			if e.Prev != prev {
				return nil, bad("entry %d: prev does not match the previous entry's hash (an entry was changed, removed, inserted or moved)", i)
			}
		}
		prev = EntrySum(e)
		r.Entries[i] = e
	}
	if prev != head {
		return nil, bad("head %x is not the hash of the last entry %x", head, prev)
	}
	if r.Entries[0].Ceremony != w.Ceremony || r.Entries[len(r.Entries)-1].Ceremony != w.Ceremony {
		return nil, bad("the record does not start and end with entries of ceremony %s", w.Ceremony)
	}
	canon, err := encodeRecord(w.Ceremony, r.Entries, head)
	if err != nil || !bytes.Equal(canon, b) {
		return nil, bad("not in canonical form")
	}
	return r, nil
}

// Contains reports whether r is still part of this log: every entry at its
// seq with the same hash. A record that was exported but is no longer in the
// log shows that the log was rewritten.
func (l *Log) Contains(r *Record) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	for i, e := range r.Entries {
		if e.Seq < 0 || e.Seq >= int64(len(l.sums)) {
			return fmt.Errorf("%w: record entry %d (seq %d) is beyond the log's %d entries: the log lost entries", ErrCorrupt, i, e.Seq, len(l.sums))
		}
		if EntrySum(e) != l.sums[e.Seq] {
			return fmt.Errorf("%w: record entry %d (seq %d) differs from the log: the log was rewritten", ErrCorrupt, i, e.Seq)
		}
	}
	return nil
}
