package tuf

import (
	"errors"
	"fmt"
	"slices"
	"sort"

	"github.com/theupdateframework/go-tuf/v2/metadata"
)

// ErrOutsidePaths means a target is not among the paths a role was
// delegated.
var ErrOutsidePaths = errors.New("target outside the role's delegated paths")

// CheckDelegatedPaths refuses targets that delegator (the verified metadata
// of the delegating role) does not grant to role: a target must match one
// of the role's paths or path_hash_prefixes, or, for a succinct hashed-bin
// delegation, hash into role's bin. Targets a client would never look up
// through role are refused rather than signed. The top-level targets role
// is not delegated by a targets role and has no path restriction: pass a
// nil delegator.
func CheckDelegatedPaths(delegator *metadata.Metadata[metadata.TargetsType], delegatorName, role string, targets []string) error {
	if delegator == nil {
		return nil
	}
	return CheckDelegationPaths(delegator.Signed.Delegations, delegatorName, role, targets)
}

// CheckDelegationPaths is CheckDelegatedPaths given the delegations of
// the delegator (nil when it delegates nothing), for a caller that holds
// them without the whole metadata (Targets.Delegations).
func CheckDelegationPaths(dg *metadata.Delegations, delegatorName, role string, targets []string) error {
	if dg == nil {
		return fmt.Errorf("role %s delegates nothing, so it grants %s no paths", delegatorName, role)
	}
	sorted := slices.Clone(targets)
	sort.Strings(sorted)
	for i := range dg.Roles {
		r := &dg.Roles[i]
		if r.Name != role {
			continue
		}
		for _, t := range sorted {
			ok, err := r.IsDelegatedPath(t)
			if err != nil {
				return fmt.Errorf("target %q: delegation of %s by %s: %w", t, role, delegatorName, err)
			}
			if !ok {
				return fmt.Errorf("target %q: %w: %s delegates %s only %s", t, ErrOutsidePaths, delegatorName, role, describePaths(r))
			}
		}
		return nil
	}
	if sr := dg.SuccinctRoles; sr != nil && sr.IsDelegatedRole(role) {
		for _, t := range sorted {
			bins := sr.GetRolesForTarget(t)
			if len(bins) != 1 || bins[0].Name != role {
				got := ""
				if len(bins) == 1 {
					got = bins[0].Name
				}
				return fmt.Errorf("target %q: %w: it hashes into bin %s, not %s", t, ErrOutsidePaths, got, role)
			}
		}
		return nil
	}
	return fmt.Errorf("role %s does not delegate %s", delegatorName, role)
}

func describePaths(r *metadata.DelegatedRole) string {
	if len(r.Paths) > 0 {
		return fmt.Sprintf("the paths %q", r.Paths)
	}
	return fmt.Sprintf("the path hash prefixes %q", r.PathHashPrefixes)
}
