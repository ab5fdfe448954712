package usb

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// Caps on the ISO9660 structures checkISO accepts. go-diskfs allocates
// whatever a size field on the medium says (4 GiB for a hostile path table,
// directory or Rock Ridge continuation area) and follows continuation areas
// until they end, so each is checked first.
const (
	MaxISODescriptors = 64       // volume descriptors before the terminator
	MaxISOPathTable   = 1 << 20  // bytes of one path table
	MaxISODirBytes    = 4 << 20  // bytes of one directory
	MaxISODirs        = 10000    // directories in one tree
	MaxISOContinue    = 16       // Rock Ridge continuation areas per record
	MaxISOTreeBytes   = 64 << 20 // directory bytes read to check one tree
)

const isoBlock = 2048

// checkISO checks the ISO9660 filesystem at the start of r (size bytes)
// before go-diskfs reads it: the descriptors end, path tables, directories
// and continuation areas are within their caps and on the medium, and each
// directory tree is bounded.
func checkISO(r io.ReaderAt, size int64) error {
	within := func(off, n int64) bool { return off >= 0 && n >= 0 && off <= size && n <= size-off }
	vd := make([]byte, isoBlock)
	for i := int64(0); ; i++ {
		if i == MaxISODescriptors {
			return fmt.Errorf("ISO9660: no volume descriptor terminator in the first %d descriptors: the image is damaged", MaxISODescriptors)
		}
		off := 16*isoBlock + i*isoBlock
		if !within(off, isoBlock) {
			return errors.New("ISO9660: the volume descriptors run past the end of the medium: the image is truncated")
		}
		if _, err := r.ReadAt(vd, off); err != nil {
			return fmt.Errorf("ISO9660: read volume descriptor %d: %w", i, err)
		}
		if string(vd[1:6]) != "CD001" {
			return fmt.Errorf("ISO9660: volume descriptor %d has no CD001 signature: the image is damaged", i)
		}
		switch vd[0] {
		case 255:
			return nil
		case 1, 2:
		default:
			continue
		}
		if lbs := binary.LittleEndian.Uint16(vd[128:]); lbs != isoBlock {
			return fmt.Errorf("ISO9660: logical block size %d is not %d", lbs, isoBlock)
		}
		ptSize := int64(binary.LittleEndian.Uint32(vd[132:]))
		ptLoc := int64(binary.LittleEndian.Uint32(vd[140:])) * isoBlock
		if ptSize > MaxISOPathTable {
			return fmt.Errorf("ISO9660: path table of %s is over the %s cap", formatSize(ptSize), formatSize(MaxISOPathTable))
		}
		if !within(ptLoc, ptSize) {
			return errors.New("ISO9660: the path table lies past the end of the medium: the image is truncated")
		}
		pt := make([]byte, ptSize)
		if _, err := r.ReadAt(pt, ptLoc); err != nil {
			return fmt.Errorf("ISO9660: read the path table: %w", err)
		}
		// go-diskfs reads a listed directory's size from its "." record.
		for p := 0; p+8 <= len(pt); {
			nameLen := int(pt[p])
			loc := int64(binary.LittleEndian.Uint32(pt[p+2:])) * isoBlock
			var dot [14]byte
			if !within(loc, int64(len(dot))) {
				return errors.New("ISO9660: a directory in the path table lies past the end of the medium: the image is truncated")
			}
			if _, err := r.ReadAt(dot[:], loc); err != nil {
				return fmt.Errorf("ISO9660: read a directory: %w", err)
			}
			if err := checkISODir(within, loc, int64(binary.LittleEndian.Uint32(dot[10:]))); err != nil {
				return err
			}
			p += 8 + nameLen + nameLen%2
		}
		root := vd[156 : 156+34]
		if err := walkISO(r, within, int64(binary.LittleEndian.Uint32(root[2:])), int64(binary.LittleEndian.Uint32(root[10:]))); err != nil {
			return err
		}
	}
}

func checkISODir(within func(off, n int64) bool, off, n int64) error {
	if n > MaxISODirBytes {
		return fmt.Errorf("ISO9660: a directory of %s is over the %s cap", formatSize(n), formatSize(MaxISODirBytes))
	}
	if !within(off, n) {
		return errors.New("ISO9660: a directory lies past the end of the medium: the image is truncated")
	}
	return nil
}

// walkISO checks the directory tree whose root directory is at block loc
// and holds n bytes.
func walkISO(r io.ReaderAt, within func(off, n int64) bool, loc, n int64) error {
	type dir struct{ off, n int64 }
	queue := []dir{{loc * isoBlock, n}}
	seen := map[int64]bool{}
	var total int64
	for len(queue) > 0 {
		d := queue[0]
		queue = queue[1:]
		if seen[d.off] {
			continue
		}
		seen[d.off] = true
		if len(seen) > MaxISODirs {
			return fmt.Errorf("ISO9660: more than %d directories (MaxISODirs)", MaxISODirs)
		}
		if err := checkISODir(within, d.off, d.n); err != nil {
			return err
		}
		if total += d.n; total > MaxISOTreeBytes {
			return fmt.Errorf("ISO9660: directories hold more than %s (MaxISOTreeBytes)", formatSize(MaxISOTreeBytes))
		}
		b := make([]byte, d.n)
		if _, err := r.ReadAt(b, d.off); err != nil {
			return fmt.Errorf("ISO9660: read a directory: %w", err)
		}
		for p := 0; p < len(b); {
			l := int(b[p])
			if l == 0 {
				p = (p/isoBlock + 1) * isoBlock
				continue
			}
			if l < 34 || p+l > len(b) || 33+int(b[p+32]) > l {
				return errors.New("ISO9660: malformed directory record: the image is damaged")
			}
			rec := b[p : p+l]
			p += l
			nameLen := int(rec[32])
			eoff := int64(binary.LittleEndian.Uint32(rec[2:])) * isoBlock
			esize := int64(binary.LittleEndian.Uint32(rec[10:]))
			su := 33 + nameLen + (nameLen+1)%2
			if su < l {
				if err := checkISOContinue(r, within, rec[su:]); err != nil {
					return err
				}
			}
			if nameLen == 1 && rec[33] <= 1 {
				continue // "." and ".."
			}
			if !within(eoff, esize) {
				return errors.New("ISO9660: an entry's data lies past the end of the medium: the image is truncated")
			}
			if rec[25]&2 != 0 {
				if err := checkISODir(within, eoff, esize); err != nil {
					return err
				}
				queue = append(queue, dir{eoff, esize})
			}
		}
	}
	return nil
}

// checkISOContinue follows the Rock Ridge continuation areas (SUSP "CE"
// entries) of one record's system use area su.
func checkISOContinue(r io.ReaderAt, within func(off, n int64) bool, su []byte) error {
	for hop := 0; ; hop++ {
		var next []byte
		for p := 0; p+4 <= len(su); {
			l := int(su[p+2])
			if l < 4 || p+l > len(su) {
				break
			}
			e := su[p : p+l]
			p += l
			if e[0] != 'C' || e[1] != 'E' || l < 28 {
				continue
			}
			if hop == MaxISOContinue {
				return fmt.Errorf("ISO9660: more than %d Rock Ridge continuation areas for one entry: the image loops or is hostile", MaxISOContinue)
			}
			off := int64(binary.LittleEndian.Uint32(e[4:]))*isoBlock + int64(binary.LittleEndian.Uint32(e[12:]))
			n := int64(binary.LittleEndian.Uint32(e[20:]))
			if n > isoBlock || !within(off, n) {
				return errors.New("ISO9660: a Rock Ridge continuation area is too large or past the end of the medium: the image is damaged")
			}
			next = make([]byte, n)
			if _, err := r.ReadAt(next, off); err != nil {
				return fmt.Errorf("ISO9660: read a continuation area: %w", err)
			}
		}
		if next == nil {
			return nil
		}
		su = next
	}
}
