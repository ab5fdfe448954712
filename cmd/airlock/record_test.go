package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"airlock.dev/airlock/appliance"
	"airlock.dev/airlock/tuf"
)

// cliUI approves every fingerprint and answers questions with their default.
type cliUI struct{}

func (cliUI) Show(context.Context, appliance.Message) {}
func (cliUI) Ask(_ context.Context, q appliance.Question) (string, error) {
	return q.Default, nil
}
func (cliUI) Confirm(context.Context, appliance.Confirmation) (bool, error) { return true, nil }
func (cliUI) Secret(context.Context, appliance.SecretRequest) ([]byte, error) {
	return nil, os.ErrInvalid
}
func (cliUI) WaitTouch(context.Context, appliance.TouchRequest) func() { return func() {} }

type folderBundle string

func (d folderBundle) Load(context.Context) (*appliance.Bundle, error) {
	req, err := os.ReadFile(filepath.Join(string(d), "request.json"))
	if err != nil {
		return nil, err
	}
	root, err := os.OpenRoot(string(d))
	if err != nil {
		return nil, err
	}
	return &appliance.Bundle{Source: string(d), Request: req, Files: root.FS()}, nil
}

// applianceSign runs a development-mode ceremony on the bundle and returns
// the folder holding response.json and record.json.
func applianceSign(t *testing.T, dir, bundle string, keys ...string) string {
	t.Helper()
	state := filepath.Join(dir, "state")
	if _, err := os.Stat(state); err != nil {
		root, err := os.ReadFile(filepath.Join(dir, "repo", "metadata", "1.root.json"))
		if err != nil {
			t.Fatal(err)
		}
		pol := []byte(`{"airlock_policy":1,"roles":{"proj":{}}}`)
		if err := appliance.InitState(state, appliance.Provision{Root: root, Policy: pol}, appliance.SystemClock); err != nil {
			t.Fatal(err)
		}
	}
	st, err := appliance.OpenState(state, appliance.SystemClock)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	var uris appliance.KeyURIs
	for _, k := range keys {
		uris = append(uris, "file:"+filepath.Join(dir, k+".pem"))
	}
	out := filepath.Join(dir, "out-"+filepath.Base(bundle))
	c, err := appliance.New(appliance.Config{State: st, UI: cliUI{}, Dev: true, Date: time.Now(), Bundle: folderBundle(bundle), Keys: uris, Sink: appliance.DirSink(out)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	return out
}

// airlock record verify checks an exported record alone and against its
// response; combine verifies the record beside each response and refuses a
// response whose record does not verify or is missing.
func TestRecordVerifyAndCombine(t *testing.T) {
	dir, p := projRepo(t)
	mustAirlock(t, "bundle", "create", "--repo", p("repo"), "--role", "proj", "--add", p("pkg-1.0.0.tgz")+"=proj/pkg-1.0.0.tgz", "--out", p("bundle"))
	out := applianceSign(t, dir, p("bundle"), "alice", "bob")
	record, response := filepath.Join(out, "record.json"), filepath.Join(out, "response.json")

	got := mustAirlock(t, "record", "verify", record, response)
	if !strings.Contains(got, "approved by alice, bob, signed by 2 key(s)") || !strings.Contains(got, "every signature matches") {
		t.Fatalf("record verify: %s", got)
	}
	got = mustAirlock(t, "record", "verify", record)
	if !strings.Contains(got, "development mode") || strings.Contains(got, "belongs to") {
		t.Fatalf("record verify without a response: %s", got)
	}

	// A record with one byte changed does not verify, alone or in combine.
	good, err := os.ReadFile(record)
	if err != nil {
		t.Fatal(err)
	}
	bad := bytes.Replace(good, []byte(`"approve"`), []byte(`"approvE"`), 1)
	if err := os.WriteFile(record, bad, 0o644); err != nil {
		t.Fatal(err)
	}
	code, _, errOut := runCLI(t, "record", "verify", record, response)
	if code != 1 || !strings.Contains(errOut, "ceremony record does not verify") {
		t.Fatalf("record verify of a changed record: exit %d: %s", code, errOut)
	}
	code, _, errOut = runCLI(t, "combine", "--dev", "--repo", p("repo"), p("bundle"), response)
	if code != 1 || !strings.Contains(errOut, "ceremony record does not verify") || !strings.Contains(errOut, "do not combine it") {
		t.Fatalf("combine with a changed record: exit %d: %s", code, errOut)
	}
	if err := os.WriteFile(record, good, 0o644); err != nil {
		t.Fatal(err)
	}
	got = mustAirlock(t, "combine", "--dev", "--repo", p("repo"), p("bundle"), response)
	if !strings.Contains(got, "proj version 1: 2 signatures") {
		t.Fatalf("combine: %s", got)
	}
	code, _, errOut = runCLI(t, "record", "verify")
	if code != 2 {
		t.Fatalf("record verify without a record: exit %d: %s", code, errOut)
	}
}

// A production response without its record beside it is refused, with
// advice naming --without-record; with it, the response passes this check
// and the missing record is said.
func TestCombineRefusesResponseWithoutRecord(t *testing.T) {
	dir := t.TempDir()
	resp := &tuf.Response{CeremonyID: "c1", RecordSHA256: strings.Repeat("ab", 32)}
	files := []string{filepath.Join(dir, "alice.json")}
	var warn strings.Builder
	err := checkRecords(files, []*tuf.Response{resp}, false, &warn)
	if err == nil || !strings.Contains(err.Error(), "no ceremony record at "+filepath.Join(dir, "alice.record.json")) || !strings.Contains(err.Error(), "--without-record") {
		t.Fatalf("got %v", err)
	}
	if err := checkRecords(files, []*tuf.Response{resp}, true, &warn); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(warn.String(), "warning: response "+files[0]+" (ceremony c1) has no ceremony record") {
		t.Fatalf("no warning for the missing record: %q", warn.String())
	}
}
