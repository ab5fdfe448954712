package tuf

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"airlock.dev/airlock/hsm"
)

// A software online key given relative to the folder init ran in is stored
// relative to the repository, so combine works from any folder.
func TestOnlineKeyResolvedAgainstRepository(t *testing.T) {
	base := t.TempDir()
	t.Chdir(base)
	if err := os.Mkdir("keys", 0o700); err != nil {
		t.Fatal(err)
	}
	var keys []hsm.Signer
	for _, n := range []string{"root", "targets", "online"} {
		k, err := hsm.GenerateFileKey(filepath.Join("keys", n+".pem"), hsm.ECDSAP256, n, nil)
		if err != nil {
			t.Fatal(err)
		}
		keys = append(keys, k)
	}
	if _, err := Init("repo", InitOptions{Root: keys[:1], RootThreshold: 1, Targets: keys[1:2], TargetsThreshold: 1,
		Online: keys[2], Now: time.Now()}); err != nil {
		t.Fatal(err)
	}
	elsewhere := filepath.Join(base, "elsewhere")
	if err := os.Mkdir(elsewhere, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Chdir(elsewhere)
	r, err := OpenRepository(filepath.Join("..", "repo"))
	if err != nil {
		t.Fatal(err)
	}
	if r.Config.OnlineKey != "file:"+filepath.Join("..", "keys", "online.pem") {
		t.Fatalf("stored online key %q, want a path relative to the repository", r.Config.OnlineKey)
	}
	u, err := hsm.ParseURI(r.OnlineKeyURI())
	if err != nil {
		t.Fatal(err)
	}
	k, err := hsm.LoadFileKey(u.Path)
	if err != nil {
		t.Fatalf("online key from another folder: %v", err)
	}
	if k.Holder() != "online" {
		t.Fatalf("opened the key of %q", k.Holder())
	}
}
