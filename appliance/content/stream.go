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
// goes to a diff worker, which keeps only the hunks the review shows. Text
// held at any time stays under two largest files' worth (2 ×
// Limits.MaxTextBytes): a reader that would go over waits, unless waiting
// could not end (nothing being diffed and the other reader waiting or
// done), so that archives listing their files in different orders still
// finish, within the caps Read enforces.

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
	waiting  [2]bool
	done     [2]bool // reader finished: every file registered
	seen     [2]map[string]*File
	pending  [2]map[string]string // text waiting for the other side's file
	queue    []*diffJob
	inflight int // jobs queued or running
	diffed   map[string]*FileChange
	failed   bool
}

// streamSide is one reader's handle; index 0 is the old artifact.
type streamSide struct {
	s    *streamCompare
	side int
}

type diffJob struct {
	c                FileChange
	oldText, newText string
	oldHas           bool
	held             int64
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
	s := &streamCompare{lim: lim, budget: 2 * lim.MaxTextBytes, diffed: map[string]*FileChange{}}
	s.cond = sync.NewCond(&s.mu)
	for i := range 2 {
		s.seen[i] = map[string]*File{}
		s.pending[i] = map[string]string{}
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

// acquire waits for room to hold n more bytes of text.
func (ss *streamSide) acquire(n int64) error {
	if ss == nil {
		return nil
	}
	s, other := ss.s, 1-ss.side
	s.mu.Lock()
	defer s.mu.Unlock()
	s.waiting[ss.side] = true
	s.cond.Broadcast()
	for !s.failed && s.held > 0 && s.held+n > s.budget && (s.inflight > 0 || !(s.waiting[other] || s.done[other])) {
		s.cond.Wait()
	}
	s.waiting[ss.side] = false
	if s.failed {
		return errStopped
	}
	s.held += n
	return nil
}

// release gives back n bytes acquired for a text that is not held.
func (ss *streamSide) release(n int64) {
	if ss == nil {
		return
	}
	ss.s.mu.Lock()
	ss.s.held -= n
	ss.s.cond.Broadcast()
	ss.s.mu.Unlock()
}

// keepsText reports whether a streamed comparison keeps the text of the
// file at p in its tree: the manifest signals read package.json files.
func keepsText(p string) bool { return path.Base(p) == "package.json" }

// register takes a file of this side's tree, with its text when kept, and
// pairs it with the other side's file of the same path.
func (ss *streamSide) register(f *File) error {
	s, side, other := ss.s, ss.side, 1-ss.side
	text, has := f.text, f.hasText
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
	var otext, ntext string
	var ohas, nhas bool
	if side == 0 {
		o, otext, ohas = f, text, has
	} else {
		n, ntext, nhas = f, text, has
	}
	g, paired := s.seen[other][f.Path]
	switch {
	case paired:
		t, ok := s.pending[other][f.Path]
		delete(s.pending[other], f.Path)
		if side == 0 {
			n, ntext, nhas = g, t, ok
		} else {
			o, otext, ohas = g, t, ok
		}
	case !s.done[other]:
		if has {
			s.pending[side][f.Path] = text
		}
		return nil
	}
	s.resolve(o, otext, ohas, n, ntext, nhas)
	return nil
}

// resolve queues the diff of o and n, or drops their text if nothing
// needs it. s.mu is held.
func (s *streamCompare) resolve(o *File, otext string, ohas bool, n *File, ntext string, nhas bool) {
	var held int64
	if ohas {
		held += int64(len(otext))
	}
	if nhas {
		held += int64(len(ntext))
	}
	c, differs := changeOf(o, n)
	if !differs || !needsText(&c) {
		s.held -= held
		s.cond.Broadcast()
		return
	}
	s.queue = append(s.queue, &diffJob{c: c, oldText: otext, oldHas: ohas, newText: ntext, held: held})
	s.inflight++
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
			s.resolve(s.seen[0][p], t, true, nil, "", false)
		} else {
			s.resolve(nil, "", false, s.seen[1][p], t, true)
		}
	}
	clear(s.pending[other])
	s.cond.Broadcast()
}

// work diffs queued jobs until both readers are done and the queue is
// empty, or the comparison failed.
func (s *streamCompare) work() {
	ld := newLineDiffer()
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

		c := &j.c
		diffFile(c, j.oldText, j.newText, true, s.lim, ld)
		if c.Old != nil && c.New.facts(s.lim.MaxHitsPerFile).longestLine >= minifiedLineBytes {
			c.Old.factsOf(j.oldText, j.oldHas, s.lim.MaxHitsPerFile) // fileSignals compares line lengths
		}
		compactHunks(c.Hunks)

		s.mu.Lock()
		s.diffed[c.Path] = c
		s.held -= j.held
		s.inflight--
		s.cond.Broadcast()
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
