package tuf

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/theupdateframework/go-tuf/v2/metadata"
)

// DeriveTargetsKind returns the ceremony kind that a new version of a
// targets role is, from the metadata alone: the kind a request is labelled
// with never decides what policy applies.
//
//   - delegation: the delegations change (keys, thresholds, paths, groups,
//     roles added or removed), with or without target changes;
//   - enrolment: a delegation change that only adds keys to roles that keep
//     their threshold, paths and groups;
//   - release: the targets (or any other field but version and expiry)
//     change and the delegations do not;
//   - resign: only the version and the expiry change.
//
// cur is the current signed version, nil for a role's first version. The
// second result says in a few words why.
func DeriveTargetsKind(cur, next *metadata.Metadata[metadata.TargetsType]) (string, string) {
	var curDg *metadata.Delegations
	if cur != nil {
		curDg = cur.Signed.Delegations
	}
	nextDg := next.Signed.Delegations
	if !sameJSON(emptyDelegations(curDg), emptyDelegations(nextDg)) {
		if onlyAddsKeys(curDg, nextDg) {
			return KindEnrolment, "it only adds keys to delegated roles"
		}
		return KindDelegation, "it changes the delegations (keys, thresholds, paths or roles)"
	}
	if cur == nil {
		return KindRelease, "it is the first version of the role"
	}
	if len(DiffTargets(cur, next)) > 0 {
		return KindRelease, "it changes targets"
	}
	a, b := cur.Signed, next.Signed
	a.Version, b.Version = 0, 0
	a.Expires, b.Expires = time.Time{}, time.Time{}
	if !sameJSON(a, b) {
		return KindRelease, "it changes fields other than version and expiry"
	}
	return KindResign, "it changes only the version and expiry"
}

// emptyDelegations treats delegations that delegate nothing as absent.
func emptyDelegations(dg *metadata.Delegations) *metadata.Delegations {
	if dg == nil || (len(dg.Roles) == 0 && dg.SuccinctRoles == nil && len(dg.Keys) == 0 && len(dg.UnrecognizedFields) == 0) {
		return nil
	}
	return dg
}

// onlyAddsKeys reports whether next differs from cur only by keys added to
// existing roles: same roles in the same order with the same threshold,
// paths and groups, every old key kept unchanged, at least one key added.
func onlyAddsKeys(cur, next *metadata.Delegations) bool {
	if cur == nil || next == nil || len(cur.Roles) != len(next.Roles) || cur.SuccinctRoles != nil || next.SuccinctRoles != nil {
		return false
	}
	if !sameJSON(cur.UnrecognizedFields, next.UnrecognizedFields) {
		return false
	}
	for id, k := range cur.Keys {
		if nk, ok := next.Keys[id]; !ok || !sameJSON(k, nk) {
			return false
		}
	}
	added := false
	for i := range cur.Roles {
		o, n := cur.Roles[i], next.Roles[i]
		for _, id := range o.KeyIDs {
			if !slices.Contains(n.KeyIDs, id) {
				return false
			}
		}
		if len(n.KeyIDs) > len(o.KeyIDs) {
			added = true
		}
		o.KeyIDs, n.KeyIDs = nil, nil
		if !sameJSON(o, n) {
			return false
		}
	}
	return added
}

func sameJSON(a, b any) bool {
	ja, err1 := json.Marshal(a)
	jb, err2 := json.Marshal(b)
	return err1 == nil && err2 == nil && bytes.Equal(ja, jb)
}

// KindCovers reports whether a request labelled label may carry a change of
// the derived kind: the labels must agree, except that an enrolment is also
// a delegation change.
func KindCovers(label, derived string) bool {
	return label == derived || (label == KindDelegation && derived == KindEnrolment)
}

// CheckKindLabel refuses a label that disagrees with the derived kind.
func CheckKindLabel(label, derived, why string) error {
	if KindCovers(label, derived) {
		return nil
	}
	return fmt.Errorf("the request is labelled %q but its metadata is a %s (%s)", label, derived, why)
}
