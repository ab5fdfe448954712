package usb

import (
	"errors"
	"fmt"
	"io"
	"io/fs"

	"github.com/diskfs/go-diskfs/filesystem"
	"github.com/diskfs/go-diskfs/filesystem/fat12"
)

// fatData reads the contents of FAT files straight from the medium. go-diskfs
// parses the directories and gives each file's cluster chain; the data is
// then read in runs of contiguous clusters, one ReadAt per run (up to the
// caller's buffer), instead of go-diskfs's one read per cluster with the
// whole chain rebuilt on every call.
//
// Every cluster number is checked against the volume's cluster count, the
// chain is cut at the file's size and must cover it, and every read must
// land inside the filesystem, which checkFAT has already placed inside the
// medium. checkFAT also refused looping chains before go-diskfs walked one.
type fatData struct {
	r         io.ReaderAt
	dataStart int64 // absolute offset of cluster 2
	end       int64 // absolute end of the filesystem
	bpc       int64 // bytes per cluster
	clusters  int64 // data clusters: valid numbers are 2 .. clusters+1
}

// fatLayout is what go-diskfs's FAT filesystems say about their layout.
type fatLayout interface {
	Start() int64
	DataStart() uint32
	BytesPerCluster() int
}

// newFATData returns the direct reader for fsys at start, or nil if
// go-diskfs and this package's own reading of the boot sector disagree on
// where the data lies (then go-diskfs reads the files itself).
func newFATData(r io.ReaderAt, fsys filesystem.FileSystem, start int64, g *fatGeometry) *fatData {
	l, ok := fsys.(fatLayout)
	if !ok {
		return nil
	}
	rootDirSectors := (g.rootEntries*32 + g.bytesPerSector - 1) / g.bytesPerSector
	dataStart := g.fatOffset + g.numFATs*g.fatBytes + rootDirSectors*g.bytesPerSector
	bpc := g.sectorsPerClust * g.bytesPerSector
	if l.Start() != start || int64(l.DataStart()) != dataStart || int64(l.BytesPerCluster()) != bpc {
		return nil
	}
	d := &fatData{r: r, dataStart: start + dataStart, end: start + g.filesystemLength, bpc: bpc, clusters: g.clusters}
	if d.dataStart+d.clusters*d.bpc > d.end {
		return nil
	}
	return d
}

// extent is a stretch of a file stored contiguously on the medium.
type extent struct {
	off, n int64 // absolute offset and length in bytes
}

// open returns a direct reader for inner, a regular file go-diskfs opened,
// or nil if inner is not one go-diskfs's FAT code made.
func (d *fatData) open(inner fs.File, name string) (fs.File, error) {
	ff, ok := inner.(*fat12.File)
	if !ok {
		return nil, nil
	}
	info, err := ff.Stat()
	if err != nil || !info.Mode().IsRegular() {
		return nil, nil
	}
	size := info.Size()
	f := &fatFile{inner: inner, info: info, size: size, name: name, r: d.r}
	if size == 0 {
		return f, nil
	}
	chain, err := ff.GetClusterChain()
	if err != nil {
		return nil, fmt.Errorf("usb: read %s: the cluster chain is damaged: copy the bundle to a freshly formatted stick", safeName(name))
	}
	need := (size + d.bpc - 1) / d.bpc
	chain = chain[:min(int64(len(chain)), need)]
	left := size
	for i, c := range chain {
		if int64(c) < 2 || int64(c) >= d.clusters+2 {
			return nil, fmt.Errorf("usb: read %s: cluster %d is outside the volume: the stick is damaged or hostile", safeName(name), c)
		}
		n := min(d.bpc, left)
		left -= n
		off := d.dataStart + int64(c-2)*d.bpc
		if off+n > d.end {
			return nil, fmt.Errorf("usb: read %s: cluster %d lies past the end of the filesystem: the stick is damaged or hostile", safeName(name), c)
		}
		if i > 0 && chain[i-1]+1 == c {
			f.runs[len(f.runs)-1].n += n
			continue
		}
		f.runs = append(f.runs, extent{off: off, n: n})
	}
	if left > 0 {
		return nil, fmt.Errorf("usb: read %s: the file claims %d bytes but its cluster chain holds only %d: the stick is damaged", safeName(name), size, int64(len(chain))*d.bpc)
	}
	return f, nil
}

// fatFile reads one FAT file through fatData.
type fatFile struct {
	inner fs.File // go-diskfs's file, for Close
	info  fs.FileInfo
	size  int64
	name  string
	r     io.ReaderAt
	runs  []extent
	ri    int   // current run
	roff  int64 // offset inside the current run
	done  int64 // bytes returned so far
}

func (f *fatFile) Stat() (fs.FileInfo, error) { return f.info, nil }

func (f *fatFile) Read(b []byte) (int, error) {
	if f.done >= f.size {
		return 0, io.EOF
	}
	if len(b) == 0 {
		return 0, nil
	}
	n := 0
	for n < len(b) && f.ri < len(f.runs) {
		rn := f.runs[f.ri]
		k := min(int64(len(b)-n), rn.n-f.roff)
		m, err := f.r.ReadAt(b[n:n+int(k)], rn.off+f.roff)
		if int64(m) != k {
			if err == nil || errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			return n, fmt.Errorf("usb: read %s: %w: the image is truncated or the stick is damaged", safeName(f.name), err)
		}
		n += m
		f.roff += k
		if f.roff == rn.n {
			f.ri++
			f.roff = 0
		}
	}
	f.done += int64(n)
	if f.done >= f.size {
		return n, io.EOF
	}
	return n, nil
}

func (f *fatFile) Close() error {
	f.runs = nil
	return f.inner.Close()
}
