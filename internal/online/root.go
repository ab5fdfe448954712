package online

import (
	"fmt"
	"slices"
	"time"

	"github.com/theupdateframework/go-tuf/v2/metadata"

	"airlock.dev/airlock/tuf"
)

// RootOptions describes the next root version: keys of one top-level role
// added and removed, its threshold, and the new expiry.
type RootOptions struct {
	Role      string          // root, targets, snapshot or timestamp (default root)
	Add       []*metadata.Key // keys to add to Role
	Remove    []string        // key ids to remove from Role
	Threshold int             // new threshold of Role; 0 keeps it
	Expires   time.Duration   // default 365 days
	Note      string
	Now       time.Time
}

// CreateRootBundle builds the next root version with the given changes and
// the signing request for a root ceremony: the appliance has it signed by a
// threshold of the current root keys and of the new ones.
func CreateRootBundle(repo *tuf.Repository, o RootOptions) (*Bundle, error) {
	if o.Role == "" {
		o.Role = metadata.ROOT
	}
	if !slices.Contains(metadata.TOP_LEVEL_ROLE_NAMES[:], o.Role) {
		return nil, fmt.Errorf("role %q: want root, targets, snapshot or timestamp", o.Role)
	}
	if o.Threshold < 0 {
		return nil, fmt.Errorf("threshold %d: want 1 or more", o.Threshold)
	}
	if o.Now.IsZero() {
		o.Now = time.Now()
	}
	if o.Expires == 0 {
		o.Expires = 365 * 24 * time.Hour
	}
	next, err := repo.NextRoot(o.Now.Add(o.Expires))
	if err != nil {
		return nil, err
	}
	r := next.Signed.Roles[o.Role]
	if r == nil {
		return nil, fmt.Errorf("root version %d has no role %s", next.Signed.Version-1, o.Role)
	}
	for _, id := range o.Remove {
		if !slices.Contains(r.KeyIDs, id) {
			return nil, fmt.Errorf("key %s is not a key of %s", id, o.Role)
		}
		if err := next.Signed.RevokeKey(id, o.Role); err != nil {
			return nil, fmt.Errorf("remove key %s: %w", id, err)
		}
	}
	for _, k := range o.Add {
		if id := KeyIDByPublicKey(next, o.Role, k); id != "" {
			return nil, fmt.Errorf("the key to add is already a key of %s (key id %s)", o.Role, id)
		}
		if err := next.Signed.AddKey(k, o.Role); err != nil {
			return nil, fmt.Errorf("add key: %w", err)
		}
	}
	if o.Threshold > 0 {
		r.Threshold = o.Threshold
	}
	if _, err := tuf.DelegationFromRoot(next, o.Role); err != nil {
		return nil, fmt.Errorf("the new root would not work: %w", err)
	}
	if err := tuf.CheckUniqueKeysRoot(next); err != nil {
		return nil, err
	}
	raw, err := next.ToBytes(false)
	if err != nil {
		return nil, err
	}
	req, err := repo.BuildRequest(tuf.KindRootRotate, metadata.ROOT, raw, o.Now)
	if err != nil {
		return nil, err
	}
	req.Note = o.Note
	if _, err := req.Payload(); err != nil {
		return nil, err
	}
	return &Bundle{Request: req, Files: map[string]string{}}, nil
}

// KeyIDByPublicKey is the key id under which role of root lists k's public
// key, or "".
func KeyIDByPublicKey(root *metadata.Metadata[metadata.RootType], role string, k *metadata.Key) string {
	fp, err := tuf.Fingerprint(k)
	if err != nil {
		return ""
	}
	rr := root.Signed.Roles[role]
	if rr == nil {
		return ""
	}
	for _, id := range rr.KeyIDs {
		if kfp, err := tuf.Fingerprint(root.Signed.Keys[id]); err == nil && kfp == fp {
			return id
		}
	}
	return ""
}
