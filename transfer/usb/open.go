// Package usb reads release bundles from USB sticks and writes signature
// responses back to them, entirely in user space: the kernel never mounts
// the medium.
//
// Devices are found through sysfs (ListRemovable). A device or image file is
// opened read-only (Open) with github.com/diskfs/go-diskfs, which reads
// FAT12/16/32, ext4 and ISO9660; the result is an fs.FS for package bundle,
// which applies its own name rules and caps. exFAT and NTFS are recognised
// and refused with a message saying what to do.
//
// The filesystem image itself is hostile. Before go-diskfs sees a FAT volume
// this package checks its geometry, that it fits on the medium, that its
// allocation table is under MaxFATBytes, and that no cluster chain loops;
// ext4 and ISO9660 volumes must fit on the medium, and an ISO9660 volume's
// descriptors, path tables, directories and Rock Ridge continuation areas
// are checked against caps (checkISO) because go-diskfs allocates whatever
// their size fields say. Every call into go-diskfs runs behind a recover
// that turns a panic into an error, and with a budget of medium reads
// (MaxOpReads, MaxOpReadBytes) that stops structures which loop, such as an
// ext4 extent tree pointing at itself; so a damaged, truncated or hostile
// image gives an error, never a crash or a stall.
//
// FAT file contents are read by this package (fatData): go-diskfs parses the
// directories and gives the cluster chain, which is checked against the
// volume and cut at the file's size, then read in runs of contiguous
// clusters straight into the caller's buffer.
//
// WriteResponse writes the response folder to a FAT12, FAT16 or FAT32
// stick, again in user space, with this package's own writer: it checks
// everything and counts free space in the allocation table before writing
// anything, and orders its writes (data, then allocation table copies,
// then one root-folder sector) so that a stick pulled or failing at any
// point keeps its existing files and filesystem intact. It then re-opens
// the stick read-only and compares every byte. exFAT and NTFS sticks are
// refused unchanged.
//
// A Volume is not safe for concurrent use.
package usb

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"slices"
	"strings"
	"time"

	diskfs "github.com/diskfs/go-diskfs"
	"github.com/diskfs/go-diskfs/backend"
	"github.com/diskfs/go-diskfs/backend/file"
	"github.com/diskfs/go-diskfs/disk"
	"github.com/diskfs/go-diskfs/filesystem"
	"github.com/diskfs/go-diskfs/filesystem/ext4"
	"github.com/diskfs/go-diskfs/filesystem/fat12"
	"github.com/diskfs/go-diskfs/filesystem/fat16"
	"github.com/diskfs/go-diskfs/filesystem/fat32"
	"github.com/diskfs/go-diskfs/filesystem/iso9660"
)

// Volume is a filesystem opened read-only from a device or image.
type Volume struct {
	// FS reads the filesystem. It offers only reading; every call is
	// guarded against panics in the filesystem code.
	FS fs.FS
	// Type is "FAT12", "FAT16", "FAT32", "ext4" or "ISO9660".
	Type string
	// Partition is the partition number the filesystem was found on, 0 for
	// a filesystem spanning the whole device (no partition table).
	Partition int
	// Label is the volume label, made safe to show.
	Label string

	closer io.Closer
}

// Close releases the device or image.
func (v *Volume) Close() error {
	if v.closer == nil {
		return nil
	}
	err := v.closer.Close()
	v.closer = nil
	return err
}

// Open opens the device or image file at path read-only and returns the
// first readable filesystem on it: if the first sector is itself a FAT boot
// sector, the whole device is tried first (a FAT stick without a partition
// table has junk partition entries); otherwise each partition in order, then
// the whole device.
func Open(path string) (*Volume, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("usb: %w", err)
	}
	v, err := openBackend(file.New(f, true), path)
	if err != nil {
		f.Close()
		return nil, err
	}
	v.closer = f
	return v, nil
}

// OpenImage opens an image held in r (size bytes) read-only, like Open.
func OpenImage(r io.ReaderAt, size int64) (*Volume, error) {
	return openBackend(&memBackend{r: r, size: size}, "image")
}

// MaxPartitions caps the partitions tried on one device.
const MaxPartitions = 16

type candidate struct {
	part        int
	start, size int64
}

func openBackend(raw backend.Storage, name string) (v *Volume, err error) {
	defer recoverTo(&err, "open "+name)
	b := newBudgetStorage(raw)
	d, err := diskfs.OpenBackend(b, diskfs.WithOpenMode(diskfs.ReadOnly))
	if err != nil {
		return nil, fmt.Errorf("usb: %s: %w", name, err)
	}
	if d.Size < 512 {
		return nil, fmt.Errorf("usb: %s: %d bytes is too small to hold a filesystem", name, d.Size)
	}
	whole := candidate{part: 0, start: 0, size: d.Size}
	first := make([]byte, 512)
	if _, err := b.ReadAt(first, 0); err != nil {
		return nil, fmt.Errorf("usb: %s: read the first sector: %w", name, err)
	}
	var cands []candidate
	if k := bootKind(first); k != kindUnknown {
		cands = append(cands, whole)
	}
	cands = append(cands, partitions(d)...)
	if len(cands) == 0 || cands[0] != whole {
		cands = append(cands, whole)
	}

	var reasons []string
	var unsupported error
	for _, c := range cands {
		b.reset(0)
		vol, err := tryVolume(b, raw, d, c)
		if err == nil {
			return vol, nil
		}
		if errors.Is(err, ErrExFAT) || errors.Is(err, ErrNTFS) {
			unsupported = err
		}
		where := "whole device"
		if c.part > 0 {
			where = fmt.Sprintf("partition %d", c.part)
		}
		reasons = append(reasons, where+": "+err.Error())
	}
	if unsupported != nil {
		return nil, fmt.Errorf("usb: %s: %w", name, unsupported)
	}
	return nil, fmt.Errorf("usb: %s: no readable filesystem (%s): use a FAT32, ext4 or ISO9660 stick", name, strings.Join(reasons, "; "))
}

// partitions lists the plausible partitions of d's table.
func partitions(d *disk.Disk) []candidate {
	if d.Table == nil {
		return nil
	}
	var out []candidate
	for _, p := range d.Table.GetPartitions() {
		if len(out) == MaxPartitions {
			break
		}
		if p == nil {
			continue
		}
		start, size := p.GetStart(), p.GetSize()
		if start <= 0 || size <= 0 || start > d.Size || size > d.Size-start {
			continue
		}
		out = append(out, candidate{part: p.GetIndex(), start: start, size: size})
	}
	return out
}

// tryVolume checks and opens the filesystem at c.
// b draws on a read budget and is what go-diskfs reads through; raw is the
// medium itself, for this package's own bounded reads.
func tryVolume(b *budgetStorage, raw backend.Storage, d *disk.Disk, c candidate) (v *Volume, err error) {
	defer recoverTo(&err, "read filesystem")
	bs := make([]byte, 4096)
	n, err := b.ReadAt(bs, c.start)
	if n < 512 {
		return nil, fmt.Errorf("cannot read the boot sector: %v", err)
	}
	bs = bs[:n]
	var fsys filesystem.FileSystem
	kind := bootKind(bs)
	blocksize := d.LogicalBlocksize
	var fatG *fatGeometry
	switch kind {
	case kindExFAT:
		return nil, ErrExFAT
	case kindNTFS:
		return nil, ErrNTFS
	case kindFAT12, kindFAT16, kindFAT32:
		g, err := parseFAT(bs)
		if err != nil {
			return nil, err
		}
		if err := checkFAT(b, c.start, c.size, g); err != nil {
			return nil, err
		}
		fatG = g
		fb := firstFAT(b, c.start, g)
		switch kind {
		case kindFAT32:
			fsys, err = fat32.Read(fb, c.size, c.start, blocksize)
		case kindFAT16:
			fsys, err = fat16.Read(fb, c.size, c.start, blocksize)
		default:
			fsys, err = fat12.Read(fb, c.size, c.start, blocksize)
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", kind, err)
		}
	default:
		sb := make([]byte, 1024)
		if _, err := b.ReadAt(sb, c.start+1024); err == nil {
			if length, ok := ext4Length(sb); ok {
				kind = kindExt4
				if length < 0 || length > c.size {
					return nil, fmt.Errorf("the ext4 filesystem claims more than the %s the medium holds: the image is truncated or the stick is damaged", formatSize(c.size))
				}
				if fsys, err = ext4.Read(b, c.size, c.start, blocksize); err != nil {
					return nil, fmt.Errorf("ext4: %w", err)
				}
			}
		}
		if fsys == nil {
			pvd := make([]byte, 2048)
			if _, err := b.ReadAt(pvd, c.start+32768); err == nil {
				if length, ok := isoLength(pvd); ok {
					kind = kindISO9660
					if length > c.size {
						return nil, fmt.Errorf("the ISO9660 filesystem claims %s but the medium holds %s: the image is truncated", formatSize(length), formatSize(c.size))
					}
					if c.start != 0 {
						// go-diskfs reads ISO9660 structures at offsets from the device start.
						return nil, errors.New("an ISO9660 filesystem inside a partition is not supported: write the image to the whole stick")
					}
					if err := checkISO(raw, c.size); err != nil {
						return nil, err
					}
					// ISO9660 addresses 2048-byte blocks whatever the device's sectors.
					if fsys, err = iso9660.Read(b, c.size, c.start, 0); err != nil {
						return nil, fmt.Errorf("ISO9660: %w", err)
					}
				}
			}
		}
		if fsys == nil {
			return nil, errors.New("no FAT, ext4 or ISO9660 filesystem")
		}
	}
	g := &guardedFS{fsys: fsys, budget: b}
	if fatG != nil {
		g.fat = newFATData(raw, fsys, c.start, fatG)
	}
	if _, err := g.ReadDir("."); err != nil {
		return nil, fmt.Errorf("%s: cannot read the root directory: %w", kind, err)
	}
	return &Volume{FS: g, Type: kind.String(), Partition: c.part, Label: safeLabel(fsys)}, nil
}

// firstFATStorage serves reads of the second copy of a FAT volume's
// allocation table from the first, as the Linux kernel and fsck.fat use
// the first. The copies differ on a stick pulled while a response was
// written (WriteResponse updates them in turn), and go-diskfs refuses a
// FAT32 volume whose copies differ.
type firstFATStorage struct {
	backend.Storage
	first, second, size int64 // absolute offsets of the copies, their size
}

func firstFAT(s backend.Storage, start int64, g *fatGeometry) backend.Storage {
	if g.numFATs != 2 {
		return s
	}
	first := start + g.fatOffset
	return &firstFATStorage{Storage: s, first: first, second: first + g.fatBytes, size: g.fatBytes}
}

func (s *firstFATStorage) ReadAt(p []byte, off int64) (int, error) {
	n, err := s.Storage.ReadAt(p, off)
	lo, hi := max(off, s.second), min(off+int64(n), s.second+s.size)
	if lo < hi {
		if _, ferr := s.Storage.ReadAt(p[lo-off:hi-off], s.first+(lo-s.second)); ferr != nil {
			return 0, ferr
		}
	}
	return n, err
}

func safeLabel(fsys filesystem.FileSystem) (label string) {
	defer func() {
		if recover() != nil {
			label = ""
		}
	}()
	return cleanText(fsys.Label(), 32)
}

// cleanText keeps printable ASCII of s, trimmed, at most n bytes: device
// and volume names come from the medium.
func cleanText(s string, n int) string {
	var b strings.Builder
	for _, r := range s {
		if r >= 0x20 && r < 0x7f {
			b.WriteRune(r)
		}
		if b.Len() >= n {
			break
		}
	}
	return strings.TrimSpace(b.String())
}

// recoverTo turns a panic in filesystem code into an error.
func recoverTo(err *error, op string) {
	if r := recover(); r != nil {
		*err = fmt.Errorf("usb: %s: the filesystem is damaged (%s): copy the bundle to a freshly formatted stick", op, cleanText(fmt.Sprint(r), 120))
	}
}

// guardedFS exposes the reading half of a go-diskfs filesystem, with every
// call guarded against panics.
type guardedFS struct {
	fsys   filesystem.FileSystem
	fat    *fatData       // nil: go-diskfs reads file contents itself
	budget *budgetStorage // reset before every call into fsys
}

var (
	_ fs.ReadDirFS = (*guardedFS)(nil)
	_ fs.StatFS    = (*guardedFS)(nil)
)

func (g *guardedFS) Open(name string) (f fs.File, err error) {
	if !fs.ValidPath(name) {
		return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrInvalid}
	}
	defer recoverTo(&err, "open "+safeName(name))
	g.budget.reset(0)
	inner, err := g.fsys.Open(name)
	if err != nil {
		return nil, err
	}
	if g.fat != nil {
		ff, err := g.fat.open(inner, name)
		if err != nil {
			inner.Close()
			return nil, err
		}
		if ff != nil {
			return &guardedFile{f: ff, name: name, chunk: DirectChunk, budget: g.budget}, nil
		}
	}
	return &guardedFile{f: inner, name: name, chunk: ReadChunk, budget: g.budget}, nil
}

// ReadChunk is the size of the reads a file of a volume passes to the
// filesystem code, whatever the caller asks for. go-diskfs walks a FAT
// file's whole cluster chain on every read, so small reads of a large file
// take quadratic time; reads of at least 1 MiB are also an order of
// magnitude faster on every filesystem.
const ReadChunk = 16 << 20

func (g *guardedFS) ReadDir(name string) (list []fs.DirEntry, err error) {
	if !fs.ValidPath(name) {
		return nil, &fs.PathError{Op: "readdir", Path: name, Err: fs.ErrInvalid}
	}
	defer recoverTo(&err, "read directory "+safeName(name))
	g.budget.reset(0)
	inner, err := g.fsys.ReadDir(name)
	if err != nil {
		return nil, err
	}
	list = make([]fs.DirEntry, len(inner))
	for i, e := range inner {
		list[i] = guardedEntry{e, g.budget}
	}
	slices.SortFunc(list, func(a, b fs.DirEntry) int { return strings.Compare(a.Name(), b.Name()) })
	return list, nil
}

func (g *guardedFS) Stat(name string) (info fs.FileInfo, err error) {
	if !fs.ValidPath(name) {
		return nil, &fs.PathError{Op: "stat", Path: name, Err: fs.ErrInvalid}
	}
	defer recoverTo(&err, "stat "+safeName(name))
	g.budget.reset(0)
	return g.fsys.Stat(name)
}

type guardedEntry struct {
	e      fs.DirEntry
	budget *budgetStorage
}

func (e guardedEntry) Name() string      { return e.e.Name() }
func (e guardedEntry) IsDir() bool       { return e.e.IsDir() }
func (e guardedEntry) Type() fs.FileMode { return e.e.Type() }
func (e guardedEntry) Info() (info fs.FileInfo, err error) {
	defer recoverTo(&err, "stat "+safeName(e.e.Name()))
	e.budget.reset(0)
	return e.e.Info()
}

type guardedFile struct {
	f      fs.File
	name   string
	budget *budgetStorage
	// chunk is the size of the reads passed to f: smaller reads are served
	// from buf. Reads at least this large go straight to f.
	chunk int
	buf   []byte // holds buf[off:] not yet returned
	off   int
	err   error // from the last read of the filesystem
}

// DirectChunk is the read size from which a FAT file read in runs of
// clusters (see fatData) is read straight into the caller's buffer; smaller
// reads are served from a buffer of this size.
const DirectChunk = 1 << 20

func (f *guardedFile) Read(b []byte) (n int, err error) {
	if len(b) == 0 {
		return 0, nil
	}
	if f.off < len(f.buf) {
		n = copy(b, f.buf[f.off:])
		f.off += n
		return n, nil
	}
	if f.err != nil {
		return 0, f.err
	}
	if len(b) >= f.chunk {
		return f.read(b)
	}
	if f.buf == nil {
		size := int64(f.chunk)
		if info, err := f.Stat(); err == nil && info.Size() >= 0 && info.Size() < size {
			size = info.Size() + 1
		}
		f.buf = make([]byte, size)
	}
	k, err := f.read(f.buf[:cap(f.buf)])
	f.buf, f.off, f.err = f.buf[:k], 0, err
	if k == 0 {
		f.err = nil
		return 0, err
	}
	n = copy(b, f.buf)
	f.off = n
	return n, nil
}

// read reads from the filesystem code. It never returns 0 bytes and no
// error: a reader that makes no progress would make callers spin.
func (f *guardedFile) read(b []byte) (n int, err error) {
	defer recoverTo(&err, "read "+safeName(f.name))
	f.budget.reset(len(b))
	n, err = f.f.Read(b)
	if n < 0 || n > len(b) {
		return 0, fmt.Errorf("usb: read %s: the filesystem returned a bad count", safeName(f.name))
	}
	if n == 0 && err == nil {
		return 0, fmt.Errorf("usb: read %s: the filesystem returned no data before the end of the file: the stick is damaged", safeName(f.name))
	}
	return n, err
}

func (f *guardedFile) Stat() (info fs.FileInfo, err error) {
	defer recoverTo(&err, "stat "+safeName(f.name))
	f.budget.reset(0)
	return f.f.Stat()
}

func (f *guardedFile) Close() (err error) {
	defer recoverTo(&err, "close "+safeName(f.name))
	f.budget.reset(0)
	return f.f.Close()
}

func safeName(s string) string { return fmt.Sprintf("%q", s) }

// memBackend is a read-only backend.Storage over an io.ReaderAt.
type memBackend struct {
	r    io.ReaderAt
	size int64
	off  int64
}

var _ backend.Storage = (*memBackend)(nil)

func (m *memBackend) Stat() (fs.FileInfo, error) { return memInfo{m.size}, nil }
func (m *memBackend) Close() error               { return nil }
func (m *memBackend) Sys() (*os.File, error)     { return nil, backend.ErrNotSuitable }
func (m *memBackend) Writable() (backend.WritableFile, error) {
	return nil, backend.ErrIncorrectOpenMode
}
func (m *memBackend) Path() string { return "" }

func (m *memBackend) ReadAt(b []byte, off int64) (int, error) {
	if off < 0 {
		return 0, errors.New("negative offset")
	}
	if off >= m.size {
		return 0, io.EOF
	}
	if max := m.size - off; int64(len(b)) > max {
		n, err := m.r.ReadAt(b[:max], off)
		if err == nil {
			err = io.EOF
		}
		return n, err
	}
	return m.r.ReadAt(b, off)
}

func (m *memBackend) Read(b []byte) (int, error) {
	n, err := m.ReadAt(b, m.off)
	m.off += int64(n)
	return n, err
}

func (m *memBackend) Seek(off int64, whence int) (int64, error) {
	switch whence {
	case io.SeekStart:
	case io.SeekCurrent:
		off += m.off
	case io.SeekEnd:
		off += m.size
	}
	if off < 0 {
		return 0, errors.New("negative offset")
	}
	m.off = off
	return off, nil
}

type memInfo struct{ size int64 }

func (i memInfo) Name() string       { return "image" }
func (i memInfo) Size() int64        { return i.size }
func (i memInfo) Mode() fs.FileMode  { return 0o400 }
func (i memInfo) ModTime() time.Time { return time.Time{} }
func (i memInfo) IsDir() bool        { return false }
func (i memInfo) Sys() any           { return nil }

// MaxBundleDirs caps the top-level entries FindBundles looks at.
const MaxBundleDirs = 1000

// FindBundles lists where bundles sit on a volume: "." if request.json is at
// the root, and each top-level folder holding a request.json, sorted.
func FindBundles(fsys fs.FS) ([]string, error) {
	return findDocs(fsys, "request.json")
}

func findDocs(fsys fs.FS, doc string) ([]string, error) {
	list, err := fs.ReadDir(fsys, ".")
	if err != nil {
		return nil, fmt.Errorf("usb: read the root directory: %w", err)
	}
	if len(list) > MaxBundleDirs {
		return nil, fmt.Errorf("usb: the root directory holds %d entries, over the cap of %d (MaxBundleDirs)", len(list), MaxBundleDirs)
	}
	var out []string
	for _, e := range list {
		switch {
		case e.Type().IsRegular() && e.Name() == doc:
			out = append(out, ".")
		case e.IsDir():
			sub, err := fs.ReadDir(fsys, e.Name())
			if err != nil {
				continue
			}
			for _, s := range sub {
				if s.Name() == doc && s.Type().IsRegular() {
					out = append(out, e.Name())
					break
				}
			}
		}
	}
	slices.Sort(out)
	return out, nil
}
