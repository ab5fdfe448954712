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
	"airlock.dev/airlock/internal/appdemo"
)

// init-state refuses a state without a sigstore trusted root, refuses to
// provision twice with a hint, and --reprovision backs the state up and
// keeps its ledger and audit log.
func TestInitStateTrustedRootAndReprovision(t *testing.T) {
	d, err := appdemo.Prepare(filepath.Join(t.TempDir(), "demo"), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	root := filepath.Join(d.RepoDir, "metadata", "1.root.json")
	policy := filepath.Join(dir, "policy.json")
	if err := os.WriteFile(policy, []byte(`{"airlock_policy":1,"roles":{"sigstore":{}}}`), 0o644); err != nil {
		t.Fatal(err)
	}
	state := filepath.Join(dir, "state")
	ctx := context.Background()
	runIt := func(args ...string) (int, string, string) {
		var out, errb bytes.Buffer
		code := run(ctx, append([]string{"init-state"}, args...), &out, &errb)
		return code, out.String(), errb.String()
	}
	code, _, stderr := runIt("--state", state, "--root", root, "--policy", policy)
	if code != 2 || !strings.Contains(stderr, "init-state needs --trusted-root") || strings.Count(stderr, "\n") != 1 {
		t.Fatalf("without --trusted-root: %d %q", code, stderr)
	}
	if _, err := os.Stat(state); err == nil {
		t.Fatal("a refused init-state created the state directory")
	}
	code, _, stderr = runIt("--state", state, "--root", root, "--policy", policy, "--trusted-root", policy)
	if code != 1 || !strings.Contains(stderr, "--trusted-root "+policy+": trusted root") {
		t.Fatalf("a policy as trusted root: %d %q", code, stderr)
	}
	code, _, stderr = runIt("--state", state, "--root", root, "--policy", filepath.Join(dir, "nope.json"), "--trusted-root", "testdata/trusted_root.json")
	if code != 1 || !strings.Contains(stderr, "nope.json") {
		t.Fatalf("a missing policy: %d %q", code, stderr)
	}
	if code, _, stderr = runIt("--state", state, "--root", root, "--policy", policy, "--trusted-root", "testdata/trusted_root.json"); code != 0 {
		t.Fatalf("init-state: %d %s", code, stderr)
	}
	code, _, stderr = runIt("--state", state, "--root", root, "--policy", policy, "--trusted-root", "testdata/trusted_root.json")
	if code != 1 || !strings.Contains(stderr, "already holds a pinned root") || !strings.Contains(stderr, "add --reprovision") {
		t.Fatalf("second init-state: %d %q", code, stderr)
	}
	// Reprovision with a new policy: backup first, ledger and audit kept.
	before, err := os.ReadFile(filepath.Join(state, "audit.log"))
	if err != nil {
		t.Fatal(err)
	}
	policy2 := filepath.Join(dir, "policy2.json")
	if err := os.WriteFile(policy2, []byte(`{"airlock_policy":1,"roles":{"sigstore":{"min_holders":3}}}`), 0o644); err != nil {
		t.Fatal(err)
	}
	code, stdout, stderr := runIt("--state", state, "--root", root, "--policy", policy2, "--trusted-root", "testdata/trusted_root.json", "--reprovision")
	if code != 0 || !strings.Contains(stdout, "the previous state is in "+state+".backup-") {
		t.Fatalf("reprovision: %d %q %q", code, stdout, stderr)
	}
	backup := strings.TrimSpace(stdout[strings.Index(stdout, state+".backup-"):])
	old, err := os.ReadFile(filepath.Join(backup, appliance.PolicyFile))
	if err != nil || !bytes.Contains(old, []byte(`"roles":{"sigstore":{}}`)) {
		t.Fatalf("backup policy %q %v", old, err)
	}
	st, err := appliance.OpenState(state, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if st.Policy.Roles["sigstore"].MinHolders != 3 {
		t.Fatal("the new policy is not in force")
	}
	after, _ := os.ReadFile(filepath.Join(state, "audit.log"))
	if !bytes.HasPrefix(after, before) {
		t.Fatal("reprovision rewrote the audit log")
	}
	es := st.Audit.Entries()
	if last := es[len(es)-1]; last.Step != "reprovision" || !strings.Contains(last.Detail, backup) {
		t.Fatalf("last audit entry %+v", last)
	}
}
