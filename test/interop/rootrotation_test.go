package interop

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/theupdateframework/go-tuf/v2/metadata"

	"airlock.dev/airlock/hsm"
	"airlock.dev/airlock/internal/online"
	"airlock.dev/airlock/tuf"
)

// rotateRoot replaces the demo's root keys (root-ada, root-grace and
// root-linus, 2 of 3) by two new keys (2 of 2), as `airlock root` and
// `airlock combine` do: signed by two old and both new keys. It returns the
// old keys.
func rotateRoot(t *testing.T, dir string) []hsm.Signer {
	t.Helper()
	repo, load := demoRepo(t, dir)
	cur, err := repo.Root()
	if err != nil {
		t.Fatal(err)
	}
	old := []hsm.Signer{load("root-ada"), load("root-grace"), load("root-linus")}
	var fresh []hsm.Signer
	o := online.RootOptions{Threshold: 2, Expires: 200 * 24 * time.Hour, Now: time.Now(), Remove: cur.Signed.Roles[metadata.ROOT].KeyIDs}
	for _, who := range []string{"root-new-1", "root-new-2"} {
		s, err := hsm.GenerateFileKey(filepath.Join(t.TempDir(), who+".pem"), hsm.ECDSAP256, who, nil)
		if err != nil {
			t.Fatal(err)
		}
		k, err := tuf.KeyFromSigner(s)
		if err != nil {
			t.Fatal(err)
		}
		fresh = append(fresh, s)
		o.Add = append(o.Add, k)
	}
	b, err := online.CreateRootBundle(repo, o)
	if err != nil {
		t.Fatal(err)
	}
	bdir := filepath.Join(t.TempDir(), "bundle")
	if err := b.WriteDir(bdir); err != nil {
		t.Fatal(err)
	}
	var resps []*tuf.Response
	for _, s := range []hsm.Signer{old[0], old[1], fresh[0], fresh[1]} {
		r, err := online.Sign(b.Request, []hsm.Signer{s}, o.Now)
		if err != nil {
			t.Fatal(err)
		}
		resps = append(resps, r)
	}
	if _, err := online.Combine(repo, bdir, resps, load("online"), o.Now); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "metadata", "2.root.json")); err != nil {
		t.Fatalf("the rotation did not write root version 2: %v", err)
	}
	return old
}

// forgeRoot writes root version 3 signed only by the keys root version 2
// removed.
func forgeRoot(t *testing.T, dir string, old []hsm.Signer) {
	t.Helper()
	repo, err := tuf.OpenRepository(dir)
	if err != nil {
		t.Fatal(err)
	}
	next, err := repo.NextRoot(time.Now().Add(100 * 24 * time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	first, err := repo.RootVersions()
	if err != nil {
		t.Fatal(err)
	}
	r1, err := tuf.ParseStrict[metadata.RootType](first[0])
	if err != nil {
		t.Fatal(err)
	}
	d, err := tuf.DelegationFromRoot(r1, metadata.ROOT)
	if err != nil {
		t.Fatal(err)
	}
	if err := tuf.SignAll(next, d, old); err != nil {
		t.Fatal(err)
	}
	raw, err := next.ToBytes(true)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "metadata", "3.root.json"), raw, 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestClientsFollowRootRotation: after a rotation of the root to all-new
// keys, every client starting from root version 1 follows it to version 2
// and fetches the release; a version 3 signed by the removed keys is then
// refused by every client, so each one trusts the new keys, not the old.
func TestClientsFollowRootRotation(t *testing.T) {
	dir, url, root, want := repo(t)
	old := rotateRoot(t, dir)
	for _, c := range clients {
		t.Run(c.name, func(t *testing.T) {
			got, err := c.fetch(t, dir, url, root)
			if err != nil {
				t.Fatalf("%s refused a rotated root: %v", c.name, err)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("%s returned %d bytes that differ from the release", c.name, len(got))
			}
		})
	}
	forgeRoot(t, dir, old)
	for _, c := range clients {
		t.Run(c.name+"/removed-keys", func(t *testing.T) {
			_, err := c.fetch(t, dir, url, root)
			mustRefuse(t, c.name, err, `root was signed by 0/2 keys|Verifying root failed, not enough signatures, got 0, want 2|root version 3 under the keys of version 2: role root: 0 valid signature`)
		})
	}
}
