package ledger

import (
	"bytes"
	"crypto/sha256"
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

func payload(s string) [32]byte { return sha256.Sum256([]byte(s)) }

func newDir(t testing.TB) *store.Dir {
	t.Helper()
	d, err := store.OpenDir(filepath.Join(t.TempDir(), "state"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

func newLedger(t testing.TB) (*store.Dir, *Ledger) {
	t.Helper()
	d := newDir(t)
	if err := Init(d); err != nil {
		t.Fatal(err)
	}
	l, err := Open(d)
	if err != nil {
		t.Fatal(err)
	}
	return d, l
}

type signing struct {
	role    string
	version int64
	payload string
}

func TestRules(t *testing.T) {
	tests := []struct {
		name    string
		before  []signing
		try     signing
		wantErr error // nil: allowed
		wantMsg string
	}{
		{name: "first signing of a role", try: signing{"targets", 1, "a"}},
		{name: "higher version", before: []signing{{"targets", 1, "a"}}, try: signing{"targets", 2, "b"}},
		{name: "gap in versions is fine", before: []signing{{"targets", 1, "a"}}, try: signing{"targets", 9, "b"}},
		{name: "same version same payload is an idempotent retry", before: []signing{{"targets", 3, "a"}}, try: signing{"targets", 3, "a"}},
		{name: "same version different payload", before: []signing{{"targets", 3, "a"}}, try: signing{"targets", 3, "b"},
			wantErr: ErrEquivocation, wantMsg: "equivocation: role targets version 3 was already signed"},
		{name: "lower version", before: []signing{{"targets", 7, "a"}}, try: signing{"targets", 5, "a"},
			wantErr: ErrRollback, wantMsg: "rollback: role targets version 5 is below version 7 already signed"},
		{name: "old version with its own old payload", before: []signing{{"targets", 4, "a"}, {"targets", 5, "b"}}, try: signing{"targets", 4, "a"},
			wantErr: ErrRollback},
		{name: "roles are independent", before: []signing{{"targets", 7, "a"}}, try: signing{"projects-left-pad", 1, "b"}},
		{name: "zero version", try: signing{"targets", 0, "a"}, wantMsg: "not positive"},
		{name: "negative version", try: signing{"targets", -1, "a"}, wantMsg: "not positive"},
		{name: "empty role", try: signing{"", 1, "a"}, wantMsg: "empty role"},
		{name: "control character in role", try: signing{"tar\x1bgets", 1, "a"}, wantMsg: "control"},
		{name: "bidi override in role", try: signing{"tar\u202egets", 1, "a"}, wantMsg: "control or format"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, l := newLedger(t)
			for _, s := range tt.before {
				if err := l.Record(s.role, s.version, payload(s.payload), "c-before", t0); err != nil {
					t.Fatal(err)
				}
			}
			check := func(l *Ledger, what string) {
				t.Helper()
				for _, op := range []string{"Check", "Record"} {
					var err error
					if op == "Check" {
						err = l.Check(tt.try.role, tt.try.version, payload(tt.try.payload))
					} else {
						err = l.Record(tt.try.role, tt.try.version, payload(tt.try.payload), "c-try", t0.Add(time.Hour))
					}
					wantFail := tt.wantErr != nil || tt.wantMsg != ""
					switch {
					case !wantFail && err != nil:
						t.Fatalf("%s %s: %v, want allowed", what, op, err)
					case wantFail && err == nil:
						t.Fatalf("%s %s: allowed, want refused", what, op)
					case tt.wantErr != nil && !errors.Is(err, tt.wantErr):
						t.Fatalf("%s %s: %v, want %v", what, op, err, tt.wantErr)
					case tt.wantMsg != "" && !strings.Contains(err.Error(), tt.wantMsg):
						t.Fatalf("%s %s: %q does not say %q", what, op, err, tt.wantMsg)
					}
				}
			}
			check(l, "in memory")
			// The rule holds after a reopen too: it comes from disk.
			l2, err := Open(d)
			if err != nil {
				t.Fatal(err)
			}
			if tt.wantErr != nil {
				check(l2, "reopened")
			}
		})
	}
}

func TestRecordIsDurableAndKeepsHistory(t *testing.T) {
	d, l := newLedger(t)
	steps := []signing{{"targets", 1, "a"}, {"root", 2, "r"}, {"targets", 2, "b"}, {"targets", 2, "b"}}
	for i, s := range steps {
		if err := l.Record(s.role, s.version, payload(s.payload), "cer-"+string(rune('0'+i)), t0.Add(time.Duration(i)*time.Minute)); err != nil {
			t.Fatal(err)
		}
	}
	l2, err := Open(d)
	if err != nil {
		t.Fatal(err)
	}
	want := []Entry{
		{Role: "targets", Version: 1, Payload: payload("a"), Time: t0, Ceremony: "cer-0"},
		{Role: "targets", Version: 2, Payload: payload("b"), Time: t0.Add(2 * time.Minute), Ceremony: "cer-2"},
		{Role: "targets", Version: 2, Payload: payload("b"), Time: t0.Add(3 * time.Minute), Ceremony: "cer-3"},
	}
	if diff := cmp.Diff(want, l2.History("targets")); diff != "" {
		t.Errorf("history (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"root", "targets"}, l2.Roles()); diff != "" {
		t.Errorf("roles (-want +got):\n%s", diff)
	}
	v, p, ok := l2.Highest("targets")
	if !ok || v != 2 || p != payload("b") {
		t.Errorf("Highest(targets) = %d, %x, %v; want 2, payload b, true", v, p, ok)
	}
	if _, _, ok := l2.Highest("snapshot"); ok {
		t.Error("Highest reports a role never signed")
	}
}

func TestRecordRefusesBadCeremonyAndTime(t *testing.T) {
	_, l := newLedger(t)
	for _, id := range []string{"", "has space", "nl\n", strings.Repeat("a", MaxCeremonyIDLen+1)} {
		if err := l.Record("targets", 1, payload("a"), id, t0); err == nil {
			t.Errorf("Record accepted ceremony id %q", id)
		}
	}
	if err := l.Record("targets", 1, payload("a"), "c1", time.Time{}); err == nil {
		t.Error("Record accepted a zero time")
	}
	if len(l.History("")) != 0 {
		t.Error("refused records reached the history")
	}
}

func TestOpenRequiresInit(t *testing.T) {
	d := newDir(t)
	if _, err := Open(d); !errors.Is(err, ErrNotInitialised) {
		t.Fatalf("Open of an empty directory: %v, want ErrNotInitialised", err)
	}
	if err := Init(d); err != nil {
		t.Fatal(err)
	}
	l, err := Open(d)
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Record("targets", 3, payload("a"), "c1", t0); err != nil {
		t.Fatal(err)
	}
	if err := Init(d); err == nil {
		t.Fatal("Init overwrote an existing ledger")
	}
	l2, err := Open(d)
	if err != nil {
		t.Fatal(err)
	}
	if v, _, _ := l2.Highest("targets"); v != 3 {
		t.Fatalf("after refused Init, highest targets version %d, want 3", v)
	}
}

// A ledger file that is damaged or altered refuses all signing.
func TestOpenFailsClosed(t *testing.T) {
	d, l := newLedger(t)
	if err := l.Record("targets", 4, payload("a"), "c1", t0); err != nil {
		t.Fatal(err)
	}
	if err := l.Record("targets", 5, payload("b"), "c2", t0); err != nil {
		t.Fatal(err)
	}
	good, err := os.ReadFile(filepath.Join(d.Path(), FileName))
	if err != nil {
		t.Fatal(err)
	}
	// forge re-encodes entries with a valid checksum, as a careful editor would.
	forge := func(es []Entry) []byte {
		b, err := encode(&State{Entries: es})
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	// forgeWire alters one wire entry and re-encodes it with a valid checksum.
	forgeWire := func(alter func(*wireEntry)) []byte {
		w := toWire(Entry{Role: "targets", Version: 4, Payload: payload("a"), Time: t0, Ceremony: "c1"})
		alter(&w)
		b, err := encodeWire(wireBody{Format: Format, Entries: []wireEntry{w}})
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	e4 := Entry{Role: "targets", Version: 4, Payload: payload("a"), Time: t0, Ceremony: "c1"}
	e5 := Entry{Role: "targets", Version: 5, Payload: payload("b"), Time: t0, Ceremony: "c2"}
	cases := map[string][]byte{
		"empty file":          {},
		"truncated":           good[:len(good)/2],
		"flipped payload bit": bytes.Replace(good, []byte(`"version":5`), []byte(`"version":6`), 1),
		"trailing data":       append(append([]byte{}, good...), "{}"...),
		"extra whitespace":    bytes.Replace(good, []byte(`,"checksum"`), []byte(`, "checksum"`), 1),
		"unknown field":       bytes.Replace(good, []byte(`{"format"`), []byte(`{"extra":1,"format"`), 1),
		"other format":        bytes.ReplaceAll(good, []byte(Format), []byte("airlock-ledger/9")),
		"forged rollback":     forge([]Entry{e5, e4}),
		"forged equivocation": forge([]Entry{e4, {Role: "targets", Version: 4, Payload: payload("x"), Time: t0, Ceremony: "c9"}}),
		"forged bad version":  forge([]Entry{{Role: "targets", Version: 0, Payload: payload("a"), Time: t0, Ceremony: "c1"}}),
		"forged bad ceremony": forge([]Entry{{Role: "targets", Version: 1, Payload: payload("a"), Time: t0, Ceremony: "a b"}}),
		"forged bad role":     forge([]Entry{{Role: "t\x00", Version: 1, Payload: payload("a"), Time: t0, Ceremony: "c1"}}),
		"time with offset":    forgeWire(func(w *wireEntry) { w.Time = "2026-03-01T13:00:00+01:00" }),
		"uppercase hex":       forgeWire(func(w *wireEntry) { w.Payload = strings.ToUpper(w.Payload) }),
		"short payload":       forgeWire(func(w *wireEntry) { w.Payload = w.Payload[:62] }),
		"too large":           bytes.Repeat([]byte(" "), MaxFileSize+1),
	}
	for name, content := range cases {
		t.Run(name, func(t *testing.T) {
			if err := os.WriteFile(filepath.Join(d.Path(), FileName), content, 0o600); err != nil {
				t.Fatal(err)
			}
			_, err := Open(d)
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("Open: %v, want ErrCorrupt", err)
			}
			if !strings.Contains(err.Error(), "signing is refused") || !strings.Contains(err.Error(), "restore") {
				t.Errorf("error %q does not tell the officer what to do", err)
			}
		})
	}
	// The sanity check of the cases above: the original opens.
	if err := os.WriteFile(filepath.Join(d.Path(), FileName), good, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(d); err != nil {
		t.Fatalf("original ledger: %v", err)
	}
}

// After a failed write the on-disk state is unknown: the Ledger refuses
// everything until reopened, and the reopened one reflects the disk.
func TestWriteFailureBreaksLedger(t *testing.T) {
	for _, tc := range []struct {
		op          store.Op
		wantOnDisk  bool
		description string
	}{
		{store.OpSync, false, "fails before the rename"},
		{store.OpRename, false, "fails at the rename"},
		{store.OpSyncDir, true, "fails after the rename"},
	} {
		t.Run(string(tc.op), func(t *testing.T) {
			d, l := newLedger(t)
			if err := l.Record("targets", 1, payload("a"), "c1", t0); err != nil {
				t.Fatal(err)
			}
			d.SetTestOnlyHook(func(op store.Op, _ string) error {
				if op == tc.op {
					return errors.New("injected")
				}
				return nil
			})
			if err := l.Record("targets", 2, payload("b"), "c2", t0); err == nil {
				t.Fatal("Record succeeded despite the injected failure")
			}
			d.SetTestOnlyHook(nil)
			if err := l.Check("targets", 3, payload("c")); !errors.Is(err, ErrBroken) {
				t.Fatalf("Check after a failed write: %v, want ErrBroken", err)
			}
			if err := l.Record("targets", 3, payload("c"), "c3", t0); !errors.Is(err, ErrBroken) {
				t.Fatalf("Record after a failed write: %v, want ErrBroken", err)
			}
			l2, err := Open(d)
			if err != nil {
				t.Fatal(err)
			}
			v, _, _ := l2.Highest("targets")
			if got := v == 2; got != tc.wantOnDisk {
				t.Fatalf("reopened highest version %d; entry on disk = %v, want %v", v, got, tc.wantOnDisk)
			}
			if tc.wantOnDisk {
				if err := l2.Check("targets", 2, payload("x")); !errors.Is(err, ErrEquivocation) {
					t.Fatalf("version that reached disk is not protected: %v", err)
				}
			}
		})
	}
}

func FuzzParse(f *testing.F) {
	e := []Entry{
		{Role: "targets", Version: 4, Payload: payload("a"), Time: t0, Ceremony: "c1"},
		{Role: "root", Version: 2, Payload: payload("r"), Time: t0.Add(time.Nanosecond), Ceremony: "c2"},
		{Role: "targets", Version: 4, Payload: payload("a"), Time: t0, Ceremony: "c3"},
	}
	for i := 0; i <= len(e); i++ {
		b, err := encode(&State{Entries: e[:i]})
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte(`{"format":"airlock-ledger/1","entries":null,"checksum":""}`))
	f.Add([]byte(`{}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		es, err := ParseState(b)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("Parse error %v does not wrap ErrCorrupt", err)
			}
			return
		}
		// Anything accepted re-encodes to exactly the same bytes.
		again, err := encode(es)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(again, b) {
			t.Fatalf("accepted non-canonical ledger:\n%q\nre-encodes to\n%q", b, again)
		}
	})
}

func BenchmarkRecord(b *testing.B) {
	_, l := newLedger(b)
	v := int64(0)
	for b.Loop() {
		v++
		if err := l.Record("targets", v, payload("a"), "bench", t0); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkRecordLargeHistory measures Record with 1000 signings already in
// the ledger, since every Record rewrites the whole file.
func BenchmarkRecordLargeHistory(b *testing.B) {
	_, l := newLedger(b)
	v := int64(0)
	for range 1000 {
		v++
		e := Entry{Role: "targets", Version: v, Payload: payload("a"), Time: t0, Ceremony: "bench"}
		l.entries = append(l.entries, e)
	}
	l.heads["targets"] = head{v, payload("a")}
	for b.Loop() {
		v++
		if err := l.Record("targets", v, payload("a"), "bench", t0); err != nil {
			b.Fatal(err)
		}
	}
}
