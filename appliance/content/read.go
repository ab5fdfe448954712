package content

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"

	"github.com/klauspost/compress/gzip"
)

// ReadFile reads the artifact stored at file; its format comes from its name
// and first bytes (see Read).
func ReadFile(file string, lim Limits) (*Tree, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, fmt.Errorf("opening artifact: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("opening artifact: %w", err)
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("artifact %s is not a regular file", q(file))
	}
	return Read(filepath.Base(file), f, st.Size(), lim)
}

// Read reads an artifact of size bytes named name. The format is chosen by
// name and checked against the first bytes: .tgz is an npm tarball (the
// first path component, normally package/, is stripped), .tar.gz a
// compressed tar, .tar a tar, .whl a wheel, .zip a zip; an unnamed
// archive is recognised by its magic bytes, and anything else is a single
// plain file. Tar streams are read once, front to back; zip archives are
// read through r's ReadAt.
func Read(name string, r io.ReaderAt, size int64, lim Limits) (*Tree, error) {
	format, err := checkArtifact(name, r, size, lim)
	if err != nil {
		return nil, err
	}
	b := newBuilder(name, format, lim)
	if err := b.read(r, size); err != nil {
		return nil, err
	}
	return b.finish(), nil
}

// checkArtifact checks an artifact's size and first bytes and returns its
// format, as Read does before reading it.
func checkArtifact(name string, r io.ReaderAt, size int64, lim Limits) (Format, error) {
	if size < 0 {
		return "", fmt.Errorf("artifact %s has negative size", q(name))
	}
	if size > lim.MaxArchiveBytes {
		return "", fmt.Errorf("artifact %s is %d bytes, more than the %d allowed", q(name), size, lim.MaxArchiveBytes)
	}
	head := make([]byte, 512)
	n, err := r.ReadAt(head, 0)
	if err != nil && err != io.EOF {
		return "", fmt.Errorf("reading artifact %s: %w", q(name), err)
	}
	return sniff(name, head[:n])
}

// read reads every entry of the artifact r of size bytes into b.
func (b *builder) read(r io.ReaderAt, size int64) error {
	name, format := b.t.Name, b.t.Format
	sr := io.NewSectionReader(r, 0, size)
	var err error
	switch format {
	case FormatNPM, FormatTarGz:
		err = b.readTarGz(sr, size)
	case FormatTar:
		err = b.readTar(sr)
	case FormatZip, FormatWheel:
		err = b.readZip(sr, size)
	default:
		err = b.add(entry{name: path.Base(strings.ReplaceAll(name, `\`, "/")), typ: TypeFile, mode: 0o644, size: size}, sr)
	}
	if err != nil {
		return fmt.Errorf("reading %s %s: %w", format, q(name), err)
	}
	return nil
}

var (
	magicGzip = []byte{0x1f, 0x8b}
	magicZip  = []byte("PK\x03\x04")
	magicZipE = []byte("PK\x05\x06") // empty zip
)

func sniff(name string, head []byte) (Format, error) {
	lower := strings.ToLower(name)
	isGzip := bytes.HasPrefix(head, magicGzip)
	isZip := bytes.HasPrefix(head, magicZip) || bytes.HasPrefix(head, magicZipE)
	isTar := len(head) >= 262 && string(head[257:262]) == "ustar"
	switch {
	case strings.HasSuffix(lower, ".tgz"):
		if !isGzip {
			return "", fmt.Errorf("artifact %s is named .tgz but is not gzip-compressed; check that it is the npm tarball", q(name))
		}
		return FormatNPM, nil
	case strings.HasSuffix(lower, ".tar.gz"):
		if !isGzip {
			return "", fmt.Errorf("artifact %s is named .tar.gz but is not gzip-compressed", q(name))
		}
		return FormatTarGz, nil
	case strings.HasSuffix(lower, ".whl"):
		if !isZip {
			return "", fmt.Errorf("artifact %s is named .whl but is not a zip archive", q(name))
		}
		return FormatWheel, nil
	case strings.HasSuffix(lower, ".zip"):
		if !isZip {
			return "", fmt.Errorf("artifact %s is named .zip but is not a zip archive", q(name))
		}
		return FormatZip, nil
	case strings.HasSuffix(lower, ".tar"):
		return FormatTar, nil
	case isZip:
		return FormatZip, nil
	case isTar:
		return FormatTar, nil
	}
	return FormatFile, nil
}

// entry is one archive member as the container describes it.
type entry struct {
	name       string
	typ        EntryType
	dir        bool
	mode       Mode
	size       int64
	link       string
	compressed int64 // compressed size for zip entries, -1 if unknown
	unknown    string
}

type builder struct {
	lim      Limits
	t        *Tree
	index    map[string]int    // path -> position in t.Files
	folded   map[string]string // lower-cased path -> first path seen
	entries  int
	retained int64
	buf      []byte      // read buffer
	stream   *streamSide // set when a streamed comparison reads the tree
}

func newBuilder(name string, format Format, lim Limits) *builder {
	return &builder{
		lim:    lim,
		t:      &Tree{Name: name, Format: format},
		index:  make(map[string]int),
		folded: make(map[string]string),
	}
}

func (b *builder) signal(s Signal) { b.t.Signals = append(b.t.Signals, s) }

func (b *builder) finish() *Tree {
	slices.SortFunc(b.t.Files, func(x, y *File) int { return strings.Compare(x.Path, y.Path) })
	sortSignals(b.t.Signals)
	return b.t
}

// cleanName turns an entry name into a tree path and reports whether the
// name is unsafe to extract. An unsafe path stays recognisable (it keeps
// its leading / or ..) so that it cannot collide with a safe one.
func cleanName(raw string) (p string, unsafe string) {
	name := raw
	if strings.ContainsRune(name, 0) {
		unsafe = "contains a NUL byte"
	}
	if strings.Contains(name, `\`) {
		if unsafe == "" {
			unsafe = "contains a backslash, a path separator on Windows"
		}
	}
	if strings.HasPrefix(name, "/") || (len(name) >= 2 && name[1] == ':') {
		unsafe = "is an absolute path"
	}
	for _, c := range strings.Split(strings.ReplaceAll(name, `\`, "/"), "/") {
		if c == ".." {
			unsafe = "climbs out of the package with .."
		}
	}
	p = path.Clean(name)
	if p == "." {
		p = ""
	}
	return p, unsafe
}

// add records one entry; r yields its content for regular files.
func (b *builder) add(e entry, r io.Reader) error {
	b.entries++
	if b.entries > b.lim.MaxEntries {
		return fmt.Errorf("more than %d entries; refusing the archive", b.lim.MaxEntries)
	}
	if len(e.name) > b.lim.MaxPathBytes {
		return fmt.Errorf("entry %s: name is %d bytes, more than the %d allowed", q(e.name[:64]+"…"), len(e.name), b.lim.MaxPathBytes)
	}
	p, unsafe := cleanName(e.name)
	if b.t.Format == FormatNPM {
		first, rest, _ := strings.Cut(strings.TrimPrefix(p, "./"), "/")
		if first != "package" && unsafe == "" {
			b.signal(Signal{Kind: KindUnsafePath, Severity: Warn, File: e.name,
				Detail: "npm tarball entry is not under package/; npm strips the first directory whatever its name"})
		}
		if unsafe == "" {
			p = rest
		}
	}
	if p == "" {
		return nil // the top directory itself
	}
	if depth := strings.Count(p, "/") + 1; depth > b.lim.MaxPathDepth {
		return fmt.Errorf("entry %s: path has %d levels, more than the %d allowed", q(e.name), depth, b.lim.MaxPathDepth)
	}
	if unsafe != "" {
		b.signal(Signal{Kind: KindUnsafePath, Severity: High, File: p, Detail: "entry name " + unsafe + "; an extractor may write outside the package"})
	}
	b.checkName(p)
	if e.dir {
		if e.mode&ModeWorldWritable != 0 {
			b.signal(Signal{Kind: KindModeChange, Severity: Warn, File: p, Detail: "directory is world-writable (mode " + e.mode.String() + ")"})
		}
		return nil
	}
	if e.size < 0 {
		return fmt.Errorf("entry %s: negative size", q(p))
	}
	if e.size > b.lim.MaxFileBytes {
		return fmt.Errorf("entry %s is %d bytes, more than the %d allowed for one file", q(p), e.size, b.lim.MaxFileBytes)
	}
	if b.t.Expanded+e.size > b.lim.MaxExpandedBytes {
		return fmt.Errorf("entry %s: archive expands to more than %d bytes; refusing it", q(p), b.lim.MaxExpandedBytes)
	}
	if e.compressed >= 0 && e.size > b.lim.RatioGraceBytes && e.size/max(e.compressed, 1) > b.lim.MaxCompressionRatio {
		return fmt.Errorf("entry %s expands %d times (%d to %d bytes), more than the %d allowed; a compression bomb?", q(p), e.size/max(e.compressed, 1), e.compressed, e.size, b.lim.MaxCompressionRatio)
	}
	f := &File{Path: p, Type: e.typ, Mode: e.mode & 07777, Link: e.link}
	switch e.typ {
	case TypeSymlink:
		sev, what := Warn, "symbolic link to "+q(e.link)
		if escapes(p, e.link) {
			sev, what = High, what+", which points outside the package"
		}
		b.signal(Signal{Kind: KindSymlink, Severity: sev, File: p, Detail: what})
	case TypeHardlink:
		sev, what := Warn, "hard link to "+q(e.link)
		if _, uns := cleanName(e.link); uns != "" || strings.HasPrefix(path.Clean(e.link), "../") {
			sev, what = High, what+", which is outside the package"
		}
		b.signal(Signal{Kind: KindHardlink, Severity: sev, File: p, Detail: what})
	case TypeSpecial:
		b.signal(Signal{Kind: KindSpecialFile, Severity: High, File: p, Detail: "archive entry is a " + e.unknown + ", not a regular file"})
	case TypeFile:
		if err := b.readContent(f, r, e.size); err != nil {
			return fmt.Errorf("entry %s: %w", q(p), err)
		}
	}
	b.t.Expanded += f.Size
	if _, dup := b.index[p]; dup && b.stream != nil {
		// The streamed comparison pairs each path's first copy; the
		// in-memory one reviews which copy wins.
		return errDuplicate
	}
	if i, dup := b.index[p]; dup {
		b.signal(Signal{Kind: KindDuplicate, Severity: High, File: p,
			Detail: "path appears more than once in the archive; extractors disagree on which copy wins (the last one is shown)"})
		if old := b.t.Files[i]; old.hasText {
			b.retained -= int64(len(old.text))
		}
		b.t.Files[i] = f
		return nil
	}
	fold := strings.ToLower(p)
	if other, ok := b.folded[fold]; ok {
		b.signal(Signal{Kind: KindCaseCollision, Severity: Warn, File: p,
			Detail: "differs from " + q(other) + " only in case; one overwrites the other on macOS and Windows"})
	} else {
		b.folded[fold] = p
	}
	b.index[p] = len(b.t.Files)
	b.t.Files = append(b.t.Files, f)
	if b.stream != nil {
		return b.stream.register(f)
	}
	return nil
}

// checkName flags invisible characters and invalid UTF-8 in a path.
func (b *builder) checkName(p string) {
	for i, r := range p {
		if r == 0xfffd && !strings.HasPrefix(p[i:], "\ufffd") {
			b.signal(Signal{Kind: KindInvisibleName, Severity: High, File: p, Detail: "file name is not valid UTF-8"})
			return
		}
		if hiddenInName(r) {
			b.signal(Signal{Kind: KindInvisibleName, Severity: High, File: p, Detail: "file name contains " + describeRune(r)})
			return
		}
	}
	if scripts := mixedScripts(p); scripts != "" {
		b.signal(Signal{Kind: KindDeceptiveText, Severity: High, File: p, Detail: "file name mixes scripts (" + scripts + ") in one word"})
	}
}

// escapes reports whether a symlink at p with target t resolves outside
// the package root.
func escapes(p, t string) bool {
	if strings.HasPrefix(t, "/") || strings.Contains(t, `\`) || (len(t) >= 2 && t[1] == ':') {
		return true
	}
	joined := path.Join(path.Dir(p), t)
	return joined == ".." || strings.HasPrefix(joined, "../")
}

// countReader counts the bytes read through it.
type countReader struct {
	r io.Reader
	n int64
}

func (c *countReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// bombGuard fails a decompressed stream that grows past the expanded cap or
// the compression ratio.
type bombGuard struct {
	r    io.Reader
	in   *countReader
	out  int64
	lim  Limits
	last string // name of the entry being read, for the error
}

var errBomb = errors.New("compression bomb")

func (g *bombGuard) Read(p []byte) (int, error) {
	n, err := g.r.Read(p)
	g.out += int64(n)
	if g.out > g.lim.MaxExpandedBytes+int64(g.lim.MaxEntries)*2048 {
		return n, fmt.Errorf("%w: stream expands to more than %d bytes (at entry %s)", errBomb, g.lim.MaxExpandedBytes, q(g.last))
	}
	if g.out > g.lim.RatioGraceBytes && g.out/max(g.in.n, 1) > g.lim.MaxCompressionRatio {
		return n, fmt.Errorf("%w: stream expands more than %d times (at entry %s)", errBomb, g.lim.MaxCompressionRatio, q(g.last))
	}
	return n, err
}

func (b *builder) readTarGz(r io.Reader, size int64) error {
	in := &countReader{r: r}
	zr, err := gzip.NewReader(in)
	if err != nil {
		return fmt.Errorf("not a gzip stream: %w", err)
	}
	g := &bombGuard{r: zr, in: in, lim: b.lim}
	return b.readTarStream(g, g)
}

func (b *builder) readTar(r io.Reader) error { return b.readTarStream(r, nil) }

func (b *builder) readTarStream(r io.Reader, g *bombGuard) error {
	tr := tar.NewReader(r)
	last := ""
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			if last == "" {
				return fmt.Errorf("not a readable tar archive: %w", err)
			}
			return fmt.Errorf("reading the tar entry after %s: %w", q(last), err)
		}
		last = h.Name
		if g != nil {
			g.last = h.Name
		}
		e := entry{name: h.Name, mode: Mode(h.Mode & 07777), size: 0, link: h.Linkname, compressed: -1}
		switch h.Typeflag {
		case tar.TypeReg, tar.TypeRegA, tar.TypeCont, tar.TypeGNUSparse:
			e.typ, e.size = TypeFile, h.Size
		case tar.TypeDir:
			e.dir = true
		case tar.TypeSymlink:
			e.typ = TypeSymlink
		case tar.TypeLink:
			e.typ = TypeHardlink
		case tar.TypeChar:
			e.typ, e.unknown = TypeSpecial, "character device"
		case tar.TypeBlock:
			e.typ, e.unknown = TypeSpecial, "block device"
		case tar.TypeFifo:
			e.typ, e.unknown = TypeSpecial, "named pipe"
		default:
			e.typ, e.unknown = TypeSpecial, fmt.Sprintf("tar entry of unknown type %q", h.Typeflag)
		}
		if err := b.add(e, tr); err != nil {
			return err
		}
	}
}

func (b *builder) readZip(r io.ReaderAt, size int64) error {
	zr, err := zip.NewReader(r, size)
	if err != nil && !errors.Is(err, zip.ErrInsecurePath) {
		return fmt.Errorf("not a readable zip archive: %w", err)
	}
	if len(zr.File) > b.lim.MaxEntries {
		return fmt.Errorf("%d entries, more than the %d allowed; refusing the archive", len(zr.File), b.lim.MaxEntries)
	}
	for _, zf := range zr.File {
		if err := b.addZip(zf); err != nil {
			return err
		}
	}
	return nil
}

func (b *builder) addZip(zf *zip.File) error {
	m := zf.Mode()
	e := entry{name: zf.Name, mode: unixMode(m), compressed: int64(min(zf.CompressedSize64, 1<<62))}
	if zf.UncompressedSize64 > 1<<62 {
		return fmt.Errorf("entry %s declares an absurd size %d", q(zf.Name), zf.UncompressedSize64)
	}
	e.size = int64(zf.UncompressedSize64)
	if zf.Flags&0x1 != 0 {
		return fmt.Errorf("entry %s is encrypted; cannot review it", q(zf.Name))
	}
	switch {
	case m.IsDir() || strings.HasSuffix(zf.Name, "/"):
		e.dir = true
		return b.add(e, nil)
	case m&fs.ModeSymlink != 0:
		e.typ = TypeSymlink
		if e.size > int64(b.lim.MaxPathBytes) {
			return fmt.Errorf("entry %s: symlink target is %d bytes, more than the %d allowed", q(zf.Name), e.size, b.lim.MaxPathBytes)
		}
		target, err := readZipEntry(zf, e.size)
		if err != nil {
			return fmt.Errorf("entry %s: %w", q(zf.Name), err)
		}
		e.link, e.size = string(target), 0
		return b.add(e, nil)
	case m&(fs.ModeDevice|fs.ModeCharDevice|fs.ModeNamedPipe|fs.ModeSocket|fs.ModeIrregular) != 0:
		e.typ, e.unknown, e.size = TypeSpecial, "special file ("+m.Type().String()+")", 0
		return b.add(e, nil)
	}
	e.typ = TypeFile
	// Check the declared size against the caps before opening anything.
	if e.size > b.lim.MaxFileBytes || b.t.Expanded+e.size > b.lim.MaxExpandedBytes {
		return b.add(e, nil)
	}
	rc, err := zf.Open()
	if err != nil {
		return fmt.Errorf("entry %s: %w", q(zf.Name), err)
	}
	defer rc.Close()
	return b.add(e, rc)
}

func readZipEntry(zf *zip.File, size int64) ([]byte, error) {
	rc, err := zf.Open()
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	buf, err := io.ReadAll(io.LimitReader(rc, size+1))
	if err != nil {
		return nil, err
	}
	if int64(len(buf)) != size {
		return nil, fmt.Errorf("content is %d bytes, not the %d declared", len(buf), size)
	}
	return buf, nil
}

// unixMode converts an fs.FileMode to Unix permission bits.
func unixMode(m fs.FileMode) Mode {
	u := Mode(m.Perm())
	if m&fs.ModeSetuid != 0 {
		u |= ModeSetuid
	}
	if m&fs.ModeSetgid != 0 {
		u |= ModeSetgid
	}
	if m&fs.ModeSticky != 0 {
		u |= ModeSticky
	}
	return u
}

// ReadDir reads an unpacked tree from disk, for comparing against trees
// that were never packed. Symbolic links are recorded, not followed.
func ReadDir(dir string, lim Limits) (*Tree, error) {
	b := newBuilder(filepath.Base(dir), FormatDir, lim)
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		if rel == "." {
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		e := entry{name: filepath.ToSlash(rel), mode: unixMode(info.Mode()), compressed: -1}
		m := info.Mode()
		switch {
		case m.IsDir():
			e.dir = true
			return b.add(e, nil)
		case m&fs.ModeSymlink != 0:
			e.typ = TypeSymlink
			if e.link, err = os.Readlink(p); err != nil {
				return err
			}
			return b.add(e, nil)
		case !m.IsRegular():
			e.typ, e.unknown = TypeSpecial, "special file ("+m.Type().String()+")"
			return b.add(e, nil)
		}
		e.typ, e.size = TypeFile, info.Size()
		f, err := os.Open(p)
		if err != nil {
			return err
		}
		defer f.Close()
		return b.add(e, f)
	})
	if err != nil {
		return nil, fmt.Errorf("reading directory %s: %w", q(dir), err)
	}
	return b.finish(), nil
}

// q quotes an artifact-supplied string for an error or a signal detail.
func q(s string) string { return `"` + Visible(s) + `"` }
