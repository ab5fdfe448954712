package bundle

import (
	"archive/tar"
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"slices"
	"strings"
	"time"
)

// MaxTarTrailer caps the bytes accepted after a tar archive's end marker;
// they must all be zero (block padding).
const MaxTarTrailer = 64 << 10

// TarModTime is the modification time of every entry WriteTar writes.
var TarModTime = time.Unix(0, 0).UTC()

// ImportTar checks an uncompressed tar of a bundle and copies it into
// workdir, like Import. open is called twice: a first pass reads only the
// headers and checks every entry before anything is written (skipping
// contents by seeking when the reader can); the second pass copies and
// hashes. A stream that differs between the passes is refused.
//
// Only regular files and directories are accepted; a leading "./" on names
// and an entry for "." itself are allowed, as written by tar -C dir -cf x .
func ImportTar(open func() (io.ReadCloser, error), workdir string, opts Options) (m *Manifest, err error) {
	c := newChecker(opts.Limits, opts.Layout)
	r, err := open()
	if err != nil {
		return nil, fmt.Errorf("bundle: open tar: %w", err)
	}
	err = scanTar(r, c)
	r.Close()
	if err != nil {
		return nil, err
	}
	if err := c.finish(); err != nil {
		return nil, err
	}

	s, err := newSink(workdir, 0o600, 0o700)
	if err != nil {
		return nil, err
	}
	defer func() { err = s.close(err) }()
	r, err = open()
	if err != nil {
		return nil, fmt.Errorf("bundle: open tar: %w", err)
	}
	defer r.Close()
	return copyTar(r, c, s, workdir, opts.Progress)
}

// tarEntry interprets one header: the checked path components and whether
// it is a directory. ok is false for the "." entry.
func tarEntry(hdr *tar.Header) (parts []string, dir, ok bool, err error) {
	name := hdr.Name
	switch hdr.Typeflag {
	case tar.TypeReg, tar.TypeRegA: //nolint:staticcheck // old tars write TypeRegA
	case tar.TypeDir:
		dir = true
	case tar.TypeSymlink:
		return nil, false, false, refuse(name, RuleSymlink, "symbolic links are not allowed in a bundle")
	case tar.TypeLink:
		return nil, false, false, refuse(name, RuleHardLink, "hard links are not allowed in a bundle")
	case tar.TypeChar, tar.TypeBlock, tar.TypeFifo:
		return nil, false, false, refuse(name, RuleSpecial, "special files (devices, fifos) are not allowed in a bundle")
	default:
		return nil, false, false, refuse(name, RuleSpecial, "tar entry type %q is not allowed: only regular files and directories", hdr.Typeflag)
	}
	name = strings.TrimPrefix(name, "./")
	if dir {
		if name == "" || name == "." {
			return nil, true, false, nil
		}
		name = strings.TrimSuffix(name, "/")
	} else if strings.HasSuffix(name, "/") {
		return nil, false, false, refuse(hdr.Name, RuleTar, "regular file name ends in a slash")
	}
	if name == "" && hdr.Name != "" {
		return nil, false, false, refuse(hdr.Name, RuleEmptyName, "empty name")
	}
	parts, err = splitPath(name)
	if err != nil {
		var e *Error
		if errors.As(err, &e) {
			e.Entry = hdr.Name
		}
		return nil, false, false, err
	}
	if !dir && hdr.Size < 0 {
		return nil, false, false, refuse(hdr.Name, RuleTar, "negative size")
	}
	return parts, dir, true, nil
}

func tarError(err error) error {
	return &Error{Rule: RuleTar, Msg: "malformed tar: " + strings.TrimPrefix(err.Error(), "archive/tar: ") + ": write the bundle again with airlock bundle create"}
}

// endReader notes whether the underlying reader ran dry, so that an archive
// cut at a header boundary (which archive/tar reports as a clean end) is
// told apart from one that ends with its end-of-archive marker.
type endReader struct {
	r   io.Reader
	eof bool
}

func (e *endReader) Read(b []byte) (int, error) {
	n, err := e.r.Read(b)
	if err == io.EOF {
		e.eof = true
	}
	return n, err
}

// endReadSeeker keeps the seeking that lets archive/tar skip contents.
type endReadSeeker struct {
	*endReader
	s io.Seeker
}

func (e endReadSeeker) Seek(off int64, whence int) (int64, error) { return e.s.Seek(off, whence) }

// tarReader returns a tar reader over r and a function that reports whether
// the archive ended without its end marker.
func tarReader(r io.Reader) (*tar.Reader, func() bool) {
	er := &endReader{r: r}
	if s, ok := r.(io.Seeker); ok {
		return tar.NewReader(endReadSeeker{er, s}), func() bool { return er.eof }
	}
	return tar.NewReader(er), func() bool { return er.eof }
}

var errTruncated = &Error{Rule: RuleTar, Msg: "malformed tar: the archive ends without its end marker: the file is truncated, copy it again"}

func scanTar(r io.Reader, c *checker) error {
	tr, truncated := tarReader(r)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			if truncated() {
				return errTruncated
			}
			break
		}
		if err != nil {
			return tarError(err)
		}
		parts, dir, ok, err := tarEntry(hdr)
		if err != nil {
			return err
		}
		if !ok {
			continue
		}
		if err := c.add(parts, dir, hdr.Size); err != nil {
			return err
		}
	}
	return checkTrailer(r)
}

// checkTrailer reads what follows the end-of-archive marker.
func checkTrailer(r io.Reader) error {
	rest, err := io.ReadAll(io.LimitReader(r, MaxTarTrailer+1))
	if err != nil {
		return tarError(err)
	}
	if len(rest) > MaxTarTrailer {
		return &Error{Rule: RuleTar, Msg: fmt.Sprintf("more than %d bytes after the end of the archive (MaxTarTrailer)", MaxTarTrailer)}
	}
	if bytes.ContainsFunc(rest, func(r rune) bool { return r != 0 }) {
		return &Error{Rule: RuleTar, Msg: "data after the end of the archive"}
	}
	return nil
}

func copyTar(r io.Reader, c *checker, s *sink, dir string, progress func(Progress)) (*Manifest, error) {
	want := make(map[string]entry, len(c.entries))
	for _, e := range c.entries {
		want[e.path] = e
	}
	m := &Manifest{Dir: dir}
	cp := newCopier(c, m, s.create, progress)
	seen := map[string]bool{}
	tr, truncated := tarReader(r)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			if truncated() {
				return nil, errTruncated
			}
			break
		}
		if err != nil {
			return nil, tarError(err)
		}
		parts, isDir, ok, err := tarEntry(hdr)
		if err != nil {
			return nil, err
		}
		if !ok {
			continue
		}
		p := strings.Join(parts, "/")
		e, listed := want[p]
		if !listed || e.dir != isDir || (!isDir && e.size != hdr.Size) || (seen[p] && !isDir) {
			return nil, refuse(p, RuleChanged, "tar changed between the two reads: import again")
		}
		seen[p] = true
		if isDir {
			if err := s.mkdirAll(p); err != nil {
				return nil, err
			}
			continue
		}
		if len(parts) > 1 {
			if err := s.mkdirAll(path.Dir(p)); err != nil {
				return nil, err
			}
		}
		if err := cp.copy(e, tr); err != nil {
			return nil, err
		}
	}
	for _, e := range c.entries {
		if e.dir {
			m.Dirs = append(m.Dirs, e.path)
			if !seen[e.path] {
				if err := s.mkdirAll(e.path); err != nil {
					return nil, err
				}
			}
		} else if !seen[e.path] {
			return nil, refuse(e.path, RuleChanged, "tar changed between the two reads: import again")
		}
	}
	return cp.manifest(), nil
}

// WriteTar writes the bundle held in src to w as a deterministic,
// uncompressed tar: entries sorted by path, directories included, every
// entry with mtime TarModTime, uid and gid 0, no owner names, mode 0644 for
// files and 0755 for directories. It applies the same checks as Import.
func WriteTar(w io.Writer, src fs.FS, opts Options) (*Manifest, error) {
	c := newChecker(opts.Limits, opts.Layout)
	if err := walkFS(src, c, nil, 0); err != nil {
		return nil, err
	}
	if err := c.finish(); err != nil {
		return nil, err
	}
	entries := slices.Clone(c.entries)
	slices.SortFunc(entries, func(a, b entry) int { return strings.Compare(a.path, b.path) })
	tw := tar.NewWriter(w)
	m := &Manifest{}
	cp := newCopier(c, m, func(e entry) (io.WriteCloser, error) {
		hdr := &tar.Header{Typeflag: tar.TypeReg, Name: e.path, Size: e.size, Mode: 0o644, ModTime: TarModTime}
		if err := tw.WriteHeader(hdr); err != nil {
			return nil, fmt.Errorf("bundle: %s: write tar: %w", displayName(e.path), err)
		}
		return nopCloser{tw}, nil
	}, opts.Progress)
	for _, e := range entries {
		if e.dir {
			hdr := &tar.Header{Typeflag: tar.TypeDir, Name: e.path + "/", Mode: 0o755, ModTime: TarModTime}
			if err := tw.WriteHeader(hdr); err != nil {
				return nil, fmt.Errorf("bundle: %s: write tar: %w", displayName(e.path), err)
			}
			m.Dirs = append(m.Dirs, e.path)
			continue
		}
		if err := cp.fromFS(src, e); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, fmt.Errorf("bundle: write tar: %w", err)
	}
	return cp.manifest(), nil
}

type nopCloser struct{ io.Writer }

func (nopCloser) Close() error { return nil }
