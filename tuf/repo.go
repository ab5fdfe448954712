package tuf

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/theupdateframework/go-tuf/v2/metadata"

	"airlock.dev/airlock/hsm"
)

// Repository is a TUF repository on disk, laid out so that a plain file
// server can serve it to any TUF client:
//
//	DIR/airlock-repo.json       the online key URI and expiry settings
//	DIR/metadata/N.root.json    every root version; root.json is the newest
//	DIR/metadata/N.ROLE.json    targets and delegated roles (consistent snapshots)
//	DIR/metadata/N.snapshot.json, timestamp.json
//	DIR/targets/PATH/HASH.NAME  target files, prefixed by their SHA-256
//
// Offline roles (root, targets, delegated roles) are only ever written after
// their signatures were verified against their delegator; snapshot and
// timestamp are refreshed with the online key on every change.
type Repository struct {
	Dir    string
	Config RepoConfig
}

// RepoConfig is airlock-repo.json.
type RepoConfig struct {
	Format    int    `json:"airlock_repo"`
	OnlineKey string `json:"online_key"`
	// KeyPathsRelative says a software key's file in OnlineKey is relative
	// to this file's folder. Configurations written before it was added
	// name files relative to wherever airlock init ran.
	KeyPathsRelative bool   `json:"key_paths_relative,omitempty"`
	SnapshotExpires  string `json:"snapshot_expires"`
	TimestampExpires string `json:"timestamp_expires"`
}

const repoConfigName = "airlock-repo.json"

// InitOptions configures a new repository.
type InitOptions struct {
	Root             []hsm.Signer
	RootThreshold    int
	Targets          []hsm.Signer
	TargetsThreshold int
	Online           hsm.Signer
	RootExpires      time.Duration
	TargetsExpires   time.Duration
	SnapshotExpires  time.Duration
	TimestampExpires time.Duration
	Now              time.Time
}

// Init creates a repository: root v1 signed by the root keys, an empty
// targets v1 signed by the targets keys, and snapshot and timestamp signed
// by the online key.
func Init(dir string, o InitOptions) (*Repository, error) {
	if _, err := os.Stat(filepath.Join(dir, repoConfigName)); err == nil {
		return nil, fmt.Errorf("%s already holds a repository", dir)
	}
	if o.Online == nil || len(o.Root) == 0 || len(o.Targets) == 0 {
		return nil, errors.New("init needs root keys, targets keys and an online key")
	}
	if o.Now.IsZero() {
		o.Now = time.Now()
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	def(&o.RootExpires, 365*24*time.Hour)
	def(&o.TargetsExpires, 90*24*time.Hour)
	def(&o.SnapshotExpires, 7*24*time.Hour)
	def(&o.TimestampExpires, 24*time.Hour)

	root := metadata.Root(expiry(o.Now, o.RootExpires))
	root.Signed.ConsistentSnapshot = true
	add := func(role string, signers []hsm.Signer, threshold int) error {
		for _, s := range signers {
			k, err := KeyFromSigner(s)
			if err != nil {
				return err
			}
			if err := root.Signed.AddKey(k, role); err != nil {
				return fmt.Errorf("role %s: %w", role, err)
			}
		}
		root.Signed.Roles[role].Threshold = threshold
		return nil
	}
	if err := add(metadata.ROOT, o.Root, o.RootThreshold); err != nil {
		return nil, err
	}
	if err := add(metadata.TARGETS, o.Targets, o.TargetsThreshold); err != nil {
		return nil, err
	}
	for _, role := range []string{metadata.SNAPSHOT, metadata.TIMESTAMP} {
		if err := add(role, []hsm.Signer{o.Online}, 1); err != nil {
			return nil, err
		}
	}
	if err := checkRootRoles(root); err != nil {
		return nil, err
	}
	rootD, err := DelegationFromRoot(root, metadata.ROOT)
	if err != nil {
		return nil, err
	}
	if err := SignAll(root, rootD, o.Root); err != nil {
		return nil, err
	}
	if err := VerifyTrustedRoot(root); err != nil {
		return nil, fmt.Errorf("new root does not verify: %w", err)
	}
	targets := metadata.Targets(expiry(o.Now, o.TargetsExpires))
	targetsD, err := DelegationFromRoot(root, metadata.TARGETS)
	if err != nil {
		return nil, err
	}
	if err := SignAll(targets, targetsD, o.Targets); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Join(dir, "metadata"), 0o755); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Join(dir, "targets"), 0o755); err != nil {
		return nil, err
	}
	online, err := storedKeyURI(dir, o.Online.URI())
	if err != nil {
		return nil, err
	}
	r := &Repository{Dir: dir, Config: RepoConfig{
		Format:           1,
		OnlineKey:        online,
		KeyPathsRelative: true,
		SnapshotExpires:  o.SnapshotExpires.String(),
		TimestampExpires: o.TimestampExpires.String(),
	}}
	if err := writeJSON(filepath.Join(dir, repoConfigName), r.Config); err != nil {
		return nil, err
	}
	if err := r.writeRoot(root); err != nil {
		return nil, err
	}
	if err := r.writeRole(metadata.TARGETS, targets); err != nil {
		return nil, err
	}
	if err := r.Refresh(o.Online, o.Now); err != nil {
		return nil, err
	}
	return r, nil
}

func expiry(now time.Time, d time.Duration) time.Time {
	return SpecDate(now.Add(d))
}

// SignAll signs m's canonical bytes with every signer under the role's
// delegation, one signature per distinct key (re-signing replaces).
func SignAll[T metadata.Roles](m *metadata.Metadata[T], d *Delegation, signers []hsm.Signer) error {
	payload, err := Canonical(m)
	if err != nil {
		return err
	}
	for _, s := range signers {
		sig, err := SignPayload(d, s, payload)
		if err != nil {
			return err
		}
		m.Signatures = append(m.Signatures, sig)
	}
	m.Signatures = dedupeSignatures(m.Signatures)
	return nil
}

// SignPayload signs canonical bytes with a signer and returns the signature
// with the key ID the role lists for the signer's public key. It refuses a
// signer whose key the role does not list.
func SignPayload(d *Delegation, s hsm.Signer, canonical []byte) (metadata.Signature, error) {
	fp, err := fingerprint(s.Public())
	if err != nil {
		return metadata.Signature{}, err
	}
	keyID := ""
	for _, id := range d.KeyIDs {
		if kfp, err := Fingerprint(d.Keys[id]); err == nil && kfp == fp {
			keyID = id
			break
		}
	}
	if keyID == "" {
		return metadata.Signature{}, fmt.Errorf("key %s is not a key of role %s", s.URI(), d.Role)
	}
	sig, err := signPayload(s, canonical)
	if err != nil {
		return metadata.Signature{}, fmt.Errorf("sign with %s: %w", s.URI(), err)
	}
	if err := verifySig(d.Keys[keyID], canonical, sig); err != nil {
		return metadata.Signature{}, fmt.Errorf("signature by %s does not verify: %w", s.URI(), err)
	}
	return metadata.Signature{KeyID: keyID, Signature: sig}, nil
}

// dedupeSignatures keeps the last signature per key ID.
func dedupeSignatures(sigs []metadata.Signature) []metadata.Signature {
	last := map[string]int{}
	for i, s := range sigs {
		last[s.KeyID] = i
	}
	var out []metadata.Signature
	for i, s := range sigs {
		if last[s.KeyID] == i {
			out = append(out, s)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].KeyID < out[j].KeyID })
	return out
}

// OpenRepository opens a repository created by Init.
func OpenRepository(dir string) (*Repository, error) {
	raw, err := os.ReadFile(filepath.Join(dir, repoConfigName))
	if err != nil {
		return nil, fmt.Errorf("%s is not an airlock repository (run airlock init): %w", dir, err)
	}
	r := &Repository{Dir: dir}
	if err := json.Unmarshal(raw, &r.Config); err != nil {
		return nil, fmt.Errorf("%s: %w", repoConfigName, err)
	}
	if r.Config.Format != 1 {
		return nil, fmt.Errorf("%s: format %d is not supported", repoConfigName, r.Config.Format)
	}
	return r, nil
}

// storedKeyURI is how airlock-repo.json in dir names a key: a software
// key's file relative to dir (so the repository can move and commands can
// run from anywhere), any other key by its URI.
func storedKeyURI(dir string, u hsm.URI) (string, error) {
	if u.Kind != hsm.KindFile {
		return u.String(), nil
	}
	absDir, err := filepath.Abs(dir)
	if err != nil {
		return "", err
	}
	absKey, err := filepath.Abs(u.Path)
	if err != nil {
		return "", err
	}
	rel, err := filepath.Rel(absDir, absKey)
	if err != nil {
		rel = absKey
	}
	return hsm.URI{Kind: hsm.KindFile, Path: filepath.ToSlash(rel)}.String(), nil
}

// OnlineKeyURI is the online key's URI, a software key's file resolved
// against the repository folder (where airlock-repo.json names it
// relative to itself).
func (r *Repository) OnlineKeyURI() string {
	u, err := hsm.ParseURI(r.Config.OnlineKey)
	if err != nil || u.Kind != hsm.KindFile || filepath.IsAbs(u.Path) || !r.Config.KeyPathsRelative {
		return r.Config.OnlineKey
	}
	u.Path = filepath.Join(r.Dir, filepath.FromSlash(u.Path))
	return u.String()
}

func (r *Repository) metaPath(name string) string { return filepath.Join(r.Dir, "metadata", name) }

// RootVersions returns every root version's bytes, oldest first.
func (r *Repository) RootVersions() ([][]byte, error) {
	var out [][]byte
	for v := 1; ; v++ {
		b, err := os.ReadFile(r.metaPath(fmt.Sprintf("%d.root.json", v)))
		if errors.Is(err, fs.ErrNotExist) {
			break
		}
		if err != nil {
			return nil, err
		}
		out = append(out, b)
	}
	if len(out) == 0 {
		return nil, errors.New("repository has no root metadata")
	}
	return out, nil
}

// Root returns the newest root.
func (r *Repository) Root() (*metadata.Metadata[metadata.RootType], error) {
	vs, err := r.RootVersions()
	if err != nil {
		return nil, err
	}
	return ParseStrict[metadata.RootType](vs[len(vs)-1])
}

// RoleVersion returns the newest version of a targets role on disk (0: none).
func (r *Repository) RoleVersion(role string) (int64, error) {
	vs, err := r.roleVersions()
	return vs[role], err
}

func (r *Repository) roleVersions() (map[string]int64, error) {
	ents, err := os.ReadDir(filepath.Join(r.Dir, "metadata"))
	if err != nil {
		return nil, err
	}
	out := map[string]int64{}
	for _, e := range ents {
		name := e.Name()
		num, rest, ok := strings.Cut(name, ".")
		if !ok || !strings.HasSuffix(rest, ".json") {
			continue
		}
		v, err := strconv.ParseInt(num, 10, 64)
		if err != nil {
			continue
		}
		role := strings.TrimSuffix(rest, ".json")
		if role == metadata.ROOT || role == metadata.SNAPSHOT || role == metadata.TIMESTAMP {
			continue
		}
		if v > out[role] {
			out[role] = v
		}
	}
	return out, nil
}

// RoleBytes returns the newest signed metadata of a targets role.
func (r *Repository) RoleBytes(role string) ([]byte, error) {
	v, err := r.RoleVersion(role)
	if err != nil {
		return nil, err
	}
	if v == 0 {
		return nil, fmt.Errorf("role %s: %w", role, fs.ErrNotExist)
	}
	return os.ReadFile(r.metaPath(fmt.Sprintf("%d.%s.json", v, role)))
}

// Role returns the newest signed metadata of a targets role.
func (r *Repository) Role(role string) (*metadata.Metadata[metadata.TargetsType], error) {
	b, err := r.RoleBytes(role)
	if err != nil {
		return nil, err
	}
	return ParseStrict[metadata.TargetsType](b)
}

// DelegatorPath returns the targets roles from "targets" down to the role
// that delegates role (empty for top-level roles).
func (r *Repository) DelegatorPath(role string) ([]string, error) {
	return FindDelegatorPath(role, func(name string) (*metadata.Delegations, error) {
		m, err := r.Role(name)
		if errors.Is(err, fs.ErrNotExist) {
			return nil, nil
		}
		if err != nil {
			return nil, err
		}
		return m.Signed.Delegations, nil
	})
}

// FindDelegatorPath searches the targets roles breadth first from
// "targets" for the role that delegates role and returns the path down to
// it (empty for top-level roles), visiting at most MaxDelegations roles.
// load returns a role's delegations in its newest metadata, nil when it
// has none or the role has no metadata.
func FindDelegatorPath(role string, load func(name string) (*metadata.Delegations, error)) ([]string, error) {
	if role == metadata.ROOT || role == metadata.TARGETS {
		return nil, nil
	}
	type node struct {
		name string
		path []string
	}
	queue := []node{{metadata.TARGETS, []string{metadata.TARGETS}}}
	seen := map[string]bool{}
	for visited := 0; len(queue) > 0; visited++ {
		if visited > MaxDelegations {
			return nil, fmt.Errorf("more than %d delegations visited looking for role %s", MaxDelegations, role)
		}
		n := queue[0]
		queue = queue[1:]
		if seen[n.name] {
			continue
		}
		seen[n.name] = true
		ds, err := load(n.name)
		if err != nil {
			return nil, fmt.Errorf("role %s: %w", n.name, err)
		}
		if ds == nil {
			continue
		}
		for _, d := range ds.Roles {
			if d.Name == role {
				return n.path, nil
			}
		}
		if sr := ds.SuccinctRoles; sr != nil && sr.IsDelegatedRole(role) {
			return n.path, nil
		}
		for _, d := range ds.Roles {
			queue = append(queue, node{d.Name, append(slices.Clone(n.path), d.Name)})
		}
	}
	return nil, fmt.Errorf("no role delegates %q; add it with airlock delegate", role)
}

// Delegation returns who may sign role according to the repository, as a
// client would establish it: the root chain from 1.root.json, then each
// delegator from targets down verified under its own delegator, through the
// same verification core as the Updater. Expiry is not judged: the
// repository's own files are being updated, not installed.
func (r *Repository) Delegation(role string) (*Delegation, error) {
	root, err := r.verifiedRoot()
	if err != nil {
		return nil, err
	}
	if role == metadata.ROOT || role == metadata.TARGETS {
		return DelegationFromRoot(root, role)
	}
	p, err := r.DelegatorPath(role)
	if err != nil {
		return nil, err
	}
	d, err := DelegationFromRoot(root, metadata.TARGETS)
	if err != nil {
		return nil, err
	}
	for i, name := range p {
		raw, err := r.RoleBytes(name)
		if err != nil {
			return nil, err
		}
		t, _, err := VerifyTargets(raw, d, RoleCheck{})
		if err != nil {
			return nil, fmt.Errorf("repository %s: %w", r.Dir, err)
		}
		next := role
		if i+1 < len(p) {
			next = p[i+1]
		}
		if d, err = t.Delegation(name, next); err != nil {
			return nil, err
		}
	}
	return d, nil
}

// verifiedRoot returns the newest root, verified from 1.root.json through
// every root version.
func (r *Repository) verifiedRoot() (*metadata.Metadata[metadata.RootType], error) {
	vs, err := r.RootVersions()
	if err != nil {
		return nil, err
	}
	first, err := ParseStrict[metadata.RootType](vs[0])
	if err != nil {
		return nil, fmt.Errorf("repository %s: root version 1: %w", r.Dir, err)
	}
	if err := VerifyTrustedRoot(first); err != nil {
		return nil, fmt.Errorf("repository %s: root version 1: %w", r.Dir, err)
	}
	root, err := VerifyRootChain(first, vs[1:], time.Time{})
	if err != nil {
		return nil, fmt.Errorf("repository %s: %w", r.Dir, err)
	}
	return root, nil
}

// CheckPaths refuses metadata of role adding or changing a target that the
// role's delegator in this repository does not grant it (the rule the
// appliance applies before signing). Targets the current version already
// lists are left alone: after a delegator narrows a role's paths, those
// are no longer found by clients, and a release must still be possible.
func (r *Repository) CheckPaths(role string, m *metadata.Metadata[metadata.TargetsType]) error {
	if role == metadata.ROOT || role == metadata.TARGETS {
		return nil
	}
	cur, err := r.Role(role)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	p, err := r.DelegatorPath(role)
	if err != nil {
		return err
	}
	parent := p[len(p)-1]
	pm, err := r.Role(parent)
	if err != nil {
		return err
	}
	return CheckDelegatedPaths(pm, parent, role, changedTargets(cur, m))
}

// changedTargets lists the targets of m that cur (nil: none) does not
// list with the same description.
func changedTargets(cur, m *metadata.Metadata[metadata.TargetsType]) []string {
	var names []string
	for name, tf := range m.Signed.Targets {
		if cur != nil {
			if old, ok := cur.Signed.Targets[name]; ok && old.Equal(*tf) {
				continue
			}
		}
		names = append(names, name)
	}
	return names
}

// NextTargets returns the next, unsigned version of a targets role: a copy
// of the current one with version+1 and the given expiry, or version 1 of a
// newly delegated role.
func (r *Repository) NextTargets(role string, expires time.Time) (*metadata.Metadata[metadata.TargetsType], error) {
	cur, err := r.Role(role)
	if errors.Is(err, fs.ErrNotExist) {
		if _, err := r.Delegation(role); err != nil {
			return nil, err
		}
		return metadata.Targets(SpecDate(expires)), nil
	}
	if err != nil {
		return nil, err
	}
	next := cur
	next.Signatures = []metadata.Signature{}
	next.Signed.Version++
	next.Signed.Expires = SpecDate(expires)
	if next.Signed.Targets == nil {
		next.Signed.Targets = map[string]*metadata.TargetFiles{}
	}
	return next, nil
}

// NextRoot returns the next, unsigned root version.
func (r *Repository) NextRoot(expires time.Time) (*metadata.Metadata[metadata.RootType], error) {
	cur, err := r.Root()
	if err != nil {
		return nil, err
	}
	cur.Signatures = []metadata.Signature{}
	cur.Signed.Version++
	cur.Signed.Expires = SpecDate(expires)
	return cur, nil
}

// CommitTargets verifies signed metadata of a targets role against its
// delegator (threshold by distinct keys, groups, version above the current)
// and writes it, then refreshes snapshot and timestamp.
func (r *Repository) CommitTargets(role string, m *metadata.Metadata[metadata.TargetsType], online hsm.Signer, now time.Time) error {
	if err := r.WriteTargets(role, m, now); err != nil {
		return err
	}
	return r.Refresh(online, now)
}

// WriteTargets verifies and writes signed metadata of a targets role as
// CommitTargets does, without refreshing snapshot and timestamp: a caller
// writing several roles refreshes once after the last (Refresh).
func (r *Repository) WriteTargets(role string, m *metadata.Metadata[metadata.TargetsType], now time.Time) error {
	d, err := r.Delegation(role)
	if err != nil {
		return err
	}
	cur, err := r.RoleVersion(role)
	if err != nil {
		return err
	}
	b, err := EncodeMetadata(m)
	if err != nil {
		return err
	}
	if err := r.CheckPaths(role, m); err != nil {
		return err
	}
	// What is verified is exactly what is written, through the same code
	// every client runs.
	t, _, err := VerifyTargets(b, d, RoleCheck{RefTime: now, Current: cur})
	if err != nil {
		return err
	}
	return writeFileAtomic(r.metaPath(fmt.Sprintf("%d.%s.json", t.Header.Version, role)), b)
}

// WriteTargetsUnder is WriteTargets for a caller that established from
// this repository's files who may sign role (d, as Delegation returns
// it) and the delegations of its delegating role (delegator, dg; ignored
// for root and targets), for instance from metadata it verified and
// cached by content: the paths rule, the version and the threshold are
// checked as WriteTargets checks them, without reading the delegating
// roles again.
func (r *Repository) WriteTargetsUnder(role string, m *metadata.Metadata[metadata.TargetsType], now time.Time, d *Delegation, delegator string, dg *metadata.Delegations) error {
	if d == nil {
		return fmt.Errorf("role %s: no delegation given", role)
	}
	cur, err := r.RoleVersion(role)
	if err != nil {
		return err
	}
	b, err := EncodeMetadata(m)
	if err != nil {
		return err
	}
	if role != metadata.ROOT && role != metadata.TARGETS {
		curM, err := r.Role(role)
		if errors.Is(err, fs.ErrNotExist) {
			curM = nil
		} else if err != nil {
			return err
		}
		if err := CheckDelegationPaths(dg, delegator, role, changedTargets(curM, m)); err != nil {
			return err
		}
	}
	t, _, err := VerifyTargets(b, d, RoleCheck{RefTime: now, Current: cur})
	if err != nil {
		return err
	}
	return writeFileAtomic(r.metaPath(fmt.Sprintf("%d.%s.json", t.Header.Version, role)), b)
}

// CommitRoot verifies a new root against the current one (threshold of the
// old and the new root keys) and writes it.
func (r *Repository) CommitRoot(m *metadata.Metadata[metadata.RootType], online hsm.Signer, now time.Time) error {
	cur, err := r.Root()
	if err != nil {
		return err
	}
	raw, err := EncodeMetadata(m)
	if err != nil {
		return err
	}
	if _, err := VerifyRootChain(cur, [][]byte{raw}, now); err != nil {
		return err
	}
	if err := r.writeRootBytes(m.Signed.Version, raw); err != nil {
		return err
	}
	return r.Refresh(online, now)
}

// AddTargetFile stores a target's bytes under their consistent-snapshot
// names, one per hash algorithm the metadata lists, as the specification
// asks (targets/DIR/SHA256.NAME and targets/DIR/SHA512.NAME): clients pick
// either.
func (r *Repository) AddTargetFile(target string, data []byte) error {
	if err := checkTargetPath(target); err != nil {
		return err
	}
	tf, err := HashReader(bytes.NewReader(data))
	if err != nil {
		return err
	}
	dir, base := path.Split(target)
	for _, alg := range []string{"sha256", "sha512"} {
		p := filepath.Join(r.Dir, "targets", filepath.FromSlash(dir), hex.EncodeToString(tf.Hashes[alg])+"."+base)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		if err := writeFileAtomic(p, data); err != nil {
			return err
		}
	}
	return nil
}

func (r *Repository) writeRoot(m *metadata.Metadata[metadata.RootType]) error {
	b, err := EncodeMetadata(m)
	if err != nil {
		return err
	}
	return r.writeRootBytes(m.Signed.Version, b)
}

func (r *Repository) writeRootBytes(version int64, b []byte) error {
	if err := writeFileAtomic(r.metaPath(fmt.Sprintf("%d.root.json", version)), b); err != nil {
		return err
	}
	return writeFileAtomic(r.metaPath("root.json"), b)
}

// EncodeMetadata is how Airlock writes signed metadata: the signed part in
// exactly its canonical form (the bytes the signatures are over), so a
// client verifies it as it is instead of decoding and re-encoding it. It
// falls back to go-tuf's indented form for metadata whose canonical form is
// not valid JSON (a string with a control character).
func EncodeMetadata[T metadata.Roles](m *metadata.Metadata[T]) ([]byte, error) {
	payload, err := Canonical(m)
	if err != nil {
		return nil, err
	}
	return EncodeMetadataCanonical(m, payload)
}

// EncodeMetadataCanonical is EncodeMetadata for a caller that holds the
// canonical form of m's signed part already (Payload.Canonical): payload
// must be exactly Canonical(m).
func EncodeMetadataCanonical[T metadata.Roles](m *metadata.Metadata[T], payload []byte) ([]byte, error) {
	if len(m.UnrecognizedFields) > 0 || !json.Valid(payload) {
		return m.ToBytes(true)
	}
	sigs := m.Signatures
	if sigs == nil {
		sigs = []metadata.Signature{}
	}
	sb, err := json.Marshal(sigs)
	if err != nil {
		return nil, err
	}
	out := make([]byte, 0, len(payload)+len(sb)+28)
	out = append(out, `{"signatures":`...)
	out = append(out, sb...)
	out = append(out, `,"signed":`...)
	out = append(out, payload...)
	return append(out, "}\n"...), nil
}

func (r *Repository) writeRole(role string, m *metadata.Metadata[metadata.TargetsType]) error {
	b, err := EncodeMetadata(m)
	if err != nil {
		return err
	}
	return writeFileAtomic(r.metaPath(fmt.Sprintf("%d.%s.json", m.Signed.Version, role)), b)
}

// Refresh writes a new snapshot listing every targets role's newest version,
// and a new timestamp over it, both signed with the online key.
func (r *Repository) Refresh(online hsm.Signer, now time.Time) error {
	if online == nil {
		return errors.New("refreshing snapshot and timestamp needs the online key")
	}
	snapExp, err := time.ParseDuration(r.Config.SnapshotExpires)
	if err != nil {
		return fmt.Errorf("%s: snapshot_expires: %w", repoConfigName, err)
	}
	tsExp, err := time.ParseDuration(r.Config.TimestampExpires)
	if err != nil {
		return fmt.Errorf("%s: timestamp_expires: %w", repoConfigName, err)
	}
	versions, err := r.roleVersions()
	if err != nil {
		return err
	}
	var snapVer, tsVer int64 = 1, 1
	if b, err := os.ReadFile(r.metaPath("timestamp.json")); err == nil {
		ts, err := ParseStrict[metadata.TimestampType](b)
		if err != nil {
			return fmt.Errorf("timestamp.json: %w", err)
		}
		tsVer = ts.Signed.Version + 1
		snapVer = ts.Signed.Meta["snapshot.json"].Version + 1
	}
	snap := metadata.Snapshot(expiry(now, snapExp))
	snap.Signed.Version = snapVer
	snap.Signed.Meta = map[string]*metadata.MetaFiles{}
	for role, v := range versions {
		snap.Signed.Meta[role+".json"] = metadata.MetaFile(v)
	}
	root, err := r.Root()
	if err != nil {
		return err
	}
	snapD, err := DelegationFromRoot(root, metadata.SNAPSHOT)
	if err != nil {
		return err
	}
	tsD, err := DelegationFromRoot(root, metadata.TIMESTAMP)
	if err != nil {
		return err
	}
	if err := SignAll(snap, snapD, []hsm.Signer{online}); err != nil {
		return err
	}
	sb, err := EncodeMetadata(snap)
	if err != nil {
		return err
	}
	if err := writeFileAtomic(r.metaPath(fmt.Sprintf("%d.snapshot.json", snapVer)), sb); err != nil {
		return err
	}
	ts := metadata.Timestamp(expiry(now, tsExp))
	ts.Signed.Version = tsVer
	mf := metadata.MetaFile(snapVer)
	mf.Length = int64(len(sb))
	sum := sha256.Sum256(sb)
	mf.Hashes = metadata.Hashes{"sha256": sum[:]}
	ts.Signed.Meta["snapshot.json"] = mf
	if err := SignAll(ts, tsD, []hsm.Signer{online}); err != nil {
		return err
	}
	tb, err := EncodeMetadata(ts)
	if err != nil {
		return err
	}
	return writeFileAtomic(r.metaPath("timestamp.json"), tb)
}

// BuildRequest assembles the signing request for new unsigned metadata of a
// role: the chain of trust from root v1, the role's current metadata and
// the delegators above it.
func (r *Repository) BuildRequest(kind, role string, unsigned []byte, now time.Time) (*Request, error) {
	req := &Request{Format: RequestFormat, Kind: kind, Role: role, Metadata: unsigned, Created: now.UTC().Truncate(time.Second)}
	roots, err := r.RootVersions()
	if err != nil {
		return nil, err
	}
	for _, b := range roots {
		req.Chain.Root = append(req.Chain.Root, json.RawMessage(compactJSON(b)))
	}
	switch role {
	case metadata.ROOT:
		req.Delegator = metadata.ROOT
		req.Current = compactJSON(roots[len(roots)-1])
	case metadata.TARGETS:
		req.Delegator = metadata.ROOT
	default:
		p, err := r.DelegatorPath(role)
		if err != nil {
			return nil, err
		}
		req.Delegator = p[len(p)-1]
		for _, name := range p {
			b, err := r.RoleBytes(name)
			if err != nil {
				return nil, err
			}
			req.Chain.Delegators = append(req.Chain.Delegators, compactJSON(b))
		}
	}
	if role != metadata.ROOT {
		if b, err := r.RoleBytes(role); err == nil {
			req.Current = compactJSON(b)
		} else if !errors.Is(err, fs.ErrNotExist) {
			return nil, err
		}
	}
	return req, req.validate()
}

func compactJSON(b []byte) json.RawMessage {
	var buf bytes.Buffer
	if err := json.Compact(&buf, b); err != nil {
		return json.RawMessage(b)
	}
	return json.RawMessage(buf.Bytes())
}

func writeJSON(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	return writeFileAtomic(path, append(b, '\n'))
}

// writeFileAtomic writes via a temporary file, fsync and rename.
func writeFileAtomic(name string, data []byte) error {
	f, err := os.CreateTemp(filepath.Dir(name), ".tmp-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer os.Remove(tmp)
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Chmod(tmp, 0o644); err != nil {
		return err
	}
	if err := os.Rename(tmp, name); err != nil {
		return err
	}
	if d, err := os.Open(filepath.Dir(name)); err == nil {
		_ = d.Sync()
		d.Close()
	}
	return nil
}
