package tuf

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"

	"github.com/theupdateframework/go-tuf/v2/metadata"
)

// Caps of the client workflow on what a repository may send.
const (
	// MaxRootBytes caps one root version.
	MaxRootBytes = 1 << 20
	// MaxTimestampBytes caps timestamp.json.
	MaxTimestampBytes = 64 << 10
	// MaxRoleNameBytes caps a delegated role's name once escaped.
	MaxRoleNameBytes = 200
)

// Updater is a TUF client with durable trusted state. It follows the TUF
// 1.0 client workflow step by step: it starts from the trusted root.json in
// Store, walks the root chain, then timestamp, snapshot and targets, and
// saves each role to Store as soon as it is verified, so a later run refuses
// anything older than what was once trusted (rollback), even after a refresh
// that failed part way. Delegated roles are loaded lazily while searching
// for a target, in pre-order depth-first order.
//
// On top of the specification it keeps Airlock's stricter rules: strict
// JSON, thresholds counted by distinct public keys whatever key IDs list
// them, approval groups, key IDs that must be the hash of their key, one
// signature per key ID, and exact versions and hashes.
type Updater struct {
	// Store holds the trusted metadata between runs (DirStore or MemStore).
	Store Store
	// Remote serves the repository's metadata: "timestamp.json",
	// "2.root.json", "3.snapshot.json", "4.<escaped role>.json".
	Remote Fetcher
	// Targets serves target files by target path ("dir/1a2b….name.tgz").
	Targets Fetcher
	// RefTime is the time expiry is judged at; zero means now.
	RefTime time.Time

	root      *metadata.Metadata[metadata.RootType]
	timestamp *metadata.Metadata[metadata.TimestampType]
	snapshot  *metadata.Metadata[metadata.SnapshotType]
	roles     map[string]*loadedRole
	refreshed bool
	report    ClientReport
}

// loadedRole is a targets role verified in this session. It is re-verified
// against each delegator that reaches it, so a role cached through one path
// never inherits authority on another.
type loadedRole struct {
	m        *Targets
	verified map[any]bool
}

// TargetInfo is a verified target: what the signing role says about it.
type TargetInfo struct {
	// Path is the target path.
	Path string `json:"path"`
	// Role is the role that signed it.
	Role string `json:"role"`
	// Length and Hashes are the signed length and hashes (hex).
	Length int64             `json:"length"`
	Hashes map[string]string `json:"hashes"`
	// File is the signed entry itself, with its custom fields.
	File *metadata.TargetFiles `json:"-"`
}

// Root returns the trusted root after Refresh.
func (u *Updater) Root() *metadata.Metadata[metadata.RootType] { return u.root }

// Report returns what this session verified so far.
func (u *Updater) Report() *ClientReport {
	r := u.report
	r.Roles = append([]RoleCheckReport(nil), u.report.Roles...)
	return &r
}

func (u *Updater) now() time.Time {
	if u.RefTime.IsZero() {
		return time.Now()
	}
	return u.RefTime
}

// Refresh updates the trusted root, timestamp, snapshot and top-level
// targets from the repository, saving each as soon as it is verified.
func (u *Updater) Refresh(ctx context.Context) error {
	u.root, u.timestamp, u.snapshot, u.roles, u.refreshed = nil, nil, nil, map[string]*loadedRole{}, false
	u.report = ClientReport{}
	if u.Store == nil || u.Remote == nil {
		return errors.New("client has no store or no repository")
	}
	if err := u.loadRoot(ctx); err != nil {
		return err
	}
	if err := u.loadTimestamp(ctx); err != nil {
		return err
	}
	if err := u.loadSnapshot(ctx); err != nil {
		return err
	}
	td, err := DelegationFromRoot(u.root, metadata.TARGETS)
	if err != nil {
		return err
	}
	if _, err := u.loadTargets(ctx, metadata.TARGETS, td, u.root); err != nil {
		return err
	}
	u.refreshed = true
	return nil
}

func (u *Updater) loadRoot(ctx context.Context) error {
	raw, err := u.Store.Load(metadata.ROOT)
	if err != nil {
		return fmt.Errorf("trusted root: %w (run init first)", err)
	}
	root, err := ParseStrict[metadata.RootType](raw)
	if err != nil {
		return fmt.Errorf("trusted root: %w", err)
	}
	if err := VerifyTrustedRoot(root); err != nil {
		return fmt.Errorf("trusted root: %w", err)
	}
	if err := CheckUniqueKeysRoot(root); err != nil {
		return fmt.Errorf("trusted root: %w", err)
	}
	for v := root.Signed.Version + 1; v <= root.Signed.Version+MaxRootChain; v++ {
		b, err := u.Remote.Fetch(ctx, fmt.Sprintf("%d.root.json", v), MaxRootBytes)
		if errors.Is(err, fs.ErrNotExist) {
			break
		}
		if err != nil {
			return fmt.Errorf("root version %d: %w", v, err)
		}
		next, err := ParseStrict[metadata.RootType](b)
		if err != nil {
			return fmt.Errorf("root version %d: %w", v, err)
		}
		if next.Signed.Version != v {
			return fmt.Errorf("%d.root.json holds root version %d", v, next.Signed.Version)
		}
		if err := VerifyRootStep(root, next); err != nil {
			return err
		}
		if err := CheckUniqueKeysRoot(next); err != nil {
			return err
		}
		root = next
		if err := u.Store.Save(metadata.ROOT, b); err != nil {
			return err
		}
	}
	u.root = root
	u.report.RootVersion = root.Signed.Version
	if !u.now().Before(root.Signed.Expires) {
		return fmt.Errorf("root version %d expired %s: %w", root.Signed.Version, root.Signed.Expires.UTC().Format(time.RFC3339), ErrExpired)
	}
	return nil
}

// verifyTop parses and verifies a timestamp or snapshot under the trusted
// root, without version or expiry checks.
func verifyTop[T metadata.Roles](root *metadata.Metadata[metadata.RootType], role string, raw []byte) (*metadata.Metadata[T], *Verified, error) {
	m, err := ParseStrict[T](raw)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", role, err)
	}
	d, err := DelegationFromRoot(root, role)
	if err != nil {
		return nil, nil, err
	}
	v, err := VerifyRole(m, d, RoleCheck{})
	return m, v, err
}

func (u *Updater) addReport(role string, h Header, v *Verified) {
	for i, r := range u.report.Roles {
		if r.Role == role {
			u.report.Roles[i] = RoleCheckReport{Role: role, Version: h.Version, Expires: h.Expires, Signers: v.Signers}
			return
		}
	}
	u.report.Roles = append(u.report.Roles, RoleCheckReport{Role: role, Version: h.Version, Expires: h.Expires, Signers: v.Signers})
}

func (u *Updater) loadTimestamp(ctx context.Context) error {
	var trusted *Verified
	if raw, err := u.Store.Load(metadata.TIMESTAMP); err == nil {
		// A stored timestamp that no longer verifies (its keys rotated) is
		// dropped: that is how a fast-forward attack is recovered from.
		if m, v, err := verifyTop[metadata.TimestampType](u.root, metadata.TIMESTAMP, raw); err == nil && checkTimestampMeta(m) == nil {
			u.timestamp, trusted = m, v
		}
	}
	b, err := u.Remote.Fetch(ctx, "timestamp.json", MaxTimestampBytes)
	if err != nil {
		return fmt.Errorf("timestamp: %w", err)
	}
	m, v, err := verifyTop[metadata.TimestampType](u.root, metadata.TIMESTAMP, b)
	if err != nil {
		return err
	}
	if err := checkTimestampMeta(m); err != nil {
		return err
	}
	keep := false
	if old := u.timestamp; old != nil {
		switch {
		case m.Signed.Version < old.Signed.Version:
			return fmt.Errorf("timestamp: version %d is below the trusted version %d: %w", m.Signed.Version, old.Signed.Version, ErrRollback)
		case m.Signed.Version == old.Signed.Version:
			keep = true
		case m.Signed.Meta["snapshot.json"].Version < old.Signed.Meta["snapshot.json"].Version:
			return fmt.Errorf("timestamp: snapshot version %d is below the trusted snapshot version %d: %w",
				m.Signed.Meta["snapshot.json"].Version, old.Signed.Meta["snapshot.json"].Version, ErrRollback)
		}
	}
	if !keep {
		u.timestamp, trusted = m, v
	}
	u.addReport(metadata.TIMESTAMP, header(u.timestamp), trusted)
	if err := checkHeader(metadata.TIMESTAMP, header(u.timestamp), RoleCheck{RefTime: u.now()}); err != nil {
		return err
	}
	if keep {
		return nil
	}
	return u.Store.Save(metadata.TIMESTAMP, b)
}

func checkTimestampMeta(m *metadata.Metadata[metadata.TimestampType]) error {
	if m.Signed.Meta["snapshot.json"] == nil || len(m.Signed.Meta) != 1 {
		return errors.New("timestamp: meta must list exactly snapshot.json")
	}
	return nil
}

func (u *Updater) loadSnapshot(ctx context.Context) error {
	want := u.timestamp.Signed.Meta["snapshot.json"]
	final := func(m *metadata.Metadata[metadata.SnapshotType]) error {
		if err := checkHeader(metadata.SNAPSHOT, header(m), RoleCheck{RefTime: u.now()}); err != nil {
			return err
		}
		if m.Signed.Version != want.Version {
			return fmt.Errorf("snapshot: version %d, timestamp says %d", m.Signed.Version, want.Version)
		}
		return nil
	}
	if raw, err := u.Store.Load(metadata.SNAPSHOT); err == nil {
		if m, v, err := verifyTop[metadata.SnapshotType](u.root, metadata.SNAPSHOT, raw); err == nil {
			u.snapshot = m
			if final(m) == nil {
				u.addReport(metadata.SNAPSHOT, header(m), v)
				return nil
			}
		}
	}
	b, err := u.Remote.Fetch(ctx, u.metaName(metadata.SNAPSHOT, want.Version), capOf(want.Length))
	if err != nil {
		return fmt.Errorf("snapshot: %w", err)
	}
	if err := checkMetaFile(metadata.SNAPSHOT, want, b); err != nil {
		return err
	}
	m, v, err := verifyTop[metadata.SnapshotType](u.root, metadata.SNAPSHOT, b)
	if err != nil {
		return err
	}
	if old := u.snapshot; old != nil {
		for name, mf := range old.Signed.Meta {
			nf := m.Signed.Meta[name]
			if nf == nil {
				return fmt.Errorf("snapshot: version %d drops %s, which the trusted version %d lists: %w", m.Signed.Version, name, old.Signed.Version, ErrRollback)
			}
			if nf.Version < mf.Version {
				return fmt.Errorf("snapshot: %s version %d is below the trusted version %d: %w", name, nf.Version, mf.Version, ErrRollback)
			}
		}
	}
	u.snapshot = m
	if err := final(m); err != nil {
		return err
	}
	u.addReport(metadata.SNAPSHOT, header(m), v)
	return u.Store.Save(metadata.SNAPSHOT, b)
}

func capOf(length int64) int64 {
	if length > 0 && length < MaxMetadataBytes {
		return length
	}
	return MaxMetadataBytes
}

// metaName is the remote file name of a role's metadata.
func (u *Updater) metaName(role string, version int64) string {
	if u.root.Signed.ConsistentSnapshot {
		return fmt.Sprintf("%d.%s.json", version, url.PathEscape(role))
	}
	return url.PathEscape(role) + ".json"
}

// loadTargets returns a targets role verified under d, from this session,
// the store or the repository, in that order.
func (u *Updater) loadTargets(ctx context.Context, role string, d *Delegation, delegator any) (*Targets, error) {
	if lr, ok := u.roles[role]; ok {
		if !lr.verified[delegator] {
			v, err := lr.m.Verify(d, RoleCheck{})
			if err != nil {
				return nil, err
			}
			lr.verified[delegator] = true
			u.addReport(role, lr.m.Header, v)
		}
		return lr.m, nil
	}
	mf := u.snapshot.Signed.Meta[role+".json"]
	if mf == nil {
		return nil, fmt.Errorf("role %s: not listed in snapshot version %d", role, u.snapshot.Signed.Version)
	}
	check := func(b []byte) (*Targets, *Verified, error) {
		if err := checkMetaFile(role, mf, b); err != nil {
			return nil, nil, err
		}
		m, v, err := VerifyTargets(b, d, RoleCheck{})
		if err != nil {
			return nil, nil, err
		}
		if m.Delegations != nil {
			if err := CheckUniqueKeys(fmt.Sprintf("delegations of %s version %d", role, m.Header.Version), m.Delegations.Keys); err != nil {
				return nil, nil, err
			}
		}
		if m.Header.Version != mf.Version {
			return nil, nil, fmt.Errorf("role %s: version %d, snapshot says %d (mixed versions)", role, m.Header.Version, mf.Version)
		}
		if err := checkHeader(role, m.Header, RoleCheck{RefTime: u.now()}); err != nil {
			return nil, nil, err
		}
		return m, v, nil
	}
	var m *Targets
	var v *Verified
	if raw, err := u.Store.Load(role); err == nil {
		m, v, _ = check(raw)
	}
	if m == nil {
		b, err := u.Remote.Fetch(ctx, u.metaName(role, mf.Version), capOf(mf.Length))
		if err != nil {
			return nil, fmt.Errorf("role %s: %w", role, err)
		}
		if m, v, err = check(b); err != nil {
			return nil, err
		}
		if err := u.Store.Save(role, b); err != nil {
			return nil, err
		}
	}
	u.roles[role] = &loadedRole{m: m, verified: map[any]bool{delegator: true}}
	u.addReport(role, m.Header, v)
	return m, nil
}

// GetTargetInfo finds a target in the delegation graph and returns what the
// role that signs it says about it, refreshing first if needed. Roles are
// visited in pre-order depth-first order and only as far as needed; a
// terminating delegation ends the search after its subtree, and at most
// MaxDelegations roles are visited.
func (u *Updater) GetTargetInfo(ctx context.Context, target string) (*TargetInfo, error) {
	if !u.refreshed {
		if err := u.Refresh(ctx); err != nil {
			return nil, err
		}
	}
	if err := checkTargetPath(target); err != nil {
		return nil, err
	}
	type item struct {
		role      string
		parent    *Targets
		parentRol string
	}
	stack := []item{{role: metadata.TARGETS}}
	visited := map[string]bool{}
	for len(stack) > 0 && len(visited) <= MaxDelegations {
		it := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if visited[it.role] {
			continue
		}
		var d *Delegation
		var delegator any
		var err error
		if it.parent == nil {
			d, err = DelegationFromRoot(u.root, metadata.TARGETS)
			delegator = u.root
		} else {
			d, err = it.parent.Delegation(it.parentRol, it.role)
			delegator = it.parent
		}
		if err != nil {
			return nil, err
		}
		m, err := u.loadTargets(ctx, it.role, d, delegator)
		if err != nil {
			return nil, err
		}
		if tf, ok := m.Target(target); ok {
			info := &TargetInfo{Path: target, Role: it.role, Length: tf.Length, Hashes: map[string]string{}, File: tf}
			for alg, h := range tf.Hashes {
				info.Hashes[alg] = hex.EncodeToString(h)
			}
			u.report.Target, u.report.TargetRole, u.report.TargetInfo = target, it.role, tf
			return info, nil
		}
		visited[it.role] = true
		dg := m.Delegations
		if dg == nil {
			continue
		}
		var roles []metadata.RoleResult
		if dg.SuccinctRoles != nil {
			roles = dg.SuccinctRoles.GetRolesForTarget(target)
		} else {
			roles = dg.GetRolesForTarget(target)
		}
		var children []item
		for _, rr := range roles {
			if err := checkDelegatedName(rr.Name); err != nil {
				return nil, fmt.Errorf("role %s: %w", it.role, err)
			}
			children = append(children, item{role: rr.Name, parent: m, parentRol: it.role})
			if rr.Terminating {
				stack = stack[:0]
				break
			}
		}
		for i := len(children) - 1; i >= 0; i-- {
			stack = append(stack, children[i])
		}
	}
	return nil, fmt.Errorf("target %s is not signed by any role: %w", target, fs.ErrNotExist)
}

// checkDelegatedName refuses delegated role names that would clash with
// the top-level roles or not fit a file name.
func checkDelegatedName(name string) error {
	switch name {
	case "", metadata.ROOT, metadata.TARGETS, metadata.SNAPSHOT, metadata.TIMESTAMP:
		return fmt.Errorf("delegated role name %q is reserved", name)
	}
	if len(url.PathEscape(name)) > MaxRoleNameBytes {
		return fmt.Errorf("delegated role name of %d bytes is over the %d-byte cap", len(name), MaxRoleNameBytes)
	}
	return nil
}

// TargetFetchName is the name a target is fetched under: with consistent
// snapshots, prefixed by one of its hashes (sha256 when listed).
func (u *Updater) TargetFetchName(info *TargetInfo) string {
	dir, base := path.Split(info.Path)
	if u.root != nil && u.root.Signed.ConsistentSnapshot {
		alg := "sha256"
		if _, ok := info.Hashes[alg]; !ok {
			alg = ""
			for a := range info.Hashes {
				if alg == "" || a < alg {
					alg = a
				}
			}
		}
		base = info.Hashes[alg] + "." + base
	}
	var b strings.Builder
	for _, seg := range strings.Split(dir, "/") {
		if seg != "" {
			b.WriteString(url.PathEscape(seg) + "/")
		}
	}
	b.WriteString(url.PathEscape(base))
	return b.String()
}

// FetchTarget downloads a target and returns its bytes once they match the
// signed length and hashes.
func (u *Updater) FetchTarget(ctx context.Context, info *TargetInfo) ([]byte, error) {
	if u.Targets == nil {
		return nil, errors.New("client has no target source")
	}
	if info.Length > MaxTargetBytes {
		return nil, fmt.Errorf("target %s is %d bytes, over the %d-byte cap", info.Path, info.Length, int64(MaxTargetBytes))
	}
	data, err := u.Targets.Fetch(ctx, u.TargetFetchName(info), info.Length)
	if err != nil {
		return nil, fmt.Errorf("target %s: %w", info.Path, err)
	}
	if err := info.Check(data); err != nil {
		return nil, err
	}
	return data, nil
}

// Check compares bytes with the signed length and every signed hash.
func (info *TargetInfo) Check(data []byte) error {
	if int64(len(data)) != info.Length {
		return fmt.Errorf("target %s: %d bytes, the signed length is %d", info.Path, len(data), info.Length)
	}
	if len(info.Hashes) == 0 {
		return fmt.Errorf("target %s has no signed hash", info.Path)
	}
	for alg, want := range info.Hashes {
		got, err := digest(alg, data)
		if err != nil {
			return fmt.Errorf("target %s: %w", info.Path, err)
		}
		if hex.EncodeToString(got) != want {
			return fmt.Errorf("target %s: bytes do not match the signed %s hash", info.Path, alg)
		}
	}
	return nil
}

func digest(alg string, data []byte) ([]byte, error) {
	switch alg {
	case "sha256":
		s := sha256.Sum256(data)
		return s[:], nil
	case "sha384":
		s := sha512.Sum384(data)
		return s[:], nil
	case "sha512":
		s := sha512.Sum512(data)
		return s[:], nil
	}
	return nil, fmt.Errorf("hash algorithm %q is not supported (sha256, sha384, sha512)", alg)
}

func checkMetaFile(role string, mf *metadata.MetaFiles, b []byte) error {
	if mf.Length != 0 && int64(len(b)) != mf.Length {
		return fmt.Errorf("%s: %d bytes, the signed length is %d", role, len(b), mf.Length)
	}
	for alg, want := range mf.Hashes {
		got, err := digest(alg, b)
		if err != nil {
			return fmt.Errorf("%s: %w", role, err)
		}
		if !bytes.Equal(got, want) {
			return fmt.Errorf("%s: bytes do not match the signed %s hash", role, alg)
		}
	}
	return nil
}

// TargetFileName is the file a target is stored under in a target
// directory: its path escaped into one name (url.PathEscape), or its
// SHA-256 when that would be too long.
func TargetFileName(target string) string {
	n := url.PathEscape(target)
	if len(n) > MaxRoleNameBytes {
		s := sha256.Sum256([]byte(target))
		return "sha256-" + hex.EncodeToString(s[:])
	}
	return n
}

// DownloadTarget stores a verified target in dir and returns its path. A
// file already there with the signed length and hashes is kept without
// downloading again.
func (u *Updater) DownloadTarget(ctx context.Context, info *TargetInfo, dir string) (string, error) {
	p := filepath.Join(dir, TargetFileName(info.Path))
	if f, err := os.Open(p); err == nil {
		old, rerr := readCapped(f, info.Path, info.Length)
		f.Close()
		if rerr == nil && info.Check(old) == nil {
			return p, nil
		}
	}
	data, err := u.FetchTarget(ctx, info)
	if err != nil {
		return "", err
	}
	if err := writeAtomic(dir, TargetFileName(info.Path), data); err != nil {
		return "", err
	}
	return p, nil
}
