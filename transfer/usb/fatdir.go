package usb

import (
	"encoding/binary"
	"fmt"
	"strings"
	"time"
	"unicode/utf16"
)

// FAT directory entries, as this package reads them when looking for a free
// place and for names already taken, and as it builds them for the response
// folder.

const (
	dirEntrySize = 32
	attrReadOnly = 0x01
	attrHidden   = 0x02
	attrSystem   = 0x04
	attrVolumeID = 0x08
	attrDir      = 0x10
	attrArchive  = 0x20
	attrLFN      = attrReadOnly | attrHidden | attrSystem | attrVolumeID

	lfnChars   = 13 // UTF-16 code units in one long-name entry
	maxLFNSeq  = 20 // 255 characters
	maxNumTail = 999999

	// MaxDirBytes caps a directory this package reads: the FAT
	// specification's 65536 entries.
	MaxDirBytes = 65536 * dirEntrySize
)

// dirScan is what scanDir learned from a directory's entries.
type dirScan struct {
	// taken holds every name in use, long and short ("NAME.EXT"), folded
	// to lower case.
	taken map[string]bool
	// short holds the raw 11-byte short names in use.
	short map[string]bool
	// end is the index of the first entry marked as the end of the
	// directory (first byte 0), or the number of entries.
	end int
	// entries is the number of whole entries in the directory.
	entries int
}

// scanDir reads the directory d (its clusters or sectors, in order). It
// never fails: entries it cannot make sense of still count as taken
// places, and any name it can read counts as taken.
func scanDir(d []byte) *dirScan {
	s := &dirScan{taken: map[string]bool{}, short: map[string]bool{}}
	s.entries = len(d) / dirEntrySize
	s.end = s.entries
	var parts [maxLFNSeq][lfnChars]uint16
	want := 0      // the sequence number the next long-name entry must have, 0 for none
	var count int  // entries of the long name being read
	var sum byte   // its checksum
	broken := true // no long name being read
	for i := 0; i < s.entries; i++ {
		e := d[i*dirEntrySize : (i+1)*dirEntrySize]
		switch {
		case e[0] == 0:
			s.end = i
			return s
		case e[0] == 0xE5:
			broken = true
			continue
		case e[11]&0x3F == attrLFN:
			seq := int(e[0] & 0x1F)
			if e[0]&0x40 != 0 {
				if seq < 1 || seq > maxLFNSeq {
					broken = true
					continue
				}
				broken, count, sum, want = false, seq, e[13], seq
			}
			if broken || seq != want || e[13] != sum {
				broken = true
				continue
			}
			p := &parts[seq-1]
			k := 0
			for _, r := range [][2]int{{1, 11}, {14, 26}, {28, 32}} {
				for j := r[0]; j < r[1]; j += 2 {
					p[k] = binary.LittleEndian.Uint16(e[j:])
					k++
				}
			}
			want--
			continue
		}
		// A short entry (file, folder or volume label).
		if e[11]&attrVolumeID == 0 {
			raw := string(e[0:11])
			if e[0] == 0x05 {
				raw = "\xE5" + raw[1:]
			}
			s.short[raw] = true
			s.taken[strings.ToLower(shortDisplay(raw))] = true
			if !broken && want == 0 && count > 0 {
				var u []uint16
			collect:
				for n := 0; n < count; n++ {
					for _, c := range parts[n] {
						if c == 0 {
							break collect
						}
						u = append(u, c)
					}
				}
				// A long name whose checksum does not match is shown by
				// most systems as its short name; it still counts as taken.
				s.taken[strings.ToLower(string(utf16.Decode(u)))] = true
			}
		}
		broken = true
	}
	return s
}

// shortDisplay renders an 11-byte short name as NAME.EXT.
func shortDisplay(raw string) string {
	base := strings.TrimRight(raw[:8], " ")
	ext := strings.TrimRight(raw[8:11], " ")
	if ext == "" {
		return base
	}
	return base + "." + ext
}

// freeRun returns the index of the first run of k free entries (deleted or
// past the end) that lies inside one sector of sectorSize bytes, or -1.
func (s *dirScan) freeRun(d []byte, k int, sectorSize int) int {
	per := sectorSize / dirEntrySize
	if k < 1 || per < k {
		return -1
	}
	run := 0
	for i := 0; i < s.entries; i++ {
		if i%per == 0 {
			run = 0
		}
		if i >= s.end || d[i*dirEntrySize] == 0xE5 {
			run++
		} else {
			run = 0
		}
		if run == k {
			return i - k + 1
		}
	}
	return -1
}

// taken reports whether name is in use in the directory, ignoring case.
func (s *dirScan) has(name string) bool { return s.taken[strings.ToLower(name)] }

// shortName returns the 11-byte short name for name and whether the name
// also needs long-name entries. A name that is its own upper-case 8.3
// form is stored as is; any other gets a numeric tail (NAME~1.EXT) not
// in used.
func shortName(name string, used map[string]bool) (raw string, lfn bool, err error) {
	if !fatName(name) {
		return "", false, fmt.Errorf("%q cannot be a FAT name: use letters, digits, '.', '-' and '_', not ending in '.'", name)
	}
	up := strings.ToUpper(name)
	base, ext := up, ""
	if i := strings.LastIndexByte(up, '.'); i > 0 {
		base, ext = up[:i], up[i+1:]
	}
	if up == name && len(base) >= 1 && len(base) <= 8 && len(ext) <= 3 && !strings.Contains(base, ".") && !strings.HasPrefix(name, ".") {
		raw = fmt.Sprintf("%-8s%-3s", base, ext)
		if !used[raw] {
			return raw, false, nil
		}
	}
	base = strings.ReplaceAll(strings.TrimLeft(base, "."), ".", "")
	if base == "" {
		base = "_"
	}
	if len(ext) > 3 {
		ext = ext[:3]
	}
	for n := 1; n <= maxNumTail; n++ {
		tail := fmt.Sprintf("~%d", n)
		b := base
		if len(b)+len(tail) > 8 {
			b = b[:8-len(tail)]
		}
		raw = fmt.Sprintf("%-8s%-3s", b+tail, ext)
		if !used[raw] {
			return raw, true, nil
		}
	}
	return "", false, fmt.Errorf("no free short name for %s: the folder holds too many similar names, use another stick", name)
}

// fatName reports whether name is kept as it is on a FAT filesystem: a
// plain name (letters, digits, '.', '-', '_') that does not end in '.'
// (FAT drops trailing dots, so "a." would be stored, and found, as "a").
func fatName(name string) bool {
	return plainName(name) && !strings.HasSuffix(name, ".")
}

// lfnChecksum is the checksum long-name entries carry of their short name.
func lfnChecksum(raw string) byte {
	var sum byte
	for i := 0; i < 11; i++ {
		sum = (sum&1)<<7 + sum>>1 + raw[i]
	}
	return sum
}

// fatTime encodes t as a FAT date and time (from 1980 on).
func fatTime(t time.Time) (date, tm uint16) {
	if t.Year() < 1980 {
		return 1<<5 | 1, 0
	}
	if t.Year() > 2107 {
		t = time.Date(2107, 12, 31, 23, 59, 58, 0, t.Location())
	}
	date = uint16(t.Year()-1980)<<9 | uint16(t.Month())<<5 | uint16(t.Day())
	tm = uint16(t.Hour())<<11 | uint16(t.Minute())<<5 | uint16(t.Second()/2)
	return date, tm
}

// dirEntries builds the entries of one name: its long-name entries (if
// lfn) and its short entry.
func dirEntries(name, raw string, lfn bool, attr byte, cluster uint32, size uint32, now time.Time) []byte {
	var out []byte
	if lfn {
		u := utf16.Encode([]rune(name))
		n := (len(u) + lfnChars - 1) / lfnChars
		padded := make([]uint16, n*lfnChars)
		for i := range padded {
			switch {
			case i < len(u):
				padded[i] = u[i]
			case i == len(u):
				padded[i] = 0
			default:
				padded[i] = 0xFFFF
			}
		}
		sum := lfnChecksum(raw)
		for seq := n; seq >= 1; seq-- {
			e := make([]byte, dirEntrySize)
			e[0] = byte(seq)
			if seq == n {
				e[0] |= 0x40
			}
			e[11] = attrLFN
			e[13] = sum
			k := (seq - 1) * lfnChars
			for _, r := range [][2]int{{1, 11}, {14, 26}, {28, 32}} {
				for j := r[0]; j < r[1]; j += 2 {
					binary.LittleEndian.PutUint16(e[j:], padded[k])
					k++
				}
			}
			out = append(out, e...)
		}
	}
	e := make([]byte, dirEntrySize)
	copy(e, raw)
	if e[0] == 0xE5 {
		e[0] = 0x05
	}
	e[11] = attr
	date, tm := fatTime(now)
	binary.LittleEndian.PutUint16(e[14:], tm)
	binary.LittleEndian.PutUint16(e[16:], date)
	binary.LittleEndian.PutUint16(e[18:], date)
	binary.LittleEndian.PutUint16(e[20:], uint16(cluster>>16))
	binary.LittleEndian.PutUint16(e[22:], tm)
	binary.LittleEndian.PutUint16(e[24:], date)
	binary.LittleEndian.PutUint16(e[26:], uint16(cluster))
	binary.LittleEndian.PutUint32(e[28:], size)
	return append(out, e...)
}
