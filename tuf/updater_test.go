package tuf

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/theupdateframework/go-tuf/v2/metadata"
)

// A mirror that replays last month's repository is refused once the client
// has refreshed against the newer one: the stored timestamp is the floor.
func TestReplayedOlderRepositoryRefusedAfterRefresh(t *testing.T) {
	ctx := context.Background()
	tr := newTestRepo(t)
	old := filepath.Join(t.TempDir(), "old")
	if err := os.CopyFS(old, os.DirFS(tr.Dir)); err != nil {
		t.Fatal(err)
	}
	if err := tr.releaseFile(t, "proj/a.tgz", "second release", "alice", "bob"); err != nil {
		t.Fatal(err)
	}
	state := t.TempDir()
	if err := InitStore(DirStore(state), tr.root); err != nil {
		t.Fatal(err)
	}
	updater := func(repo string) *Updater {
		return &Updater{Store: DirStore(state), Remote: DirFetcher(filepath.Join(repo, "metadata")),
			Targets: DirFetcher(filepath.Join(repo, "targets")), RefTime: refTime}
	}
	u := updater(tr.Dir)
	info, err := u.GetTargetInfo(ctx, "proj/a.tgz")
	if err != nil {
		t.Fatal(err)
	}
	if data, err := u.FetchTarget(ctx, info); err != nil || string(data) != "second release" {
		t.Fatalf("new repository: %q, %v", data, err)
	}
	trusted, err := DirStore(state).Load(metadata.TIMESTAMP)
	if err != nil {
		t.Fatal(err)
	}

	// A new user with no memory would install the old release...
	c := &Client{Fetch: DirFetcher(old), RefTime: refTime}
	if _, data, err := c.Verify(ctx, tr.root, "proj/a.tgz"); err != nil || string(data) != "first release" {
		t.Fatalf("old repository as a new user: %q, %v", data, err)
	}
	// ...this client refuses it, for the rollback, and keeps its state.
	err = updater(old).Refresh(ctx)
	if !errors.Is(err, ErrRollback) {
		t.Fatalf("replayed repository: %v, want a rollback refusal", err)
	}
	checkErr(t, err, "below the trusted version")
	after, _ := DirStore(state).Load(metadata.TIMESTAMP)
	if string(after) != string(trusted) {
		t.Fatal("the trusted timestamp changed after a refused refresh")
	}
}

func TestRoleFileNamesAreEscapedAndReversible(t *testing.T) {
	for _, role := range []string{"../../etc/passwd", "?", "#", "/x", "a%2Fb", "proj"} {
		n := RoleFileName(role)
		if filepath.Base(n) != n || n == "..json" {
			t.Fatalf("role %q: file name %q is not one plain name", role, n)
		}
		back, err := RoleFromFileName(n)
		if err != nil || back != role {
			t.Fatalf("role %q: %q reverses to %q, %v", role, n, back, err)
		}
	}
}
