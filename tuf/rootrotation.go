package tuf

import (
	"fmt"
	"slices"

	"github.com/theupdateframework/go-tuf/v2/metadata"
)

// RootRotationSigners returns who may sign a new root version: the root
// role of the current root (old) and of the new one (new), and a
// delegation listing the keys of both (threshold 1) that signatures
// are collected against. A root rotation needs a threshold of old and of
// new; all-new keys sign under new.
func RootRotationSigners(cur, next *metadata.Metadata[metadata.RootType]) (either, old, new *Delegation, err error) {
	if old, err = DelegationFromRoot(cur, metadata.ROOT); err != nil {
		return nil, nil, nil, fmt.Errorf("current root: %w", err)
	}
	if new, err = DelegationFromRoot(next, metadata.ROOT); err != nil {
		return nil, nil, nil, fmt.Errorf("new root: %w", err)
	}
	either = &Delegation{Role: metadata.ROOT, Delegator: metadata.ROOT, Keys: map[string]*metadata.Key{}, Threshold: 1}
	for _, d := range []*Delegation{old, new} {
		for _, id := range d.KeyIDs {
			if _, dup := either.Keys[id]; !dup {
				either.Keys[id] = d.Keys[id]
				either.KeyIDs = append(either.KeyIDs, id)
			}
		}
	}
	return either, old, new, nil
}

// CombineRoot merges signature responses into a new root version, as
// Combine does, accepting signatures by keys of the current or the new
// root, and checks the thresholds of both: the same check every TUF client
// makes on a root step.
func CombineRoot(p *Payload, cur *metadata.Metadata[metadata.RootType], existing []metadata.Signature, responses []*Response) (*Combined, error) {
	if p.Root == nil {
		return nil, fmt.Errorf("the request's metadata is not a root")
	}
	if p.Version != cur.Signed.Version+1 {
		return nil, fmt.Errorf("new root version %d does not directly follow the current root version %d", p.Version, cur.Signed.Version)
	}
	either, old, new, err := RootRotationSigners(cur, p.Root)
	if err != nil {
		return nil, err
	}
	c, err := Combine(p, metadata.ROOT, either, existing, responses)
	if err != nil {
		return c, fmt.Errorf("%w (a root rotation takes signatures by keys of root version %d or %d)", err, cur.Signed.Version, p.Version)
	}
	vo, err := VerifySignatures(old, p.Canonical, c.Signatures)
	if err != nil {
		return c, fmt.Errorf("root version %d under the keys of version %d: %w", p.Version, cur.Signed.Version, err)
	}
	vn, err := VerifySignatures(new, p.Canonical, c.Signatures)
	if err != nil {
		c.Verified = vn
		return c, fmt.Errorf("root version %d under its own keys: %w", p.Version, err)
	}
	// Every key that signed, old or new, once.
	c.Verified = &Verified{Role: metadata.ROOT, Threshold: vn.Threshold, Signers: vn.Signers}
	for _, s := range vo.Signers {
		if !slices.ContainsFunc(c.Verified.Signers, func(x Signer) bool { return x.Fingerprint == s.Fingerprint }) {
			c.Verified.Signers = append(c.Verified.Signers, s)
		}
	}
	return c, nil
}
