package usb

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"slices"

	diskfs "github.com/diskfs/go-diskfs"
	"github.com/diskfs/go-diskfs/backend/file"
	"github.com/diskfs/go-diskfs/filesystem/fat32"
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

// WriteResponse creates the folder dir at the root of the FAT32 filesystem on
// the device or image at devPath and writes files into it, in user space.
// It refuses to touch anything that exists. It then syncs, re-opens the
// medium read-only and compares every byte it wrote.
func WriteResponse(devPath, dir string, files []ResponseFile) error {
	if !plainName(dir) || len(dir) > maxNameLen {
		return fmt.Errorf("usb: response folder name %q: use letters, digits, '.', '-' and '_' only, at most %d", dir, maxNameLen)
	}
	if len(files) == 0 || len(files) > MaxResponseFiles {
		return fmt.Errorf("usb: a response holds 1 to %d files, not %d", MaxResponseFiles, len(files))
	}
	var total int64
	seen := map[string]bool{}
	for _, f := range files {
		if !plainName(f.Name) || len(f.Name) > maxNameLen {
			return fmt.Errorf("usb: response file name %q: use letters, digits, '.', '-' and '_' only, at most %d", f.Name, maxNameLen)
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
	if err := writeFAT32(devPath, dir, files); err != nil {
		return err
	}
	return verifyResponse(devPath, dir, files)
}

func writeFAT32(devPath, dir string, files []ResponseFile) (err error) {
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
	b := file.New(f, false)
	d, err := diskfs.OpenBackend(b, diskfs.WithOpenMode(diskfs.ReadWrite))
	if err != nil {
		return fmt.Errorf("usb: %s: %w", devPath, err)
	}
	// Find the FAT32 volume the same way reading does.
	first := make([]byte, 512)
	if _, err := f.ReadAt(first, 0); err != nil {
		return fmt.Errorf("usb: %s: read the first sector: %w", devPath, err)
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
	var fsys *fat32.FileSystem
	var at candidate
	var why error = errors.New("no FAT32 filesystem")
	for _, c := range cands {
		at = c
		bs := make([]byte, 512)
		if _, err := f.ReadAt(bs, c.start); err != nil {
			continue
		}
		switch bootKind(bs) {
		case kindExFAT:
			why = ErrExFAT
			continue
		case kindNTFS:
			why = ErrNTFS
			continue
		case kindFAT32:
		default:
			continue
		}
		g, err := parseFAT(bs)
		if err == nil {
			err = checkFAT(f, c.start, c.size, g)
		}
		if err != nil {
			why = err
			continue
		}
		fsys, err = fat32.Read(b, c.size, c.start, d.LogicalBlocksize)
		if err != nil {
			why = err
			continue
		}
		break
	}
	if fsys == nil {
		return fmt.Errorf("usb: %s: cannot write the response: %w: the response stick must be FAT32", devPath, why)
	}
	if err := checkFreeSpace(f, at.start, files); err != nil {
		return fmt.Errorf("usb: %s: %w", devPath, err)
	}
	if _, err := fsys.Stat(dir); err == nil {
		return fmt.Errorf("usb: %s: %s %w on the stick: use another stick or remove it there", devPath, dir, ErrExists)
	}
	if err := fsys.Mkdir(dir); err != nil {
		return fmt.Errorf("usb: %s: create %s: %w", devPath, dir, err)
	}
	for _, rf := range files {
		p := path.Join(dir, rf.Name)
		if _, err := fsys.Stat(p); err == nil {
			return fmt.Errorf("usb: %s: %s %w on the stick", devPath, p, ErrExists)
		}
		out, err := fsys.OpenFile(p, os.O_CREATE|os.O_RDWR)
		if err != nil {
			return fmt.Errorf("usb: %s: create %s: %w", devPath, p, err)
		}
		n, err := out.Write(rf.Data)
		if err == nil && n != len(rf.Data) {
			err = io.ErrShortWrite
		}
		if cerr := out.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return fmt.Errorf("usb: %s: write %s: %w", devPath, p, err)
		}
	}
	if err := fixFAT32(f, at.start, at.size, dir); err != nil {
		return fmt.Errorf("usb: %s: finish %s: %w", devPath, dir, err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("usb: %s: sync: %w", devPath, err)
	}
	return nil
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

// checkFreeSpace counts the free clusters in the allocation table itself,
// not in the FSInfo free-space record (which a stick can get wrong or lie
// about), and refuses before anything is written when the response, its
// folder and a possible extension of the root folder do not fit.
func checkFreeSpace(f io.ReaderAt, start int64, files []ResponseFile) error {
	bs := make([]byte, 512)
	if _, err := f.ReadAt(bs, start); err != nil {
		return fmt.Errorf("read the boot sector: %w", err)
	}
	g, err := parseFAT(bs)
	if err != nil {
		return err
	}
	table := make([]byte, g.fatBytes)
	if _, err := f.ReadAt(table, start+g.fatOffset); err != nil {
		return fmt.Errorf("read the allocation table: %w", err)
	}
	var free int64
	for c := int64(2); c < g.clusters+2 && c*4+4 <= int64(len(table)); c++ {
		if binary.LittleEndian.Uint32(table[c*4:])&0x0FFFFFFF == 0 {
			free++
		}
	}
	bpc := g.sectorsPerClust * g.bytesPerSector
	need := int64(2) // the folder, and one more cluster for the root folder
	for _, rf := range files {
		need += max(1, (int64(len(rf.Data))+bpc-1)/bpc)
	}
	if free < need {
		return fmt.Errorf("%w: the allocation table shows %d free clusters (%s) but the response needs %d (%s); the stick's free-space record may say otherwise: use another stick",
			ErrNoSpace, free, formatSize(free*bpc), need, formatSize(need*bpc))
	}
	return nil
}

// ErrNoSpace is returned when the stick has too little free space, counted
// in its allocation table.
var ErrNoSpace = errors.New("not enough free space on the stick")
