package tuf

import (
	"path/filepath"
	"testing"

	"airlock.dev/airlock/hsm"
)

// TestOnlineKeyStoredRelativeToConfig: airlock-repo.json names a software
// online key relative to itself, so the repository opens from any working
// directory; older configurations keep their paths as written.
func TestOnlineKeyStoredRelativeToConfig(t *testing.T) {
	base := t.TempDir()
	dir := filepath.Join(base, "repo")
	key := filepath.Join(base, "keys", "online.pem")
	got, err := storedKeyURI(dir, hsm.URI{Kind: hsm.KindFile, Path: key})
	if err != nil {
		t.Fatal(err)
	}
	if got != "file:../keys/online.pem" {
		t.Fatalf("stored %q, want file:../keys/online.pem", got)
	}
	r := &Repository{Dir: dir, Config: RepoConfig{OnlineKey: got, KeyPathsRelative: true}}
	if u := r.OnlineKeyURI(); u != "file:"+key {
		t.Errorf("OnlineKeyURI = %q, want file:%s", u, key)
	}
	old := &Repository{Dir: dir, Config: RepoConfig{OnlineKey: "file:keys/online.pem"}}
	if u := old.OnlineKeyURI(); u != "file:keys/online.pem" {
		t.Errorf("legacy OnlineKeyURI = %q, want it unchanged", u)
	}
	if u, _ := storedKeyURI(dir, hsm.URI{Kind: hsm.KindYubiKey, Serial: 7, Slot: "9c"}); u != "yubikey:serial=7;slot=9c" {
		t.Errorf("hardware key stored as %q", u)
	}
}
