package tuf

import (
	"crypto/sha256"
	"crypto/sha512"
	"encoding/json"
	"fmt"
	"hash"
	"io"
	"sort"

	"github.com/theupdateframework/go-tuf/v2/metadata"
)

// DelegationSpec describes a delegated role to add or change.
type DelegationSpec struct {
	Name        string
	Keys        []*metadata.Key
	Threshold   int
	Paths       []string
	HashPrefix  []string
	Terminating bool
	Groups      []Group
}

// SetDelegation adds the delegated role to t, or replaces it in place when a
// role of that name exists. Keys no role uses any more are dropped.
func SetDelegation(t *metadata.Metadata[metadata.TargetsType], spec DelegationSpec) error {
	if err := checkRoleName(spec.Name); err != nil {
		return err
	}
	if len(spec.Paths) > 0 && len(spec.HashPrefix) > 0 {
		return fmt.Errorf("role %s: paths and path hash prefixes are exclusive", spec.Name)
	}
	if len(spec.Paths) == 0 && len(spec.HashPrefix) == 0 {
		return fmt.Errorf("role %s: give at least one path pattern", spec.Name)
	}
	if t.Signed.Delegations == nil {
		t.Signed.Delegations = &metadata.Delegations{Keys: map[string]*metadata.Key{}}
	}
	dg := t.Signed.Delegations
	if dg.SuccinctRoles != nil {
		return fmt.Errorf("role %s: this role delegates with succinct hashed bins; named roles cannot be added", spec.Name)
	}
	role := metadata.DelegatedRole{Name: spec.Name, Threshold: spec.Threshold, Terminating: spec.Terminating, Paths: spec.Paths, PathHashPrefixes: spec.HashPrefix, KeyIDs: []string{}}
	byFingerprint := map[string]string{}
	for i, k := range spec.Keys {
		id, err := KeyID(k)
		if err != nil {
			return fmt.Errorf("key %d: %w", i, err)
		}
		fp, err := Fingerprint(k)
		if err != nil {
			return fmt.Errorf("key %d: %w", i, err)
		}
		if other, dup := byFingerprint[fp]; dup {
			return fmt.Errorf("key %d is the same public key as key %s", i, short(other))
		}
		byFingerprint[fp] = id
		dg.Keys[id] = k
		role.KeyIDs = append(role.KeyIDs, id)
	}
	SetGroups(&role, spec.Groups)
	replaced := false
	for i := range dg.Roles {
		if dg.Roles[i].Name == spec.Name {
			dg.Roles[i] = role
			replaced = true
		}
	}
	if !replaced {
		dg.Roles = append(dg.Roles, role)
	}
	pruneKeys(dg)
	_, err := DelegationFromTargets(t, "", spec.Name)
	return err
}

// RemoveDelegation removes a delegated role and keys nothing else uses.
func RemoveDelegation(t *metadata.Metadata[metadata.TargetsType], name string) error {
	dg := t.Signed.Delegations
	if dg == nil {
		return fmt.Errorf("role %s is not delegated", name)
	}
	out := dg.Roles[:0]
	found := false
	for _, r := range dg.Roles {
		if r.Name == name {
			found = true
			continue
		}
		out = append(out, r)
	}
	if !found {
		return fmt.Errorf("role %s is not delegated", name)
	}
	dg.Roles = out
	pruneKeys(dg)
	if len(dg.Roles) == 0 && dg.SuccinctRoles == nil {
		t.Signed.Delegations = nil
	}
	return nil
}

// SetSuccinctBins delegates all targets to 2^bits hashed bins named
// PREFIX-XX, each signed by the same keys and threshold.
func SetSuccinctBins(t *metadata.Metadata[metadata.TargetsType], keys []*metadata.Key, threshold, bits int, prefix string) error {
	if bits < 1 || bits > 32 {
		return fmt.Errorf("bit length %d is outside 1 to 32", bits)
	}
	if err := checkRoleName(prefix); err != nil {
		return err
	}
	if t.Signed.Delegations != nil && len(t.Signed.Delegations.Roles) > 0 {
		return fmt.Errorf("role already delegates to named roles; remove them before using hashed bins")
	}
	dg := &metadata.Delegations{Keys: map[string]*metadata.Key{}}
	sr := &metadata.SuccinctRoles{Threshold: threshold, BitLength: bits, NamePrefix: prefix, KeyIDs: []string{}}
	for i, k := range keys {
		id, err := KeyID(k)
		if err != nil {
			return fmt.Errorf("key %d: %w", i, err)
		}
		dg.Keys[id] = k
		sr.KeyIDs = append(sr.KeyIDs, id)
	}
	dg.SuccinctRoles = sr
	t.Signed.Delegations = dg
	_, err := DelegationFromTargets(t, "", sr.GetRoles()[0])
	return err
}

func pruneKeys(dg *metadata.Delegations) {
	used := map[string]bool{}
	for _, r := range dg.Roles {
		for _, id := range r.KeyIDs {
			used[id] = true
		}
	}
	if dg.SuccinctRoles != nil {
		for _, id := range dg.SuccinctRoles.KeyIDs {
			used[id] = true
		}
	}
	for id := range dg.Keys {
		if !used[id] {
			delete(dg.Keys, id)
		}
	}
}

// HashReader computes a target's length, SHA-256 and SHA-512 in one pass.
func HashReader(r io.Reader) (*metadata.TargetFiles, error) {
	h256, h512 := sha256.New(), sha512.New()
	n, err := io.CopyBuffer(io.MultiWriter(h256, h512), r, make([]byte, 1<<20))
	if err != nil {
		return nil, err
	}
	return &metadata.TargetFiles{Length: n, Hashes: metadata.Hashes{"sha256": sum(h256), "sha512": sum(h512)}}, nil
}

func sum(h hash.Hash) metadata.HexBytes { return h.Sum(nil) }

// SetTarget adds or replaces a target with its length and hashes and
// optional custom JSON.
func SetTarget(t *metadata.Metadata[metadata.TargetsType], target string, tf *metadata.TargetFiles, custom json.RawMessage) error {
	if err := checkTargetPath(target); err != nil {
		return err
	}
	if tf.Length < 0 || len(tf.Hashes) == 0 {
		return fmt.Errorf("target %s: needs a length and hashes", target)
	}
	c := &metadata.TargetFiles{Length: tf.Length, Hashes: tf.Hashes, Path: target}
	if len(custom) > 0 {
		if err := checkStrictJSON(custom, MaxNoteBytes); err != nil {
			return fmt.Errorf("target %s: custom: %w", target, err)
		}
		raw := json.RawMessage(append([]byte(nil), custom...))
		c.Custom = &raw
	}
	if t.Signed.Targets == nil {
		t.Signed.Targets = map[string]*metadata.TargetFiles{}
	}
	t.Signed.Targets[target] = c
	return nil
}

// RemoveTarget removes a target; it is an error if the role lacks it.
func RemoveTarget(t *metadata.Metadata[metadata.TargetsType], target string) error {
	if _, ok := t.Signed.Targets[target]; !ok {
		return fmt.Errorf("role has no target %q", target)
	}
	delete(t.Signed.Targets, target)
	return nil
}

// TargetChange is one difference between two versions of a targets role.
type TargetChange struct {
	Path   string                `json:"path"`
	Change string                `json:"change"` // added, removed, changed
	Old    *metadata.TargetFiles `json:"old,omitempty"`
	New    *metadata.TargetFiles `json:"new,omitempty"`
}

// DiffTargets lists the targets added, removed and changed between two
// versions of a role (old may be nil), sorted by path.
func DiffTargets(old, new *metadata.Metadata[metadata.TargetsType]) []TargetChange {
	var out []TargetChange
	oldT := map[string]*metadata.TargetFiles{}
	if old != nil {
		oldT = old.Signed.Targets
	}
	for p, n := range new.Signed.Targets {
		o, ok := oldT[p]
		switch {
		case !ok:
			out = append(out, TargetChange{Path: p, Change: "added", New: n})
		case o.Length != n.Length || !o.Hashes.Equal(n.Hashes) || !customEqual(o.Custom, n.Custom):
			out = append(out, TargetChange{Path: p, Change: "changed", Old: o, New: n})
		}
	}
	for p, o := range oldT {
		if _, ok := new.Signed.Targets[p]; !ok {
			out = append(out, TargetChange{Path: p, Change: "removed", Old: o})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	return out
}

func customEqual(a, b *json.RawMessage) bool {
	if a == nil || b == nil {
		return a == b
	}
	return string(*a) == string(*b)
}
