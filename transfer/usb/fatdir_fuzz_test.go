package usb

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
	"time"
)

// FuzzRootPlace scans a root folder as the writer does (names in use, a
// free run of entries in one sector) and places a folder's entries in it
// with the writer's own writes, checking after every write that no name
// already there is lost and nothing in use outside the run changes, and at
// the end that the new name is found.
func FuzzRootPlace(f *testing.F) {
	now := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	var built []byte
	for _, n := range []string{"notes.txt", "README", "release-v1.2.3.tgz", "airlock-response-1"} {
		raw, lfn, _ := shortName(n, nil)
		built = append(built, dirEntries(n, raw, lfn, attrArchive, 3, 7, now)...)
	}
	holes := bytes.Clone(built)
	holes[0], holes[32] = 0xE5, 0xE5
	garbage := append(bytes.Clone(built), bytes.Repeat([]byte{0}, 32)...)
	garbage = append(garbage, bytes.Repeat([]byte{0x41}, 600)...)
	full := bytes.Repeat(built, 512/len(built)+2)
	for _, d := range [][]byte{make([]byte, 1024), built, holes, garbage, full, randomBytes(2048)} {
		f.Add(d, "airlock-response-4f2a9c")
		f.Add(d, "NOTES.TXT")
	}
	f.Fuzz(func(t *testing.T, d []byte, name string) {
		if len(d) > 8192 {
			d = d[:8192]
		}
		d = d[:len(d)/512*512]
		if !fatName(name) || len(name) > maxNameLen {
			name = "airlock-response-1"
		}
		scan := scanDir(d)
		if scan.end < 0 || scan.end > scan.entries || scan.entries != len(d)/dirEntrySize {
			t.Fatalf("end %d of %d entries", scan.end, scan.entries)
		}
		if scan.has(name) {
			return
		}
		raw, lfn, err := shortName(name, scan.short)
		if err != nil {
			if strings.Contains(err.Error(), "\n") {
				t.Fatalf("error %q is not one line", err)
			}
			return
		}
		if scan.short[raw] || len(raw) != 11 {
			t.Fatalf("short name %q is in use or malformed", raw)
		}
		entries := dirEntries(name, raw, lfn, attrDir, 5, 0, now)
		k := len(entries) / dirEntrySize
		slot := scan.freeRun(d, k, 512)
		if slot < 0 {
			return
		}
		for i := slot; i < slot+k; i++ {
			if i < scan.end && d[i*dirEntrySize] != 0xE5 {
				t.Fatalf("run at %d holds entry %d in use", slot, i)
			}
			if i/16 != slot/16 {
				t.Fatalf("run at %d of %d entries crosses a sector", slot, k)
			}
		}
		v := &fatVolume{bps: 512, g: &fatGeometry{kind: kindFAT16}}
		root := bytes.Clone(d)
		prep, entry := v.placeEntries(root, nil, scan.end, slot, entries)
		buf := bytes.Clone(d)
		for i, w := range append(prep, entry) {
			if w.off%512 != 0 || len(w.b) != 512 || w.off+512 > int64(len(buf)) {
				t.Fatalf("write %d at %d of %d bytes", i, w.off, len(w.b))
			}
			copy(buf[w.off:], w.b)
			after := scanDir(buf)
			for n := range scan.taken {
				if !after.taken[n] {
					t.Fatalf("after write %d of %d the name %q is gone", i+1, len(prep)+1, n)
				}
			}
			for e := 0; e < scan.end; e++ {
				if (e < slot || e >= slot+k) && d[e*dirEntrySize] != 0xE5 && !bytes.Equal(d[e*32:e*32+32], buf[e*32:e*32+32]) {
					t.Fatalf("after write %d entry %d in use changed", i+1, e)
				}
			}
		}
		if !bytes.Equal(buf, root) {
			t.Fatal("the writes do not give the root folder planned")
		}
		if !scanDir(buf).has(name) || !scanDir(buf).has(shortDisplay(raw)) {
			t.Fatalf("%s (%q) is not found after it was placed", name, raw)
		}
	})
}

// memMedium is a medium held in memory.
type memMedium struct{ b []byte }

func (m *memMedium) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 || off > int64(len(m.b)) {
		return 0, io.EOF
	}
	n := copy(p, m.b[off:])
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

func (m *memMedium) WriteAt(p []byte, off int64) (int, error) {
	if off < 0 || off+int64(len(p)) > int64(len(m.b)) {
		return 0, errors.New("write past the end of the medium")
	}
	return copy(m.b[off:], p), nil
}

func (m *memMedium) Sync() error { return nil }

// FuzzPlanImage runs the writer on damaged and hostile FAT images: it must
// refuse with a one-line error before writing anything, or write only
// inside the filesystem and past its boot sector, without panicking.
func FuzzPlanImage(f *testing.F) {
	for _, seed := range smallImages(f) {
		if len(seed) <= 256<<10 {
			f.Add(seed)
		}
	}
	files := []ResponseFile{{Name: "response.json", Data: []byte(`{"x":1}`)}, {Name: "record.json", Data: bytes.Repeat([]byte("r"), 3000)}}
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) < 512 || len(data) > 1<<20 {
			return
		}
		g, err := parseFAT(data)
		if err != nil {
			return
		}
		m := &memMedium{b: bytes.Clone(data)}
		if checkFAT(m, 0, int64(len(data)), g) != nil {
			return
		}
		v, err := openFATVolume(m, 0, g, data[:512])
		if err != nil {
			return
		}
		p, err := v.planResponse("airlock-response-1", files, time.Now())
		if err != nil {
			if strings.Contains(err.Error(), "\n") {
				t.Fatalf("error %q is not one line", err)
			}
			if !bytes.Equal(m.b, data) {
				t.Fatal("planning wrote to the medium")
			}
			return
		}
		if err := p.run(m); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(m.b[:g.bytesPerSector], data[:g.bytesPerSector]) || !bytes.Equal(m.b[g.filesystemLength:], data[g.filesystemLength:]) {
			t.Fatal("the writer wrote outside the filesystem")
		}
	})
}
