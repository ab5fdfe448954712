package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/theupdateframework/go-tuf/v2/metadata"

	"airlock.dev/airlock/hsm"
	"airlock.dev/airlock/internal/online"
	"airlock.dev/airlock/tuf"
)

// Attack: the targets role lists alice's public key a second time, under
// another key id (another holder label). bundle create, sign, combine and
// verify all refuse the repository, naming the duplicate.
func TestOneKeyTwoKeyIDsRefusedByEveryCommand(t *testing.T) {
	_, p := projRepo(t)
	// A well-formed bundle and response from before the change.
	mustAirlock(t, "bundle", "create", "--repo", p("repo"), "--role", "proj", "--add", p("pkg-1.0.0.tgz")+"=proj/pkg-1.0.0.tgz", "--out", p("bundle"))
	mustAirlock(t, "sign", "--key", "file:"+p("alice.pem"), p("bundle"), "--out", p("alice.json"))

	// targets version 3 lists alice's key again as "mallory".
	repo, err := tuf.OpenRepository(p("repo"))
	if err != nil {
		t.Fatal(err)
	}
	open := func(name string) hsm.Signer {
		k, err := hsm.Open(context.Background(), hsm.URI{Kind: hsm.KindFile, Path: p(name + ".pem")}, nil)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	next, err := repo.NextTargets(metadata.TARGETS, time.Now().Add(30*24*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	k, err := tuf.KeyFromSigner(open("alice"))
	if err != nil {
		t.Fatal(err)
	}
	k.UnrecognizedFields["x-airlock-holder"] = "mallory"
	id, _ := tuf.KeyID(k)
	next.Signed.Delegations.Keys[id] = k
	next.Signed.Delegations.Roles[0].KeyIDs = append(next.Signed.Delegations.Roles[0].KeyIDs, id)
	d, err := repo.Delegation(metadata.TARGETS)
	if err != nil {
		t.Fatal(err)
	}
	if err := tuf.SignAll(next, d, []hsm.Signer{open("t1")}); err != nil {
		t.Fatal(err)
	}
	if err := repo.CommitTargets(metadata.TARGETS, next, open("online"), time.Now()); err != nil {
		t.Fatal(err)
	}
	const want = "one public key is listed under two key ids"

	code, _, errOut := runCLI(t, "bundle", "create", "--repo", p("repo"), "--role", "proj", "--add", p("pkg-1.0.0.tgz")+"=proj/pkg-1.0.0.tgz", "--out", p("bundle2"))
	if code != 1 || !strings.Contains(errOut, want) {
		t.Fatalf("bundle create: exit %d: %s", code, errOut)
	}
	// The same request built without bundle create's check.
	unsigned, err := repo.NextTargets("proj", time.Now().Add(30*24*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := unsigned.ToBytes(false)
	req, err := repo.BuildRequest(tuf.KindRelease, "proj", raw, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if err := (&online.Bundle{Request: req, Files: map[string]string{}}).WriteDir(p("bundle3")); err != nil {
		t.Fatal(err)
	}
	code, _, errOut = runCLI(t, "sign", "--key", "file:"+p("alice.pem"), p("bundle3"), "--out", p("alice3.json"))
	if code != 1 || !strings.Contains(errOut, want) {
		t.Fatalf("sign: exit %d: %s", code, errOut)
	}
	// combine: the old bundle's chain is clean, the repository is not.
	code, _, errOut = runCLI(t, "combine", "--dev", "--repo", p("repo"), p("bundle"), p("alice.json"))
	if code != 1 || !strings.Contains(errOut, want) || !strings.Contains(errOut, "repository") {
		t.Fatalf("combine: exit %d: %s", code, errOut)
	}
	code, _, errOut = runCLI(t, "combine", "--dev", "--repo", p("repo"), p("bundle3"), p("alice.json"))
	if code != 1 || !strings.Contains(errOut, want) {
		t.Fatalf("combine of the new bundle: exit %d: %s", code, errOut)
	}
	code, _, errOut = runCLI(t, "verify", "--root", p("repo/metadata/1.root.json"), "--repo", p("repo"))
	if code != 1 || !strings.Contains(errOut, want) {
		t.Fatalf("verify: exit %d: %s", code, errOut)
	}
}

// projRepo makes a development repository in a temporary folder: root and
// targets keys r1 and t1, an online key, role proj delegated 2-of-2 to
// alice and bob for proj/*, and pkg-1.0.0.tgz to release. p names a file
// in the folder.
func projRepo(t *testing.T) (dir string, p func(string) string) {
	t.Helper()
	dir = t.TempDir()
	p = func(name string) string { return filepath.Join(dir, name) }
	for _, who := range []string{"r1", "t1", "online", "alice", "bob"} {
		mustAirlock(t, "key", "generate", "--dev", "--holder", who, "--out", p(who+".pem"))
	}
	mustAirlock(t, "init", "--repo", p("repo"), "--root-key", "file:"+p("r1.pem"), "--root-threshold", "1",
		"--targets-key", "file:"+p("t1.pem"), "--online-key", "file:"+p("online.pem"))
	mustAirlock(t, "delegate", "--repo", p("repo"), "--sign-key", "file:"+p("t1.pem"), "--role", "proj", "--paths", "proj/*",
		"--key", "file:"+p("alice.pem"), "--key", "file:"+p("bob.pem"), "--threshold", "2")
	if err := os.WriteFile(p("pkg-1.0.0.tgz"), []byte("release bytes"), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir, p
}
