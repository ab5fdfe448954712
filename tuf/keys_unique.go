package tuf

import (
	"errors"
	"fmt"
	"sort"

	"github.com/theupdateframework/go-tuf/v2/metadata"
)

// ErrDuplicateKey means one public key is listed under two key IDs. TUF
// clients count signatures by key ID, so such a key can count twice towards
// a threshold in clients that do not compare public keys (tuf-js 3.x does
// not); Airlock refuses the metadata instead.
var ErrDuplicateKey = errors.New("one public key is listed under two key ids")

// CheckUniqueKeys refuses a key set (a root's keys, or a targets role's
// delegation keys) that lists one public key under more than one key ID.
// where names the metadata in the message ("root version 3", "delegations
// of targets version 5").
func CheckUniqueKeys(where string, keys map[string]*metadata.Key) error {
	ids := make([]string, 0, len(keys))
	for id := range keys {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	byFP := make(map[string]string, len(keys))
	for _, id := range ids {
		k := keys[id]
		if k == nil {
			return fmt.Errorf("%s: key %s is empty", where, short(id))
		}
		fp, err := Fingerprint(k)
		if err != nil {
			// An unusable key cannot count twice; Delegation checks refuse it
			// where it matters.
			continue
		}
		if other, dup := byFP[fp]; dup {
			return fmt.Errorf("%s: %w: %s and %s are the same public key (fingerprint %s); list each key once", where, ErrDuplicateKey, short(other), short(id), short(fp))
		}
		byFP[fp] = id
	}
	return nil
}

// CheckUniqueKeysRoot checks a root's key set.
func CheckUniqueKeysRoot(r *metadata.Metadata[metadata.RootType]) error {
	return CheckUniqueKeys(fmt.Sprintf("root version %d", r.Signed.Version), r.Signed.Keys)
}

// CheckUniqueKeysTargets checks the delegation keys of a targets role.
func CheckUniqueKeysTargets(role string, t *metadata.Metadata[metadata.TargetsType]) error {
	if t.Signed.Delegations == nil {
		return nil
	}
	return CheckUniqueKeys(fmt.Sprintf("delegations of %s version %d", role, t.Signed.Version), t.Signed.Delegations.Keys)
}

// CheckUniqueKeysRequest checks every root and delegation a request carries:
// the new metadata, the current one and the whole chain of trust.
func (req *Request) CheckUniqueKeys() error {
	for i, raw := range req.Chain.Root {
		r, err := ParseStrict[metadata.RootType](raw)
		if err != nil {
			return fmt.Errorf("chain root %d: %w", i, err)
		}
		if err := CheckUniqueKeysRoot(r); err != nil {
			return fmt.Errorf("chain: %w", err)
		}
	}
	for i, raw := range req.Chain.Delegators {
		t, err := ParseStrict[metadata.TargetsType](raw)
		if err != nil {
			return fmt.Errorf("chain delegator %d: %w", i, err)
		}
		if err := CheckUniqueKeysTargets(fmt.Sprintf("chain delegator %d", i), t); err != nil {
			return fmt.Errorf("chain: %w", err)
		}
	}
	p, err := req.Payload()
	if err != nil {
		return err
	}
	if p.Root != nil {
		return CheckUniqueKeysRoot(p.Root)
	}
	if err := CheckUniqueKeysTargets(req.Role, p.Targets); err != nil {
		return fmt.Errorf("new metadata: %w", err)
	}
	if len(req.Current) > 0 {
		cur, err := ParseStrict[metadata.TargetsType](req.Current)
		if err != nil {
			return fmt.Errorf("current metadata: %w", err)
		}
		if err := CheckUniqueKeysTargets(req.Role, cur); err != nil {
			return fmt.Errorf("current metadata: %w", err)
		}
	}
	return nil
}
