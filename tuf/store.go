package tuf

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	"github.com/theupdateframework/go-tuf/v2/metadata"
)

// Store keeps a client's trusted metadata between runs, one file per role
// under its plain (non-versioned) name.
type Store interface {
	// Load returns the trusted bytes of role; fs.ErrNotExist when none.
	Load(role string) ([]byte, error)
	// Save replaces the trusted bytes of role, atomically.
	Save(role string, data []byte) error
}

// RoleFileName is the file a role is stored under: the role name escaped
// with url.PathEscape (reversible, never a path separator or "..") plus
// ".json".
func RoleFileName(role string) string {
	return url.PathEscape(role) + ".json"
}

// RoleFromFileName reverses RoleFileName.
func RoleFromFileName(name string) (string, error) {
	base, ok := strings.CutSuffix(name, ".json")
	if !ok {
		return "", fmt.Errorf("%s is not a metadata file name", name)
	}
	return url.PathUnescape(base)
}

// DirStore stores trusted metadata as files in a directory: root.json,
// timestamp.json, snapshot.json, targets.json and <escaped role>.json.
type DirStore string

// Load implements Store.
func (d DirStore) Load(role string) ([]byte, error) {
	f, err := os.Open(filepath.Join(string(d), RoleFileName(role)))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return readCapped(f, role+".json", MaxMetadataBytes)
}

// Save implements Store: it writes a temporary file, syncs it and renames
// it over the old one, so a crash leaves either the old or the new bytes.
func (d DirStore) Save(role string, data []byte) error {
	return writeAtomic(string(d), RoleFileName(role), data)
}

// writeAtomic writes name in dir through a synced temporary file and a
// rename, then syncs dir.
func writeAtomic(dir, name string, data []byte) error {
	var rnd [8]byte
	if _, err := rand.Read(rnd[:]); err != nil {
		return err
	}
	tmp := filepath.Join(dir, ".tmp-"+hex.EncodeToString(rnd[:]))
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return fmt.Errorf("save %s: %w", name, err)
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, filepath.Join(dir, name))
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("save %s: %w", name, err)
	}
	if df, err := os.Open(dir); err == nil {
		_ = df.Sync()
		df.Close()
	}
	return nil
}

// MemStore keeps trusted metadata in memory, for one-shot checks.
type MemStore map[string][]byte

// Load implements Store.
func (m MemStore) Load(role string) ([]byte, error) {
	b, ok := m[role]
	if !ok {
		return nil, fmt.Errorf("%s: %w", role, fs.ErrNotExist)
	}
	return b, nil
}

// Save implements Store.
func (m MemStore) Save(role string, data []byte) error {
	m[role] = append([]byte(nil), data...)
	return nil
}

// InitStore starts a client's trusted state from a root it trusts on first
// use. The root must parse and be signed by a threshold of its own keys.
func InitStore(s Store, trustedRoot []byte) error {
	root, err := ParseStrict[metadata.RootType](trustedRoot)
	if err != nil {
		return fmt.Errorf("trusted root: %w", err)
	}
	if err := VerifyTrustedRoot(root); err != nil {
		return fmt.Errorf("trusted root: %w", err)
	}
	return s.Save("root", trustedRoot)
}

// PrefixFetcher reads names under a prefix of another fetcher, such as
// "metadata/" and "targets/" of a repository folder.
type PrefixFetcher struct {
	Fetcher
	Prefix string
}

// Fetch implements Fetcher.
func (p PrefixFetcher) Fetch(ctx context.Context, name string, max int64) ([]byte, error) {
	return p.Fetcher.Fetch(ctx, p.Prefix+name, max)
}
