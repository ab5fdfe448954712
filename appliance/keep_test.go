package appliance

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"airlock.dev/airlock/appliance/audit"
	"airlock.dev/airlock/tuf"
)

// retryScript answers RetryExport with the sinks in order, then nil.
type retryScript struct {
	sinks  []Sink
	failed []error
}

func (r *retryScript) RetryExport(_ context.Context, failed error) (Sink, error) {
	r.failed = append(r.failed, failed)
	if len(r.sinks) == 0 {
		return nil, nil
	}
	s := r.sinks[0]
	r.sinks = r.sinks[1:]
	return s, nil
}

// signTo runs a two-holder ceremony with id exporting through sink.
func (s *scenario) signTo(id string, sink Sink, retry ExportRetry) (State, *scriptUI, error) {
	s.t.Helper()
	b := s.release("sigstore", "1.3.0", "", nil)
	ui := &scriptUI{confirm: map[string]bool{"alice": true, "bob": true}}
	c, err := New(Config{State: s.openState(), UI: ui, Clock: fixedClock(), Dev: true, Bundle: dirBundle(b),
		Keys: KeyURIs{"file:" + s.paths["alice"], "file:" + s.paths["bob"]}, Sink: sink, Retry: retry, ID: id})
	if err != nil {
		s.t.Fatal(err)
	}
	st, err := c.Run(context.Background())
	return st, ui, err
}

// steps returns "step/outcome" of the audit entries of ceremony id.
func steps(st *StateDir, id string) []string {
	var out []string
	for _, e := range st.Audit.Entries() {
		if e.Ceremony == id {
			out = append(out, e.Step+"/"+string(e.Outcome))
		}
	}
	return out
}

func checkResponseDir(t *testing.T, dir string, sha string) {
	t.Helper()
	rb, err := os.ReadFile(filepath.Join(dir, ResponseFile))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := tuf.ParseResponse(rb)
	if err != nil {
		t.Fatal(err)
	}
	if resp.SignedSHA256 != sha || len(resp.Signatures) != 2 {
		t.Fatalf("response %+v, want two signatures over %s", resp, sha)
	}
	rec, err := os.ReadFile(filepath.Join(dir, RecordFile))
	if err != nil {
		t.Fatal(err)
	}
	if tuf.SHA256Hex(rec) != resp.RecordSHA256 {
		t.Fatal("the record written is not the one the response names")
	}
	if _, err := audit.VerifyExport(rec); err != nil {
		t.Fatal(err)
	}
}

// A failed export after the holders approved ends with the response kept,
// says so (not "nothing was signed"), and the kept response is written out
// later without signing again; the audit log tells the story.
func TestExportFailureKeepsSignedResponse(t *testing.T) {
	s := newScenario(t).role("sigstore", 2, "alice", "bob")
	missing := filepath.Join(s.dir, "no-such-parent", "out")
	st, ui, err := s.signTo("cer-keep", DirSink(missing), nil)
	var ee *ExportError
	if !errors.As(err, &ee) {
		t.Fatalf("err %v (%T), want an *ExportError", err, err)
	}
	msg := err.Error()
	if !strings.HasPrefix(msg, "signed; the response is kept; export failed: response folder ") || !strings.Contains(msg, "that should hold it does not exist") ||
		!strings.Contains(msg, "airlock-appliance export --state") || !strings.Contains(msg, "--ceremony cer-keep") {
		t.Fatalf("error %q does not say the response is kept and how to export it", msg)
	}
	if strings.Contains(strings.ToLower(msg), "nothing was signed") {
		t.Fatalf("error %q claims nothing was signed", msg)
	}
	if st.Step != StepExportFailed || st.Refusal != nil || len(st.Signed) != 2 || st.Kept == "" || len(st.ExportFailures) != 1 {
		t.Fatalf("final state %+v", st)
	}
	shown := false
	for _, m := range ui.msgs {
		shown = shown || m.Level == Error && strings.HasPrefix(m.Text, "signed; the response is kept; export failed: ")
	}
	if !shown {
		t.Fatalf("the ui was not told the response is kept: %+v", ui.msgs)
	}
	// Export the kept response: no key, no holder.
	out := filepath.Join(s.dir, "second-folder")
	where, err := ExportKept(context.Background(), s.state, "cer-keep", DirSink(out), fixedClock())
	if err != nil || where != out {
		t.Fatalf("ExportKept: %q %v", where, err)
	}
	checkResponseDir(t, out, st.SHA256)
	ids, err := s.state.KeptList()
	if err != nil || len(ids) != 1 || ids[0] != "cer-keep" {
		t.Fatalf("kept list %v %v", ids, err)
	}
	got := strings.Join(steps(s.state, "cer-keep"), " ")
	want := "start/ok import/ok verify/ok approve/ok approve/ok ledger/ok sign/ok sign/ok export/ok kept/ok exported/failed export-abandoned/failed exported/info"
	if got != want {
		t.Fatalf("audit story\n got %s\nwant %s", got, want)
	}
	// A kept response survives closing and reopening the state.
	path := s.state.Path()
	s.state.Close()
	reopened, err := OpenState(path, fixedClock())
	if err != nil {
		t.Fatal(err)
	}
	s.state = reopened
	out2 := filepath.Join(s.dir, "third-folder")
	if _, err := ExportKept(context.Background(), reopened, "cer-keep", DirSink(out2), fixedClock()); err != nil {
		t.Fatal(err)
	}
	checkResponseDir(t, out2, st.SHA256)
	// An export to a folder that exists fails, is recorded, and keeps the response.
	if _, err := ExportKept(context.Background(), reopened, "cer-keep", DirSink(out2), fixedClock()); err == nil ||
		!strings.Contains(err.Error(), "export failed:") || !strings.Contains(err.Error(), "the response stays kept") {
		t.Fatalf("export over an existing folder: %v", err)
	}
	if last := steps(reopened, "cer-keep"); last[len(last)-1] != "exported/failed" {
		t.Fatalf("failed re-export not in the audit log: %v", last)
	}
}

// The retry hook gets another sink after each failure; the ceremony ends
// done when one works, with every failure on the record.
func TestExportRetryWritesToAnotherSink(t *testing.T) {
	s := newScenario(t).role("sigstore", 2, "alice", "bob")
	out := filepath.Join(s.dir, "good")
	retry := &retryScript{sinks: []Sink{pulledStick{}, DirSink(out)}}
	st, _, err := s.signTo("cer-retry", DirSink(filepath.Join(s.dir, "nope", "out")), retry)
	if err != nil {
		t.Fatal(err)
	}
	if st.Step != StepDone || st.Export != out || len(st.ExportFailures) != 2 || len(retry.failed) != 2 {
		t.Fatalf("final state %+v, retries %v", st, retry.failed)
	}
	if !strings.Contains(st.ExportFailures[1], "stick pulled") {
		t.Fatalf("second failure %q does not name the stick", st.ExportFailures[1])
	}
	checkResponseDir(t, out, st.SHA256)
	got := strings.Join(steps(s.state, "cer-retry"), " ")
	if !strings.HasSuffix(got, "kept/ok exported/failed exported/failed exported/info") {
		t.Fatalf("audit story %s", got)
	}
	// The kept response is the one exported.
	e, err := s.state.Kept("cer-retry")
	if err != nil {
		t.Fatal(err)
	}
	rb, _ := os.ReadFile(filepath.Join(out, ResponseFile))
	if string(e.Response) != string(rb) {
		t.Fatal("kept and exported responses differ")
	}
}

// A kept response whose record was altered is refused, naming why.
func TestKeptRefusesAlteredRecord(t *testing.T) {
	s := newScenario(t).role("sigstore", 2, "alice", "bob")
	if _, _, err := s.signTo("cer-alt", DirSink(filepath.Join(s.dir, "ok")), nil); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(s.state.Path(), "kept-cer-alt.record.json")
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(strings.Replace(string(b), `"ok"`, `"OK"`, 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = ExportKept(context.Background(), s.state, "cer-alt", DirSink(filepath.Join(s.dir, "again")), fixedClock())
	if err == nil || !strings.Contains(err.Error(), "kept record of cer-alt") {
		t.Fatalf("altered record: %v", err)
	}
	if _, err := s.state.Kept("cer-none"); !errors.Is(err, ErrNotKept) {
		t.Fatalf("unknown ceremony: %v", err)
	}
}

// A mistyped state path is refused and not created.
func TestOpenStateRefusesMissingDirectory(t *testing.T) {
	p := filepath.Join(t.TempDir(), "stat")
	if _, err := OpenState(p, fixedClock()); err == nil || !strings.Contains(err.Error(), "state "+p+" does not exist") {
		t.Fatalf("OpenState of a missing directory: %v", err)
	}
	if _, err := os.Stat(p); err == nil {
		t.Fatal("OpenState created the missing directory")
	}
}

// pulledStick is a destination that fails as a stick pulled mid-write does.
type pulledStick struct{}

func (pulledStick) Export(context.Context, Export) (string, error) {
	return "", errors.New("usb sink: write /dev/sdz: stick pulled (no such device)")
}
