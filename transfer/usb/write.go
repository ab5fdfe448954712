package usb

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"slices"
	"time"

	diskfs "github.com/diskfs/go-diskfs"
	"github.com/diskfs/go-diskfs/backend/file"
)

// ResponseFile is one file of a response folder.
type ResponseFile struct {
	Name string // a plain name: letters, digits, '.', '-', '_'
	Data []byte
}

// Caps on what WriteResponse writes.
const (
	MaxResponseFiles = 16
	MaxResponseBytes = 64 << 20
	maxNameLen       = 64
)

// ErrExists is returned when the response folder is already on the stick.
var ErrExists = errors.New("already exists")

// WriteResponse creates the folder dir at the root of the FAT12, FAT16 or
// FAT32 filesystem on the device or image at devPath and writes files into
// it, in user space (see fatwrite.go for the order of the writes, which
// keeps the stick's filesystem intact if it is pulled at any point). It
// refuses to touch anything that exists, and refuses before writing
// anything when the response does not fit, counting free space in the
// allocation table. It then re-opens the medium read-only and compares
// every byte it wrote.
func WriteResponse(devPath, dir string, files []ResponseFile) error {
	if !fatName(dir) || len(dir) > maxNameLen {
		return fmt.Errorf("usb: response folder name %q: use letters, digits, '.', '-' and '_' only, not ending in '.', at most %d", dir, maxNameLen)
	}
	if len(files) == 0 || len(files) > MaxResponseFiles {
		return fmt.Errorf("usb: a response holds 1 to %d files, not %d", MaxResponseFiles, len(files))
	}
	var total int64
	seen := map[string]bool{}
	for _, f := range files {
		if !fatName(f.Name) || len(f.Name) > maxNameLen {
			return fmt.Errorf("usb: response file name %q: use letters, digits, '.', '-' and '_' only, not ending in '.', at most %d", f.Name, maxNameLen)
		}
		key := string(bytes.ToLower([]byte(f.Name)))
		if seen[key] {
			return fmt.Errorf("usb: response file %s is listed twice", f.Name)
		}
		seen[key] = true
		total += int64(len(f.Data))
	}
	if total > MaxResponseBytes {
		return fmt.Errorf("usb: response of %s is over the %s cap (MaxResponseBytes)", formatSize(total), formatSize(MaxResponseBytes))
	}
	if err := writeFAT(devPath, dir, files); err != nil {
		return err
	}
	return verifyResponse(devPath, dir, files)
}

func writeFAT(devPath, dir string, files []ResponseFile) (err error) {
	defer recoverTo(&err, "write "+devPath)
	info, err := os.Stat(devPath)
	if err != nil {
		return fmt.Errorf("usb: %w", err)
	}
	flags := os.O_RDWR
	if info.Mode()&fs.ModeDevice != 0 {
		flags |= os.O_EXCL // fails while the kernel has the device mounted
	}
	f, err := os.OpenFile(devPath, flags, 0)
	if err != nil {
		return fmt.Errorf("usb: open %s for writing: %w", devPath, err)
	}
	defer func() {
		if cerr := f.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("usb: close %s: %w", devPath, cerr)
		}
	}()
	v, err := findFAT(f)
	if err != nil {
		return fmt.Errorf("usb: %s: cannot write the response: %w", devPath, err)
	}
	p, err := v.planResponse(dir, files, time.Now())
	if err != nil {
		return fmt.Errorf("usb: %s: %w", devPath, err)
	}
	if err := p.run(f); err != nil {
		return fmt.Errorf("usb: %s: %w", devPath, err)
	}
	return nil
}

// findFAT finds the FAT volume on f the way reading does: the whole
// device first if its first sector is a FAT boot sector, then each
// partition, then the whole device. It reads and checks, and writes
// nothing.
func findFAT(f *os.File) (*fatVolume, error) {
	d, err := diskfs.OpenBackend(file.New(f, true), diskfs.WithOpenMode(diskfs.ReadOnly))
	if err != nil {
		return nil, err
	}
	first := make([]byte, 512)
	if _, err := f.ReadAt(first, 0); err != nil {
		return nil, fmt.Errorf("read the first sector: %w", err)
	}
	whole := candidate{size: d.Size}
	var cands []candidate
	if bootKind(first) != kindUnknown {
		cands = append(cands, whole)
	}
	cands = append(cands, partitions(d)...)
	if len(cands) == 0 || cands[0] != whole {
		cands = append(cands, whole)
	}
	var why error = errors.New("no FAT filesystem found: use a FAT32 stick")
	for _, c := range cands {
		bs := make([]byte, 512)
		if _, err := f.ReadAt(bs, c.start); err != nil {
			continue
		}
		switch bootKind(bs) {
		case kindExFAT:
			return nil, ErrExFAT
		case kindNTFS:
			return nil, ErrNTFS
		case kindFAT12, kindFAT16, kindFAT32:
		default:
			continue
		}
		g, err := parseFAT(bs)
		if err == nil {
			err = checkFAT(f, c.start, c.size, g)
		}
		if err == nil {
			var v *fatVolume
			if v, err = openFATVolume(f, c.start, g, bs); err == nil {
				return v, nil
			}
		}
		why = err
	}
	return nil, why
}

// verifyResponse re-opens the medium read-only and compares every byte.
func verifyResponse(devPath, dir string, files []ResponseFile) error {
	v, err := Open(devPath)
	if err != nil {
		return fmt.Errorf("usb: read-back check: %w", err)
	}
	defer v.Close()
	list, err := fs.ReadDir(v.FS, dir)
	if err != nil {
		return fmt.Errorf("usb: read-back check: %w", err)
	}
	var names []string
	for _, e := range list {
		names = append(names, e.Name())
	}
	var want []string
	for _, rf := range files {
		want = append(want, rf.Name)
		got, err := fs.ReadFile(v.FS, path.Join(dir, rf.Name))
		if err != nil {
			return fmt.Errorf("usb: read-back check: %w", err)
		}
		if !bytes.Equal(got, rf.Data) {
			return fmt.Errorf("usb: read-back check: %s/%s differs from what was written: the stick is failing, use another", dir, rf.Name)
		}
	}
	slices.Sort(names)
	slices.Sort(want)
	if !slices.Equal(names, want) {
		return fmt.Errorf("usb: read-back check: %s holds %q, want %q", dir, names, want)
	}
	return nil
}

// ErrNoSpace is returned when the stick has too little free space, counted
// in its allocation table.
var ErrNoSpace = errors.New("not enough free space on the stick")
