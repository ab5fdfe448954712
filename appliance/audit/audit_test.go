package audit

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"airlock.dev/airlock/appliance/store"
	"github.com/google/go-cmp/cmp"
)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// testClock advances one second per call.
func testClock() func() time.Time {
	t := t0
	return func() time.Time { t = t.Add(time.Second); return t }
}

func newDir(t testing.TB) *store.Dir {
	t.Helper()
	d, err := store.OpenDir(filepath.Join(t.TempDir(), "state"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

func newLog(t testing.TB) (*store.Dir, *Log) {
	t.Helper()
	d := newDir(t)
	if err := Init(d); err != nil {
		t.Fatal(err)
	}
	l, err := Open(d, testClock())
	if err != nil {
		t.Fatal(err)
	}
	return d, l
}

func step(ceremony, name string, i int) Entry {
	return Entry{
		Time:     t0.Add(time.Duration(i) * time.Minute),
		Ceremony: ceremony,
		Step:     name,
		Actor:    "Alice Example <alice@example.org>",
		Hashes:   []Hash{{Name: "payload", Sum: sha256.Sum256([]byte{byte(i)})}},
		Outcome:  OutcomeOK,
		Detail:   "line one\nline two: \"quoted\" <tag> & ü",
	}
}

// fill appends a small ceremony history: c1 (3 steps), c2 (2 steps) with one
// c1 entry in between, as a crash-interrupted ceremony might leave it.
func fill(t testing.TB, l *Log) {
	t.Helper()
	for i, e := range []Entry{
		step("c1", "import", 0), step("c1", "approve", 1), step("c2", "import", 2),
		step("c1", "sign", 3), step("c2", "approve", 4),
	} {
		if _, _, err := l.Append(e); err != nil {
			t.Fatalf("append %d: %v", i, err)
		}
	}
}

func logPath(d *store.Dir) string  { return filepath.Join(d.Path(), LogFileName) }
func headPath(d *store.Dir) string { return filepath.Join(d.Path(), HeadFileName) }

func readLines(t *testing.T, d *store.Dir) [][]byte {
	t.Helper()
	b, err := os.ReadFile(logPath(d))
	if err != nil {
		t.Fatal(err)
	}
	return bytes.SplitAfter(b, []byte("\n"))[:bytes.Count(b, []byte("\n"))]
}

func writeLines(t *testing.T, d *store.Dir, lines [][]byte) {
	t.Helper()
	if err := os.WriteFile(logPath(d), bytes.Join(lines, nil), 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestAppendReopen(t *testing.T) {
	d, l := newLog(t)
	fill(t, l)
	want := l.Entries()
	for i, e := range want {
		if e.Seq != int64(i) {
			t.Fatalf("entry %d has seq %d", i, e.Seq)
		}
		var prev [32]byte
		if i > 0 {
			prev = EntrySum(want[i-1])
		}
		if e.Prev != prev {
			t.Fatalf("entry %d prev %x, want %x", i, e.Prev, prev)
		}
	}
	if err := l.Verify(); err != nil {
		t.Fatal(err)
	}
	l2, err := Open(d, testClock())
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, l2.Entries()); diff != "" {
		t.Errorf("reopened entries (-want +got):\n%s", diff)
	}
	if _, ok := l2.Recovery(); ok {
		t.Error("a clean log reported a recovery")
	}
}

func TestAppendValidates(t *testing.T) {
	long := func(n int) string { return strings.Repeat("a", n) }
	tests := map[string]func(*Entry){
		"zero time":             func(e *Entry) { e.Time = time.Time{} },
		"year beyond 9999":      func(e *Entry) { e.Time = time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC) },
		"empty ceremony":        func(e *Entry) { e.Ceremony = "" },
		"ceremony with space":   func(e *Entry) { e.Ceremony = "c 1" },
		"long ceremony":         func(e *Entry) { e.Ceremony = long(MaxCeremonyIDLen + 1) },
		"empty step":            func(e *Entry) { e.Step = "" },
		"upper case step":       func(e *Entry) { e.Step = "Sign" },
		"long step":             func(e *Entry) { e.Step = long(MaxStepLen + 1) },
		"escape in actor":       func(e *Entry) { e.Actor = "al\x1b[2Jice" },
		"newline in actor":      func(e *Entry) { e.Actor = "al\nice" },
		"bidi in actor":         func(e *Entry) { e.Actor = "ali\u202ece" },
		"long actor":            func(e *Entry) { e.Actor = long(MaxActorLen + 1) },
		"unknown outcome":       func(e *Entry) { e.Outcome = "maybe" },
		"invalid utf-8 detail":  func(e *Entry) { e.Detail = "\xff" },
		"escape in detail":      func(e *Entry) { e.Detail = "\x1b]0;x\x07" },
		"zero-width in detail":  func(e *Entry) { e.Detail = "a\u200bb" },
		"long detail":           func(e *Entry) { e.Detail = long(MaxDetailLen + 1) },
		"too many hashes":       func(e *Entry) { e.Hashes = make([]Hash, MaxHashes+1) },
		"empty hash name":       func(e *Entry) { e.Hashes = []Hash{{}} },
		"duplicate hash name":   func(e *Entry) { e.Hashes = []Hash{{Name: "p"}, {Name: "p"}} },
		"hash name with escape": func(e *Entry) { e.Hashes = []Hash{{Name: "p\x1b"}} },
	}
	for name, alter := range tests {
		t.Run(name, func(t *testing.T) {
			_, l := newLog(t)
			e := step("c1", "import", 0)
			if _, _, err := l.Append(e); err != nil {
				t.Fatalf("valid entry refused: %v", err)
			}
			alter(&e)
			if _, _, err := l.Append(e); err == nil {
				t.Fatal("Append accepted the entry")
			}
			if l.Len() != 1 {
				t.Fatalf("log has %d entries after a refused append, want 1", l.Len())
			}
			if err := l.Verify(); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestInit(t *testing.T) {
	d := newDir(t)
	if _, err := Open(d, testClock()); !errors.Is(err, ErrNotInitialised) {
		t.Fatalf("Open before Init: %v, want ErrNotInitialised", err)
	}
	if err := Init(d); err != nil {
		t.Fatal(err)
	}
	l, err := Open(d, testClock())
	if err != nil {
		t.Fatal(err)
	}
	fill(t, l)
	if err := Init(d); err == nil {
		t.Fatal("Init overwrote an existing audit log")
	}
	if err := os.Remove(headPath(d)); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(d, testClock()); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("Open with the head removed: %v, want ErrCorrupt", err)
	}
	if err := Init(d); err == nil {
		t.Fatal("Init reset a non-empty log whose head was removed")
	}
}

// Tampering with the files is detected by Open and by Verify.
func TestTamperDetected(t *testing.T) {
	type tamper func(t *testing.T, d *store.Dir)
	relink := func(t *testing.T, line []byte, alter func(*wireEntry)) []byte {
		var w wireEntry
		if err := json.Unmarshal(bytes.TrimSuffix(line, []byte("\n")), &w); err != nil {
			t.Fatal(err)
		}
		alter(&w)
		b, err := json.Marshal(w)
		if err != nil {
			t.Fatal(err)
		}
		return append(b, '\n')
	}
	cases := map[string]tamper{
		"modified middle entry": func(t *testing.T, d *store.Dir) {
			ls := readLines(t, d)
			ls[1] = relink(t, ls[1], func(w *wireEntry) { w.Actor = "Mallory" })
			writeLines(t, d, ls)
		},
		"modified last entry": func(t *testing.T, d *store.Dir) {
			ls := readLines(t, d)
			ls[4] = relink(t, ls[4], func(w *wireEntry) { w.Outcome = "refused" })
			writeLines(t, d, ls)
		},
		"re-encoded entry": func(t *testing.T, d *store.Dir) {
			ls := readLines(t, d)
			ls[2] = bytes.Replace(ls[2], []byte(`,"step"`), []byte(`, "step"`), 1)
			writeLines(t, d, ls)
		},
		"removed middle entry": func(t *testing.T, d *store.Dir) {
			ls := readLines(t, d)
			writeLines(t, d, append(ls[:2:2], ls[3:]...))
		},
		"removed last entries": func(t *testing.T, d *store.Dir) {
			writeLines(t, d, readLines(t, d)[:3])
		},
		"emptied log": func(t *testing.T, d *store.Dir) {
			writeLines(t, d, nil)
		},
		"reordered entries": func(t *testing.T, d *store.Dir) {
			ls := readLines(t, d)
			ls[1], ls[2] = ls[2], ls[1]
			writeLines(t, d, ls)
		},
		"inserted entry": func(t *testing.T, d *store.Dir) {
			ls := readLines(t, d)
			writeLines(t, d, append(ls[:2:2], append([][]byte{ls[1]}, ls[2:]...)...))
		},
		"two lines after the head": func(t *testing.T, d *store.Dir) {
			ls := readLines(t, d)
			writeLines(t, d, append(ls, []byte("{}\n"), []byte("{}\n")))
		},
		"head with a wrong last hash": func(t *testing.T, d *store.Dir) {
			b, err := os.ReadFile(logPath(d))
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(headPath(d), encodeHead(5, int64(len(b)), [32]byte{1}), 0o600); err != nil {
				t.Fatal(err)
			}
		},
		"non-canonical head": func(t *testing.T, d *store.Dir) {
			b, err := os.ReadFile(headPath(d))
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(headPath(d), append([]byte(" "), b...), 0o600); err != nil {
				t.Fatal(err)
			}
		},
		"head removed": func(t *testing.T, d *store.Dir) {
			if err := os.Remove(headPath(d)); err != nil {
				t.Fatal(err)
			}
		},
		"log removed": func(t *testing.T, d *store.Dir) {
			if err := os.Remove(logPath(d)); err != nil {
				t.Fatal(err)
			}
		},
	}
	for name, tamper := range cases {
		t.Run(name, func(t *testing.T) {
			d, l := newLog(t)
			fill(t, l)
			tamper(t, d)
			if err := l.Verify(); err == nil {
				t.Error("Verify accepted the tampered log")
			}
			_, err := Open(d, testClock())
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("Open: %v, want ErrCorrupt", err)
			}
			if !strings.Contains(err.Error(), "security officer") {
				t.Errorf("error %q does not say what to do", err)
			}
		})
	}
}

// A consistent rewrite of log and head cannot be detected locally; an
// exported record detects it.
func TestRewriteDetectedByExportedRecord(t *testing.T) {
	d, l := newLog(t)
	fill(t, l)
	rec, _, err := l.Export("c1")
	if err != nil {
		t.Fatal(err)
	}
	r, err := VerifyExport(rec)
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Contains(r); err != nil {
		t.Fatalf("Contains of a fresh export: %v", err)
	}
	// Rewrite from scratch with entry 1 changed, hashes recomputed.
	if err := os.Remove(logPath(d)); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(headPath(d)); err != nil {
		t.Fatal(err)
	}
	if err := Init(d); err != nil {
		t.Fatal(err)
	}
	forged, err := Open(d, testClock())
	if err != nil {
		t.Fatal(err)
	}
	for i, e := range l.Entries() {
		if i == 1 {
			e.Actor = "Mallory"
		}
		if _, _, err := forged.Append(e); err != nil {
			t.Fatal(err)
		}
	}
	reopened, err := Open(d, testClock())
	if err != nil {
		t.Fatalf("the consistent rewrite should open (it is undetectable locally): %v", err)
	}
	if err := reopened.Contains(r); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("Contains after a rewrite: %v, want ErrCorrupt", err)
	}
	// And a log that lost the record's entries altogether.
	if err := os.Remove(logPath(d)); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(headPath(d)); err != nil {
		t.Fatal(err)
	}
	if err := Init(d); err != nil {
		t.Fatal(err)
	}
	empty, err := Open(d, testClock())
	if err != nil {
		t.Fatal(err)
	}
	if err := empty.Contains(r); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("Contains on an emptied log: %v, want ErrCorrupt", err)
	}
}

// A crash during Append leaves a (possibly torn) line after the committed
// head. Open discards it, whatever its length, and records the recovery.
func TestTornTailDiscarded(t *testing.T) {
	d, l := newLog(t)
	fill(t, l)
	committed, err := os.ReadFile(logPath(d))
	if err != nil {
		t.Fatal(err)
	}
	want := l.Entries()
	pending, err := json.Marshal(toWire(Entry{Seq: 5, Prev: EntrySum(want[4]), Time: t0, Ceremony: "c3", Step: "import", Outcome: OutcomeOK}))
	if err != nil {
		t.Fatal(err)
	}
	pending = append(pending, '\n')
	for n := 1; n <= len(pending); n++ {
		if err := os.WriteFile(logPath(d), append(append([]byte{}, committed...), pending[:n]...), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(headPath(d), encodeHead(5, int64(len(committed)), EntrySum(want[4])), 0o600); err != nil {
			t.Fatal(err)
		}
		l2, err := Open(d, testClock())
		if err != nil {
			t.Fatalf("torn tail of %d bytes: %v", n, err)
		}
		rec, ok := l2.Recovery()
		if !ok {
			t.Fatalf("torn tail of %d bytes: no recovery entry", n)
		}
		if rec.Step != StepRecovery || rec.Seq != 5 || rec.Hashes[0].Sum != sha256.Sum256(pending[:n]) {
			t.Fatalf("torn tail of %d bytes: recovery entry %+v", n, rec)
		}
		if diff := cmp.Diff(want, l2.Entries()[:5]); diff != "" {
			t.Fatalf("torn tail of %d bytes: committed entries changed (-want +got):\n%s", n, diff)
		}
		if err := l2.Verify(); err != nil {
			t.Fatalf("torn tail of %d bytes: %v", n, err)
		}
	}
}

// A failed Append breaks the Log; reopening discards the uncommitted line.
func TestAppendFailure(t *testing.T) {
	d, l := newLog(t)
	fill(t, l)
	d.SetTestOnlyHook(func(op store.Op, name string) error {
		if name == HeadFileName && op == store.OpRename {
			return errors.New("injected")
		}
		return nil
	})
	if _, _, err := l.Append(step("c3", "import", 9)); err == nil {
		t.Fatal("Append succeeded despite the injected failure")
	}
	d.SetTestOnlyHook(nil)
	if _, _, err := l.Append(step("c3", "import", 9)); !errors.Is(err, ErrBroken) {
		t.Fatalf("Append after a failure: %v, want ErrBroken", err)
	}
	l2, err := Open(d, testClock())
	if err != nil {
		t.Fatal(err)
	}
	rec, ok := l2.Recovery()
	if !ok || !strings.Contains(rec.Detail, "complete line: true") {
		t.Fatalf("recovery %+v, %v; want the discarded complete line noted", rec, ok)
	}
	if l2.Len() != 6 {
		t.Fatalf("%d entries after recovery, want 5 committed + 1 recovery", l2.Len())
	}
}

func TestExport(t *testing.T) {
	_, l := newLog(t)
	fill(t, l)
	b, sum, err := l.Export("c1")
	if err != nil {
		t.Fatal(err)
	}
	if sum != sha256.Sum256(b) {
		t.Fatal("Export's hash is not the SHA-256 of the record")
	}
	r, err := VerifyExport(b)
	if err != nil {
		t.Fatal(err)
	}
	all := l.Entries()
	// c1 runs from entry 0 to entry 3, including c2's entry 2.
	want := &Record{Ceremony: "c1", Entries: all[0:4], Head: EntrySum(all[3])}
	if diff := cmp.Diff(want, r); diff != "" {
		t.Errorf("record (-want +got):\n%s", diff)
	}
	b2, _, err := l.Export("c2")
	if err != nil {
		t.Fatal(err)
	}
	r2, err := VerifyExport(b2)
	if err != nil {
		t.Fatal(err)
	}
	if r2.Entries[0].Seq != 2 || len(r2.Entries) != 3 {
		t.Errorf("c2 record starts at seq %d with %d entries, want 2 and 3", r2.Entries[0].Seq, len(r2.Entries))
	}
	if _, _, err := l.Export("c9"); err == nil {
		t.Error("Export of an unknown ceremony succeeded")
	}
	if _, _, err := l.Export("bad id"); err == nil {
		t.Error("Export accepted an invalid ceremony id")
	}
}

func TestVerifyExportRefuses(t *testing.T) {
	_, l := newLog(t)
	fill(t, l)
	good, _, err := l.Export("c1")
	if err != nil {
		t.Fatal(err)
	}
	var w wireRecord
	if err := json.Unmarshal(good, &w); err != nil {
		t.Fatal(err)
	}
	// reencode alters a copy of the wire record and re-marshals it.
	reencode := func(alter func(*wireRecord)) []byte {
		c := w
		c.Entries = append([]wireEntry(nil), w.Entries...)
		alter(&c)
		b, err := json.Marshal(c)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	cases := map[string][]byte{
		"modified entry":     reencode(func(r *wireRecord) { r.Entries[1].Actor = "Mallory" }),
		"modified last":      reencode(func(r *wireRecord) { r.Entries[3].Outcome = "failed" }),
		"removed entry":      reencode(func(r *wireRecord) { r.Entries = append(r.Entries[:1], r.Entries[2:]...) }),
		"removed last":       reencode(func(r *wireRecord) { r.Entries = r.Entries[:3] }),
		"reordered":          reencode(func(r *wireRecord) { r.Entries[1], r.Entries[2] = r.Entries[2], r.Entries[1] }),
		"inserted":           reencode(func(r *wireRecord) { r.Entries = append(r.Entries[:2], r.Entries[1:]...) }),
		"no entries":         reencode(func(r *wireRecord) { r.Entries = nil }),
		"other ceremony":     reencode(func(r *wireRecord) { r.Ceremony = "c2" }),
		"other format":       reencode(func(r *wireRecord) { r.Format = "airlock-ceremony-record/2" }),
		"bad head":           reencode(func(r *wireRecord) { r.Head = strings.Repeat("0", 64) }),
		"null hashes":        bytes.Replace(good, []byte(`"hashes":[{`), []byte(`"hashes":null,"x":[{`), 1),
		"whitespace":         append([]byte(" "), good...),
		"trailing data":      append(append([]byte{}, good...), '\n'),
		"unknown field":      bytes.Replace(good, []byte(`{"format"`), []byte(`{"x":1,"format"`), 1),
		"duplicate field":    bytes.Replace(good, []byte(`{"format"`), []byte(`{"ceremony":"c2","format"`), 1),
		"too large":          bytes.Repeat([]byte(" "), MaxRecordSize+1),
		"escape in detail":   reencode(func(r *wireRecord) { r.Entries[0].Detail = "\x1b[2J" }),
		"non-UTC time":       reencode(func(r *wireRecord) { r.Entries[0].Time = "2026-03-01T13:00:00+01:00" }),
		"upper case hash":    reencode(func(r *wireRecord) { r.Entries[1].Prev = strings.ToUpper(r.Entries[1].Prev) }),
		"negative seq":       reencode(func(r *wireRecord) { r.Entries[0].Seq = -1 }),
		"HTML-unescaped <>":  bytes.Replace(good, []byte(`\u003ctag\u003e`), []byte(`<tag>`), 1),
		"not an object":      []byte(`[]`),
		"empty":              {},
		"string with NUL":    reencode(func(r *wireRecord) { r.Entries[0].Actor = "a\x00" }),
		"hash of wrong size": reencode(func(r *wireRecord) { r.Entries[0].Hashes = []wireHash{{Name: "p", SHA256: "00"}} }),
	}
	for name, b := range cases {
		t.Run(name, func(t *testing.T) {
			if _, err := VerifyExport(b); !errors.Is(err, ErrInvalidRecord) {
				t.Fatalf("VerifyExport: %v, want ErrInvalidRecord", err)
			}
		})
	}
	if _, err := VerifyExport(good); err != nil {
		t.Fatalf("the original record: %v", err)
	}
}

func FuzzParseLog(f *testing.F) {
	d := newDir(f)
	if err := Init(d); err != nil {
		f.Fatal(err)
	}
	l, err := Open(d, testClock())
	if err != nil {
		f.Fatal(err)
	}
	fill(f, l)
	b, err := os.ReadFile(logPath(d))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(b)
	f.Add(b[:len(b)/2])
	f.Add([]byte{})
	f.Add([]byte("{}\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		es, sums, err := ParseLog(b)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("error %v does not wrap ErrCorrupt", err)
			}
			return
		}
		var out []byte
		for i, e := range es {
			line, err := json.Marshal(toWire(e))
			if err != nil {
				t.Fatal(err)
			}
			if sha256.Sum256(line) != sums[i] || EntrySum(e) != sums[i] {
				t.Fatalf("entry %d: hash does not match its encoding", i)
			}
			out = append(append(out, line...), '\n')
		}
		if !bytes.Equal(out, b) {
			t.Fatalf("accepted log does not re-encode to its bytes")
		}
	})
}

func FuzzVerifyExport(f *testing.F) {
	d := newDir(f)
	if err := Init(d); err != nil {
		f.Fatal(err)
	}
	l, err := Open(d, testClock())
	if err != nil {
		f.Fatal(err)
	}
	fill(f, l)
	for _, c := range []string{"c1", "c2"} {
		b, _, err := l.Export(c)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte(`{"format":"airlock-ceremony-record/1","ceremony":"c","entries":[],"head":""}`))
	f.Add([]byte(`null`))
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := VerifyExport(b)
		if err != nil {
			if !errors.Is(err, ErrInvalidRecord) {
				t.Fatalf("error %v does not wrap ErrInvalidRecord", err)
			}
			return
		}
		again, err := encodeRecord(r.Ceremony, r.Entries, r.Head)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(again, b) {
			t.Fatal("accepted record does not re-encode to its bytes")
		}
	})
}

func BenchmarkAppend(b *testing.B) {
	_, l := newLog(b)
	i := 0
	for b.Loop() {
		i++
		if _, _, err := l.Append(step("bench", "sign", i)); err != nil {
			b.Fatal(err)
		}
	}
}
