package content

import (
	"errors"
	"io"
	"path"
	"runtime"
	"strings"
	"sync"
)

// A streamed comparison reads both artifacts at once, front to back, and
// holds a file's text only until the same path has been seen in the other
// artifact: an unchanged file is dropped at once, a changed or added one
// goes to a diff worker, which keeps only the hunks the review shows. A
// reader that would hold more than half of Limits.MaxTextBytes of text
// waits, unless waiting could not end: nothing is being diffed and the
// other reader is done, or waiting too (then the reader whose file pairs
// with one the other has read goes first, or both go when neither's
// does). When both archives list their files in the same order, text held
// at any time then stays under two largest files' worth (2 ×
// Limits.MaxTextBytes); archives listing them in different orders still
// finish, within the caps Read enforces. At most one diff of a large file runs at a time, so that
// the line diff's scratch memory is that of one large file, and the
// buffers of dropped texts are reused (see textPool).

// Artifact is a release artifact to review: its name, which chooses the
// format as in Read, its bytes and their size.
type Artifact struct {
	Name string
	R    io.ReaderAt
	Size int64
}

// ArtifactError is the error of CompareArtifacts: which artifact could not
// be read (Previous: the previous release's) and why.
type ArtifactError struct {
	Previous bool
	Err      error
}

func (e *ArtifactError) Error() string { return e.Err.Error() }
func (e *ArtifactError) Unwrap() error { return e.Err }

var (
	// errDuplicate stops a streamed comparison at a path seen twice in one
	// archive: which copy wins is known only at the end.
	errDuplicate = errors.New("path appears twice; comparing in memory")
	// errStopped stops a reader when the other one failed.
	errStopped = errors.New("comparison stopped")
)

// CompareArtifacts reads old (nil for a first release) and new and compares
// them: the Diff is the one Compare returns for the Trees Read returns, but
// the artifacts are read at once and text is held only while it is diffed,
// so that memory grows with the largest changed files rather than with the
// release. The Files in the Diff keep no text (File.Text reports false),
// except package.json files. An error is an *ArtifactError; when both
// artifacts are unreadable it may name either, and CompareArtifacts(nil,
// new, lim) then says whether new is readable.
func CompareArtifacts(old *Artifact, new Artifact, lim Limits) (*Diff, error) {
	d, err := compareStreamed(old, new, lim)
	if !errors.Is(err, errDuplicate) {
		return d, err
	}
	nt, err := Read(new.Name, new.R, new.Size, lim)
	if err != nil {
		return nil, &ArtifactError{Err: err}
	}
	var ot *Tree
	if old != nil {
		if ot, err = Read(old.Name, old.R, old.Size, lim); err != nil {
			return nil, &ArtifactError{Previous: true, Err: err}
		}
	}
	return Compare(ot, nt, lim), nil
}

// streamCompare is the state shared by the two readers and the workers.
type streamCompare struct {
	lim    Limits
	budget int64

	mu       sync.Mutex
	cond     *sync.Cond
	held     int64 // bytes of text read and not yet dropped
	peakHeld int64 // the most held at once
	waiting  [2]bool
	want     [2]string // path of the file a waiting reader would read
	done     [2]bool   // reader finished: every file registered
	seen     [2]map[string]*File
	pending  [2]map[string]heldText // text waiting for the other side's file
	queue    []*diffJob
	inflight int // jobs queued or running
	diffed   map[string]*FileChange
	failed   bool
	pool     textPool
	// big holds the line differ of large files: one diff of a large file
	// runs at a time.
	big chan *lineDiffer
}

// bigDiffBytes is the text (old and new) from which a diff counts as large.
const bigDiffBytes = 1 << 20

// heldText is a text a streamed comparison holds, and its pooled buffer
// (nil when it has none).
type heldText struct {
	text string
	buf  []byte
}

// streamDone, when set (tests), sees each streamed comparison once its
// readers and workers are done.
var streamDone func(*streamCompare)

// streamSide is one reader's handle; index 0 is the old artifact.
type streamSide struct {
	s    *streamCompare
	side int
}

type diffJob struct {
	c        FileChange
	old, new heldText
	oldHas   bool
	held     int64
}

func compareStreamed(old *Artifact, new Artifact, lim Limits) (*Diff, error) {
	arts := [2]*Artifact{old, &new}
	var builders [2]*builder
	for i, a := range arts {
		if a == nil {
			continue
		}
		format, err := checkArtifact(a.Name, a.R, a.Size, lim)
		if err != nil {
			return nil, &ArtifactError{Previous: i == 0, Err: err}
		}
		builders[i] = newBuilder(a.Name, format, lim)
	}
	s := &streamCompare{lim: lim, budget: lim.MaxTextBytes / 2, diffed: map[string]*FileChange{}, big: make(chan *lineDiffer, 1)}
	s.pool.max = lim.MaxTextBytes
	s.big <- newLineDiffer()
	s.cond = sync.NewCond(&s.mu)
	for i := range 2 {
		s.seen[i] = map[string]*File{}
		s.pending[i] = map[string]heldText{}
		if builders[i] == nil {
			s.done[i] = true
		} else {
			builders[i].stream = &streamSide{s: s, side: i}
		}
	}
	var workers sync.WaitGroup
	for range max(1, runtime.GOMAXPROCS(0)) {
		workers.Go(s.work)
	}
	var readers sync.WaitGroup
	var errs [2]error
	for i, b := range builders {
		if b == nil {
			continue
		}
		readers.Go(func() {
			errs[i] = b.read(arts[i].R, arts[i].Size)
			s.finish(i, errs[i])
		})
	}
	readers.Wait()
	workers.Wait()
	if streamDone != nil {
		streamDone(s)
	}
	for _, err := range errs {
		if errors.Is(err, errDuplicate) {
			return nil, errDuplicate
		}
	}
	for i := 1; i >= 0; i-- {
		if errs[i] != nil && !errors.Is(errs[i], errStopped) {
			return nil, &ArtifactError{Previous: i == 0, Err: errs[i]}
		}
	}
	var ot *Tree
	if builders[0] != nil {
		ot = builders[0].finish()
	}
	return compare(ot, builders[1].finish(), lim, s.diffed), nil
}

// acquire waits for room to hold the n bytes of text of the file at p,
// and returns a buffer of n bytes to read it into.
func (ss *streamSide) acquire(p string, n int64) ([]byte, error) {
	s, side, other := ss.s, ss.side, 1-ss.side
	s.mu.Lock()
	defer s.mu.Unlock()
	s.waiting[side], s.want[side] = true, p
	s.cond.Broadcast()
	for !s.failed && s.held > 0 && s.held+n > s.budget {
		if s.inflight == 0 && (s.done[other] || s.waiting[other] && (s.pairs(side) || !s.pairs(other))) {
			break // waiting could not end, or this file pairs first
		}
		s.cond.Wait()
	}
	s.waiting[side], s.want[side] = false, ""
	if s.failed {
		return nil, errStopped
	}
	s.held += n
	s.peakHeld = max(s.peakHeld, s.held)
	if keepsText(p) {
		return make([]byte, n), nil // the tree keeps it: not pooled
	}
	return s.pool.get(int(n)), nil
}

// pairs reports whether the file the reader of side waits to read pairs
// with one the other reader has seen. s.mu is held.
func (s *streamCompare) pairs(side int) bool {
	_, ok := s.seen[1-side][s.want[side]]
	return ok
}

// release gives back n bytes acquired for a text that is not held, and
// its buffer.
func (ss *streamSide) release(n int64, buf []byte) {
	if ss == nil {
		return
	}
	s := ss.s
	s.mu.Lock()
	s.held -= n
	s.pool.put(buf)
	s.cond.Broadcast()
	s.mu.Unlock()
}

// keepsText reports whether a streamed comparison keeps the text of the
// file at p in its tree: the manifest signals read package.json files.
func keepsText(p string) bool { return path.Base(p) == "package.json" }

// register takes a file of this side's tree, with its text when kept, and
// pairs it with the other side's file of the same path.
func (ss *streamSide) register(f *File) error {
	s, side, other := ss.s, ss.side, 1-ss.side
	t, has := heldText{text: f.text, buf: f.pooled}, f.hasText
	f.pooled = nil
	if !keepsText(f.Path) {
		f.text, f.hasText = "", false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.failed {
		return errStopped
	}
	s.seen[side][f.Path] = f
	var o, n *File
	var ot, nt heldText
	var ohas, nhas bool
	if side == 0 {
		o, ot, ohas = f, t, has
	} else {
		n, nt, nhas = f, t, has
	}
	g, paired := s.seen[other][f.Path]
	switch {
	case paired:
		gt, ok := s.pending[other][f.Path]
		delete(s.pending[other], f.Path)
		if side == 0 {
			n, nt, nhas = g, gt, ok
		} else {
			o, ot, ohas = g, gt, ok
		}
	case !s.done[other]:
		if has {
			s.pending[side][f.Path] = t
		}
		s.cond.Broadcast() // the other reader may be waiting with this path
		return nil
	}
	s.resolve(o, ot, ohas, n, nt, nhas)
	return nil
}

// resolve queues the diff of o and n, or drops their text if nothing
// needs it. s.mu is held.
func (s *streamCompare) resolve(o *File, ot heldText, ohas bool, n *File, nt heldText, nhas bool) {
	var held int64
	if ohas {
		held += int64(len(ot.text))
	}
	if nhas {
		held += int64(len(nt.text))
	}
	c, differs := changeOf(o, n)
	if !differs || !needsText(&c) {
		s.drop(held, ot, nt)
		return
	}
	s.queue = append(s.queue, &diffJob{c: c, old: ot, oldHas: ohas, new: nt, held: held})
	s.inflight++
	s.cond.Broadcast()
}

// drop gives back held bytes of text and the buffers of texts. s.mu is
// held.
func (s *streamCompare) drop(held int64, ts ...heldText) {
	s.held -= held
	for _, t := range ts {
		s.pool.put(t.buf)
	}
	s.cond.Broadcast()
}

// finish records that a reader is done (err nil) or failed; the other
// side's files still waiting are now added or removed.
func (s *streamCompare) finish(side int, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.done[side] = true
	if err != nil {
		s.failed = true
		s.queue = nil
		s.cond.Broadcast()
		return
	}
	other := 1 - side
	for p, t := range s.pending[other] {
		if other == 0 {
			s.resolve(s.seen[0][p], t, true, nil, heldText{}, false)
		} else {
			s.resolve(nil, heldText{}, false, s.seen[1][p], t, true)
		}
	}
	clear(s.pending[other])
	s.cond.Broadcast()
}

// work diffs queued jobs until both readers are done and the queue is
// empty, or the comparison failed.
func (s *streamCompare) work() {
	small := newLineDiffer()
	for {
		s.mu.Lock()
		for len(s.queue) == 0 && !s.failed && !(s.done[0] && s.done[1]) {
			s.cond.Wait()
		}
		if len(s.queue) == 0 || s.failed {
			s.mu.Unlock()
			return
		}
		j := s.queue[0]
		s.queue[0] = nil
		s.queue = s.queue[1:]
		s.mu.Unlock()

		ld := small
		if j.held >= bigDiffBytes {
			ld = <-s.big
		}
		c := &j.c
		diffFile(c, j.old.text, j.new.text, true, s.lim, ld)
		if c.Old != nil && c.New.facts(s.lim.MaxHitsPerFile).longestLine >= minifiedLineBytes {
			c.Old.factsOf(j.old.text, j.oldHas, s.lim.MaxHitsPerFile) // fileSignals compares line lengths
		}
		if ld != small {
			s.big <- ld
		}
		// The texts' buffers go back to the pool: keep nothing of them.
		compactHunks(c.Hunks)
		ot, nt := j.old, j.new
		j.old, j.new = heldText{}, heldText{} // s.diffed keeps c, and so j

		s.mu.Lock()
		s.diffed[c.Path] = c
		s.inflight--
		s.drop(j.held, ot, nt)
		s.mu.Unlock()
	}
}

// compactHunks copies the hunks' lines out of the file text into one
// string, so that the text can be dropped.
func compactHunks(hs []Hunk) {
	n := 0
	for _, h := range hs {
		for _, l := range h.Lines {
			n += len(l.Text)
		}
	}
	var sb strings.Builder
	sb.Grow(n)
	for _, h := range hs {
		for _, l := range h.Lines {
			sb.WriteString(l.Text)
		}
	}
	all := sb.String()
	off := 0
	for _, h := range hs {
		for k := range h.Lines {
			m := len(h.Lines[k].Text)
			h.Lines[k].Text = all[off : off+m]
			off += m
		}
	}
}
