package bundle

import (
	"crypto/sha256"
	"crypto/sha512"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"os"
	"slices"
	"strings"
	"sync"
)

// Import checks the bundle in src against opts and copies it into workdir,
// computing each file's SHA-256 and SHA-512 as it copies. Every entry is
// checked before the first byte is written.
//
// workdir must be an empty directory or not exist yet (its parent must). On
// error Import removes what it wrote there.
//
// src may be a folder (os.DirFS, or better os.Root.FS, which refuses to
// follow symbolic links out of the folder), a filesystem read from a USB
// stick, or any other fs.FS.
func Import(src fs.FS, workdir string, opts Options) (*Manifest, error) {
	c := newChecker(opts.Limits, opts.Layout)
	if err := walkFS(src, c, nil, 0); err != nil {
		return nil, err
	}
	if err := c.finish(); err != nil {
		return nil, err
	}
	return copyFS(src, c, workdir, opts, 0o600, 0o700)
}

// WriteDir writes the bundle held in src to the folder dst, with the same
// checks as Import, so that what CI writes is what the appliance accepts.
// dst must be empty or not exist. Files get mode 0644, directories 0755.
func WriteDir(dst string, src fs.FS, opts Options) (*Manifest, error) {
	c := newChecker(opts.Limits, opts.Layout)
	if err := walkFS(src, c, nil, 0); err != nil {
		return nil, err
	}
	if err := c.finish(); err != nil {
		return nil, err
	}
	return copyFS(src, c, dst, opts, 0o644, 0o755)
}

// Open reopens a bundle imported earlier into workdir: it checks the tree
// again with the same rules and hashes every file again, so that a manifest
// never describes bytes that are not there.
func Open(workdir string, opts Options) (*Manifest, error) {
	root, err := os.OpenRoot(workdir)
	if err != nil {
		return nil, fmt.Errorf("bundle: open working directory: %w", err)
	}
	defer root.Close()
	src := root.FS()
	c := newChecker(opts.Limits, opts.Layout)
	if err := walkFS(src, c, nil, 0); err != nil {
		return nil, err
	}
	if err := c.finish(); err != nil {
		return nil, err
	}
	m := &Manifest{Dir: workdir}
	cp := newCopier(c, m, nil, opts.Progress)
	for _, e := range c.entries {
		if e.dir {
			m.Dirs = append(m.Dirs, e.path)
			continue
		}
		if err := cp.fromFS(src, e); err != nil {
			return nil, err
		}
	}
	return cp.manifest(), nil
}

// walkFS lists dir (recursively) into c. Names are checked before they are
// joined, so that an entry named ".." or "a/b" never becomes a path.
func walkFS(src fs.FS, c *checker, parts []string, depth int) error {
	dir := "."
	if len(parts) > 0 {
		dir = strings.Join(parts, "/")
	}
	list, err := safeReadDir(src, dir)
	if err != nil {
		return fmt.Errorf("bundle: %s: read directory: %w", displayName(dir), err)
	}
	for _, d := range list {
		name := d.Name()
		full := name
		if len(parts) > 0 {
			full = dir + "/" + name
		}
		if err := checkComponent(full, name); err != nil {
			return err
		}
		child := append(slices.Clone(parts), name)
		t := d.Type()
		switch {
		case t&fs.ModeSymlink != 0:
			return refuse(full, RuleSymlink, "symbolic links are not allowed in a bundle")
		case t.IsDir():
			if err := c.add(child, true, 0); err != nil {
				return err
			}
			if err := walkFS(src, c, child, depth+1); err != nil {
				return err
			}
		case t.IsRegular():
			info, err := d.Info()
			if err != nil {
				return fmt.Errorf("bundle: %s: %w", displayName(full), err)
			}
			if !info.Mode().IsRegular() {
				return refuse(full, RuleSpecial, "not a regular file (%s)", info.Mode().Type())
			}
			if hardLinked(info) {
				return refuse(full, RuleHardLink, "hard links are not allowed in a bundle")
			}
			if err := c.add(child, false, info.Size()); err != nil {
				return err
			}
		default:
			return refuse(full, RuleSpecial, "special files (%s) are not allowed in a bundle", t.Type())
		}
	}
	return nil
}

// safeReadDir is fs.ReadDir without the sort of a huge hostile list before
// the entry cap had a say: the caller checks each entry in order anyway.
func safeReadDir(src fs.FS, dir string) ([]fs.DirEntry, error) {
	return fs.ReadDir(src, dir)
}

// copyFS copies the checked entries of c from src into dst.
func copyFS(src fs.FS, c *checker, dst string, opts Options, filePerm, dirPerm os.FileMode) (m *Manifest, err error) {
	s, err := newSink(dst, filePerm, dirPerm)
	if err != nil {
		return nil, err
	}
	defer func() { err = s.close(err) }()
	m = &Manifest{Dir: dst}
	cp := newCopier(c, m, s.create, opts.Progress)
	for _, e := range c.entries {
		if e.dir {
			if err := s.mkdir(e.path); err != nil {
				return nil, err
			}
			m.Dirs = append(m.Dirs, e.path)
			continue
		}
		if err := cp.fromFS(src, e); err != nil {
			return nil, err
		}
	}
	return cp.manifest(), nil
}

// sink writes files below one directory through an os.Root.
type sink struct {
	root     *os.Root
	dir      string
	filePerm os.FileMode
	dirPerm  os.FileMode
	made     bool     // the directory itself was created
	top      []string // top-level entries created, for cleanup
}

func newSink(dir string, filePerm, dirPerm os.FileMode) (*sink, error) {
	s := &sink{dir: dir, filePerm: filePerm, dirPerm: dirPerm}
	switch err := os.Mkdir(dir, dirPerm); {
	case err == nil:
		s.made = true
	case errors.Is(err, fs.ErrExist):
		f, err := os.Open(dir)
		if err != nil {
			return nil, fmt.Errorf("bundle: working directory: %w", err)
		}
		names, err := f.Readdirnames(1)
		f.Close()
		if err != nil && !errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("bundle: working directory: %w", err)
		}
		if len(names) > 0 {
			return nil, fmt.Errorf("bundle: working directory %s is not empty: give an empty or new directory", dir)
		}
	default:
		return nil, fmt.Errorf("bundle: working directory: %w", err)
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, fmt.Errorf("bundle: working directory: %w", err)
	}
	s.root = root
	return s, nil
}

func (s *sink) note(p string) {
	top, _, _ := strings.Cut(p, "/")
	if !slices.Contains(s.top, top) {
		s.top = append(s.top, top)
	}
}

func (s *sink) mkdir(p string) error {
	s.note(p)
	if err := s.root.Mkdir(p, s.dirPerm); err != nil {
		return fmt.Errorf("bundle: %s: create directory: %w", displayName(p), err)
	}
	return nil
}

func (s *sink) create(e entry) (io.WriteCloser, error) {
	s.note(e.path)
	f, err := s.root.OpenFile(e.path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, s.filePerm)
	if err != nil {
		return nil, fmt.Errorf("bundle: %s: create file: %w", displayName(e.path), err)
	}
	return f, nil
}

// mkdirAll creates p and its missing parents.
func (s *sink) mkdirAll(p string) error {
	s.note(p)
	if err := s.root.MkdirAll(p, s.dirPerm); err != nil {
		return fmt.Errorf("bundle: %s: create directory: %w", displayName(p), err)
	}
	return nil
}

// close closes the root and, if err is not nil, removes what was written.
func (s *sink) close(err error) error {
	if err != nil {
		for _, t := range slices.Backward(s.top) {
			_ = s.root.RemoveAll(t)
		}
	}
	cerr := s.root.Close()
	if err != nil {
		if s.made {
			_ = os.Remove(s.dir)
		}
		return err
	}
	if cerr != nil {
		return fmt.Errorf("bundle: working directory: %w", cerr)
	}
	return nil
}

// copier copies and hashes file contents.
type copier struct {
	c        *checker
	m        *Manifest
	dst      func(e entry) (io.WriteCloser, error) // nil: hash only
	progress func(Progress)
	done     int64
	pool     chan []byte // buffers of large-file pipelines, reused
}

func newCopier(c *checker, m *Manifest, dst func(e entry) (io.WriteCloser, error), progress func(Progress)) *copier {
	return &copier{c: c, m: m, dst: dst, progress: progress}
}

func (cp *copier) manifest() *Manifest {
	slices.SortFunc(cp.m.Files, func(a, b File) int { return strings.Compare(a.Path, b.Path) })
	slices.Sort(cp.m.Dirs)
	return cp.m
}

// fromFS opens e in src, checks it is still the file that was listed, and
// copies it.
func (cp *copier) fromFS(src fs.FS, e entry) error {
	f, err := src.Open(e.path)
	if err != nil {
		return fmt.Errorf("bundle: %s: %w", displayName(e.path), err)
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return fmt.Errorf("bundle: %s: %w", displayName(e.path), err)
	}
	if !info.Mode().IsRegular() || info.Size() != e.size {
		return refuse(e.path, RuleChanged, "file changed while the bundle was read: import again")
	}
	return cp.copy(e, f)
}

// copy reads exactly e.size bytes of r into the sink and the hashes.
func (cp *copier) copy(e entry, r io.Reader) (err error) {
	var w io.Writer
	if cp.dst != nil {
		f, err := cp.dst(e)
		if err != nil {
			return err
		}
		defer func() {
			if cerr := f.Close(); cerr != nil && err == nil {
				err = fmt.Errorf("bundle: %s: write: %w", displayName(e.path), cerr)
			}
		}()
		w = f
	}
	isDoc := e.path == cp.c.layout.Document
	var doc []byte
	if isDoc {
		doc = make([]byte, 0, e.size)
	}
	if cp.progress != nil {
		cp.progress(Progress{Done: cp.done, Total: cp.c.total, Entry: e.path})
	}
	s256, s512 := sha256.New(), sha512.New()
	var n int64
	// consume handles one chunk on this goroutine: size check, SHA-256,
	// the copy, progress.
	consume := func(b []byte) error {
		if int64(len(b)) > e.size-n {
			return refuse(e.path, RuleChanged, "file holds more than its listed %d bytes: import again", e.size)
		}
		s256.Write(b)
		if w != nil {
			if _, err := w.Write(b); err != nil {
				return fmt.Errorf("bundle: %s: write: %w", displayName(e.path), err)
			}
		}
		if isDoc {
			doc = append(doc, b...)
		}
		n += int64(len(b))
		cp.done += int64(len(b))
		if cp.progress != nil {
			cp.progress(Progress{Done: cp.done, Total: cp.c.total, Entry: e.path})
		}
		return nil
	}
	if e.size < BufferSize {
		err = cp.copySmall(e, r, s512, consume)
	} else {
		err = cp.copyLarge(e, r, s512, consume)
	}
	if err != nil {
		return err
	}
	if n != e.size {
		return refuse(e.path, RuleChanged, "file holds %d bytes, not its listed %d: the medium may be damaged", n, e.size)
	}
	file := File{Path: e.path, Size: n}
	copy(file.SHA256[:], s256.Sum(nil))
	copy(file.SHA512[:], s512.Sum(nil))
	cp.m.Files = append(cp.m.Files, file)
	if isDoc {
		cp.m.Document = doc
	}
	return nil
}

// copySmall reads a small file in one go on this goroutine.
func (cp *copier) copySmall(e entry, r io.Reader, s512 hash.Hash, consume func([]byte) error) error {
	buf := make([]byte, max(e.size+1, 512))
	for {
		k, rerr := readFull(r, buf)
		if k > 0 {
			if err := consume(buf[:k]); err != nil {
				return err
			}
			s512.Write(buf[:k])
		}
		if rerr == io.EOF {
			return nil
		}
		if rerr != nil {
			return fmt.Errorf("bundle: %s: read: %w", displayName(e.path), rerr)
		}
	}
}

// pipeBuffers is how many BufferSize buffers a large file's pipeline uses.
const pipeBuffers = 4

type chunk struct {
	b   []byte
	err error
}

// copyLarge runs three stages at once, so that two cores stay busy: a
// goroutine reads, this goroutine hashes SHA-256 and writes, and another
// goroutine hashes SHA-512 and hands the buffer back to the reader.
func (cp *copier) copyLarge(e entry, r io.Reader, s512 hash.Hash, consume func([]byte) error) error {
	if cp.pool == nil {
		cp.pool = make(chan []byte, pipeBuffers)
		for range pipeBuffers {
			cp.pool <- make([]byte, BufferSize)
		}
	}
	free := cp.pool
	filled := make(chan chunk, pipeBuffers)
	to512 := make(chan []byte, pipeBuffers)
	stop := make(chan struct{})
	var readers, hashers sync.WaitGroup
	readers.Add(1)
	go func() {
		defer readers.Done()
		defer close(filled)
		for {
			var buf []byte
			select {
			case buf = <-free:
			case <-stop:
				return
			}
			k, err := readFull(r, buf)
			select {
			case filled <- chunk{buf[:k], err}:
			case <-stop:
				return
			}
			if err != nil {
				return
			}
		}
	}()
	hashers.Add(1)
	go func() {
		defer hashers.Done()
		for b := range to512 {
			s512.Write(b)
			free <- b[:cap(b)]
		}
	}()
	open512 := true
	defer func() {
		close(stop)
		if open512 {
			close(to512)
		}
		readers.Wait()
		hashers.Wait()
		if len(free) != pipeBuffers {
			cp.pool = nil // a buffer may still be held: do not reuse the pool
		}
	}()
	for c := range filled {
		if len(c.b) > 0 {
			if err := consume(c.b); err != nil {
				return err
			}
			to512 <- c.b
		} else {
			free <- c.b[:cap(c.b)]
		}
		if c.err == io.EOF {
			break
		}
		if c.err != nil {
			return fmt.Errorf("bundle: %s: read: %w", displayName(e.path), c.err)
		}
	}
	close(to512)
	open512 = false
	hashers.Wait()
	return nil
}

// readFull fills buf unless the reader ends first; it returns io.EOF only
// with the last, possibly empty, chunk.
func readFull(r io.Reader, buf []byte) (int, error) {
	n := 0
	for n < len(buf) {
		k, err := r.Read(buf[n:])
		n += k
		if err != nil {
			return n, err
		}
		if k == 0 {
			// A reader that returns nothing and no error: try again, but not forever.
			k, err = r.Read(buf[n:])
			n += k
			if err != nil {
				return n, err
			}
			if k == 0 {
				return n, io.ErrNoProgress
			}
		}
	}
	return n, nil
}
