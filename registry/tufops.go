package registry

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sync"
	"time"

	"github.com/theupdateframework/go-tuf/v2/metadata"

	"airlock.dev/airlock/hsm"
	"airlock.dev/airlock/tuf"
)

// Releaser is everything the gate asks of the TUF layer. The gate keeps the
// repository as files in its store and hands the current metadata to these
// methods; they return files to store. TUFReleaser implements it with the
// tuf package's repository, combine and client code; another TUF client can
// be put behind it without touching the gate.
type Releaser interface {
	// RoleFor names the role delegated target, with its threshold and
	// number of keys.
	RoleFor(repo map[string][]byte, target string) (role string, threshold, keys int, err error)
	// Bundle builds the release bundle that adds target to role: the
	// files of a bundle folder, request.json included.
	Bundle(repo map[string][]byte, role, target string, tarball, provenance []byte, now time.Time) (map[string][]byte, error)
	// Release verifies submissions (signature responses or signed
	// metadata) against request.json and the repository, and returns the
	// repository files that publish target: the role, snapshot, timestamp
	// and the target's bytes.
	Release(repo map[string][]byte, request []byte, submissions [][]byte, target string, tarball []byte, online hsm.Signer, now time.Time) (map[string][]byte, error)
	// Verify is the verification half of Release: it returns the role's
	// signed metadata without writing anything.
	Verify(repo map[string][]byte, request []byte, submissions [][]byte, target string, tarball []byte) (*Approval, error)
	// Write is the writing half of Release for a batch of approvals: each
	// role's new version and target, then one snapshot and one
	// timestamp, checked by the client. refused says, per item, why it
	// was left out.
	Write(repo map[string][]byte, items []Queued, online hsm.Signer, now time.Time) (files map[string][]byte, refused []error, err error)
}

// TUFReleaser is the Releaser built on package tuf.
type TUFReleaser struct {
	// Dev accepts responses made with development keys or without an
	// appliance ceremony record, and signed metadata signed by software
	// keys, as airlock combine --dev does. Without it every signature must
	// come from a hardware key through an appliance ceremony.
	Dev bool
	// Record, when set, keeps the delegations verified for submissions
	// so that a restarted gate or another replica reloads them (the
	// gate's store).
	Record TrustRecord
}

var _ Releaser = TUFReleaser{}

// scratchDir is where checkouts go: a memory file system when the system
// has one (/dev/shm), else the temporary folder. A checkout is a scratch
// copy; the store's transaction is what makes a write durable, so the
// repository code's fsyncs of each file need not reach a disk.
var scratchDir = sync.OnceValue(func() string {
	const shm = "/dev/shm"
	if fi, err := os.Stat(shm); err == nil && fi.IsDir() {
		if f, err := os.CreateTemp(shm, "airlock-probe-*"); err == nil {
			f.Close()
			os.Remove(f.Name())
			return shm
		}
	}
	return ""
})

// checkout writes the repository files into a new temporary folder.
func checkout(repo map[string][]byte) (string, *tuf.Repository, error) {
	dir, err := os.MkdirTemp(scratchDir(), "airlock-gate-*")
	if err != nil {
		return "", nil, err
	}
	for p, b := range repo {
		if !fs.ValidPath(p) {
			os.RemoveAll(dir)
			return "", nil, fmt.Errorf("repository file %q: not a clean relative path", p)
		}
		f := filepath.Join(dir, filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(f), 0o755); err != nil {
			os.RemoveAll(dir)
			return "", nil, err
		}
		if err := os.WriteFile(f, b, 0o644); err != nil {
			os.RemoveAll(dir)
			return "", nil, err
		}
	}
	r, err := tuf.OpenRepository(dir)
	if err != nil {
		os.RemoveAll(dir)
		return "", nil, err
	}
	return dir, r, nil
}

// ReadTree returns every file below dir, by path relative to dir with
// forward slashes; anything but regular files and folders is refused.
func ReadTree(dir string) (map[string][]byte, error) {
	out := map[string][]byte{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		if !d.Type().IsRegular() {
			return fmt.Errorf("%s: not a regular file", p)
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		out[filepath.ToSlash(rel)] = b
		return nil
	})
	return out, err
}

func (rel TUFReleaser) RoleFor(repo map[string][]byte, target string) (string, int, int, error) {
	v := metaView(repo)
	role, err := v.findRole(target)
	if err != nil {
		return "", 0, 0, err
	}
	d, err := v.trustedDelegation(rel.Record, role)
	if err != nil {
		return "", 0, 0, err
	}
	return role, d.Threshold, len(d.KeyIDs), nil
}

// findRole walks the delegations from targets, in order, to the first role
// that may sign target (the TUF target search, without the targets
// themselves).
func (v metaView) findRole(target string) (string, error) {
	visited := 0
	parse := func(name string) (*tuf.Targets, error) {
		_, raw := v.role(name)
		if raw == nil {
			return nil, fs.ErrNotExist
		}
		return parseTargetsCached(raw)
	}
	var walk func(name string) (string, error)
	walk = func(name string) (string, error) {
		if visited++; visited > tuf.MaxDelegations {
			return "", fmt.Errorf("more than %d delegations visited looking for %s", tuf.MaxDelegations, target)
		}
		t, err := parse(name)
		if errors.Is(err, fs.ErrNotExist) {
			return "", nil
		}
		if err != nil {
			return "", err
		}
		if t.Delegations == nil {
			return "", nil
		}
		for _, rr := range t.Delegations.GetRolesForTarget(target) {
			if found, err := walk(rr.Name); err != nil || found != "" {
				return found, err
			}
			if _, err := v.delegation(rr.Name); err == nil {
				return rr.Name, nil
			}
			if rr.Terminating {
				break
			}
		}
		return "", nil
	}
	top, err := parse(metadata.TARGETS)
	if err != nil {
		return "", err
	}
	if top.Delegations != nil {
		for _, rr := range top.Delegations.GetRolesForTarget(target) {
			if found, err := walk(rr.Name); err != nil || found != "" {
				return found, err
			}
			return rr.Name, nil
		}
	}
	return "", fmt.Errorf("no role is delegated %s: delegate the package's path with airlock delegate --paths '%s/*'", target, path.Dir(target))
}

// Submission errors callers branch on.
var (
	// ErrStale means the role moved on since the bundle was made.
	ErrStale = errors.New("the role changed since this bundle was made: fetch a new bundle (airlock gate bundle) and sign it again")
	// ErrNoBundle means no bundle was made for the stage yet.
	ErrNoBundle = errors.New("no bundle was made for this stage yet: run airlock gate bundle first")
)

// Release verifies submissions and writes the one approval (Verify, then
// Write) and returns the repository files that changed.
func (rel TUFReleaser) Release(repo map[string][]byte, request []byte, submissions [][]byte, target string, tarball []byte, onlineKey hsm.Signer, now time.Time) (map[string][]byte, error) {
	a, err := rel.Verify(repo, request, submissions, target, tarball)
	if err != nil {
		return nil, err
	}
	files, refused, err := rel.Write(repo, []Queued{{Role: a.Role, Target: target, Tarball: tarball, Signed: a.Signed}}, onlineKey, now)
	if err != nil {
		return nil, err
	}
	if refused[0] != nil {
		return nil, refused[0]
	}
	return files, nil
}
