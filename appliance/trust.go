package appliance

import (
	"strings"
	"time"

	"github.com/theupdateframework/go-tuf/v2/metadata"

	"airlock.dev/airlock/appliance/content"
	"airlock.dev/airlock/tuf"
)

// verified is what trust verification establishes about a request: what
// the bytes are, who may sign them and what they change, each from the
// verified bytes and chain of trust, never from the request's labels.
type verified struct {
	req     *tuf.Request
	payload *tuf.Payload
	policy  RolePolicy
	// deleg is who may sign (for a root rotation: the current root's keys).
	deleg *tuf.Delegation
	// newDeleg is, for a root rotation, the new root's root role.
	newDeleg *tuf.Delegation
	// delegators are the versions of the verified chain's delegating roles.
	delegators map[string]int64
	// current is the role's current signed targets metadata, verified under
	// deleg (nil for a new role or a root); oldRoot is, for a root
	// rotation, the newest root of the chain.
	current *metadata.Metadata[metadata.TargetsType]
	oldRoot *metadata.Metadata[metadata.RootType]
	// oldVersion and oldExpires are the current version's.
	oldVersion int64
	oldExpires time.Time
	// kind is the ceremony kind derived from the bytes, why says why.
	kind, why string
	review    *Review
}

// delegations returns the delegations whose thresholds a ceremony must meet.
func (v *verified) delegations() []*tuf.Delegation {
	if v.newDeleg != nil {
		return []*tuf.Delegation{v.deleg, v.newDeleg}
	}
	return []*tuf.Delegation{v.deleg}
}

// verifyTrust is the trust half of the verify step: the request parses, its
// role is in the policy, its chain of trust verifies from the pinned root
// and is not older than what this appliance has seen, its targets lie in
// the delegated paths, its current version verifies, the kind derived from
// the bytes matches the label and the policy, and version, ledger and
// expiry allow it. It builds no review.
func verifyTrust(st *StateDir, request []byte, date time.Time) (*verified, error) {
	req, err := tuf.ParseRequest(request)
	if err != nil {
		return nil, refuse(RuleBundle, "%v; ask CI to rebuild the bundle with airlock bundle create", err)
	}
	v := &verified{req: req}
	pol, ok := st.Policy.Roles[req.Role]
	if !ok {
		return nil, refuse(RulePolicy, "role %s is not in this appliance's policy: the security officer must add it to %s before it can be signed here", content.Visible(req.Role), PolicyFile)
	}
	v.policy = pol
	p, err := req.Payload()
	if err != nil {
		return nil, refuse(RuleMetadata, "%v", err)
	}
	v.payload = p

	// 1. Chain of trust from the pinned root.
	if err := req.CheckUniqueKeys(); err != nil {
		return nil, refuse(RuleMetadata, "%v: do not sign; ask CI to list each public key once", err)
	}
	vc, err := req.DelegationChain(st.Root, date)
	if err != nil {
		return nil, refuse(RuleChain, "chain of trust from the pinned root: %v", err)
	}
	d, newestRoot := vc.Delegation, vc.Root
	v.deleg = d
	// Delegator freshness: never older than what this appliance signed or
	// accepted before.
	v.delegators = map[string]int64{}
	for _, nt := range vc.Delegators {
		have := nt.Metadata.Signed.Version
		if newest := st.Ledger.Delegator(nt.Name); have < newest {
			return nil, refuse(RuleChain, "the bundle's chain of trust carries %s version %d, but this appliance has signed or accepted %s version %d: the chain is stale (a later version may revoke keys); ask CI for a bundle built from the published repository", nt.Name, have, nt.Name, newest)
		}
		v.delegators[nt.Name] = have
	}
	// Targets must lie within the paths the delegator grants the role.
	if p.Targets != nil {
		names := make([]string, 0, len(p.Targets.Signed.Targets))
		for name := range p.Targets.Signed.Targets {
			names = append(names, name)
		}
		if err := tuf.CheckDelegatedPaths(vc.Parent(), req.Delegator, req.Role, names); err != nil {
			return nil, refuse(RuleTargets, "%v: do not sign; a client would not find these targets through %s", err, req.Role)
		}
	}

	// 2. Current version, kind, version, ledger, expiry.
	if p.Root != nil {
		v.oldRoot = newestRoot
		v.oldVersion = newestRoot.Signed.Version
		v.oldExpires = newestRoot.Signed.Expires
		if p.Version != v.oldVersion+1 {
			return nil, refuse(RuleVersion, "new root version %d must directly follow the current root version %d", p.Version, v.oldVersion)
		}
		if v.newDeleg, err = tuf.DelegationFromRoot(p.Root, metadata.ROOT); err != nil {
			return nil, refuse(RuleMetadata, "new root: %v", err)
		}
	} else if len(req.Current) > 0 {
		cur, err := tuf.ParseStrict[metadata.TargetsType](req.Current)
		if err != nil {
			return nil, refuse(RuleMetadata, "current metadata of %s: %v", req.Role, err)
		}
		// The current version is what rollback and the review compare
		// against: it must be the one its delegation signed.
		if _, _, err := tuf.VerifyTargets(req.Current, d, tuf.RoleCheck{}); err != nil {
			return nil, refuse(RuleChain, "the current metadata of %s in the bundle does not verify under its delegation (%v): do not sign; ask CI for a bundle built from the published repository", req.Role, err)
		}
		v.current = cur
		v.oldVersion = cur.Signed.Version
		v.oldExpires = cur.Signed.Expires
	}

	// The kind comes from what the bytes change, never from the label; the
	// policy applies to the derived kind.
	v.kind, v.why = tuf.KindRootRotate, "it is a new root version"
	if p.Targets != nil {
		v.kind, v.why = tuf.DeriveTargetsKind(v.current, p.Targets)
	}
	if err := tuf.CheckKindLabel(req.Kind, v.kind, v.why); err != nil {
		return nil, refuse(RuleMetadata, "%v: do not sign; a ceremony is reviewed and approved as what its bytes do, ask CI for a bundle labelled %s", err, v.kind)
	}
	if !pol.ceremonyAllowed(v.kind) && !(v.kind == tuf.KindEnrolment && pol.ceremonyAllowed(tuf.KindDelegation)) {
		return nil, refuse(RulePolicy, "the policy does not allow %s ceremonies for role %s (allowed: %s); this request is a %s because %s", v.kind, req.Role, strings.Join(pol.Kinds, ", "), v.kind, v.why)
	}
	if p.Version <= v.oldVersion {
		return nil, refuse(RuleVersion, "version %d of %s is not above the current version %d: rebuild the bundle with version %d or higher", p.Version, req.Role, v.oldVersion, v.oldVersion+1)
	}
	if err := st.Ledger.Check(req.Role, p.Version, sha(p.Canonical)); err != nil {
		return nil, refuse(RuleLedger, "%v", err)
	}
	if !p.Expires.After(date) {
		return nil, refuse(RuleExpiry, "%s version %d expires %s, not after the confirmed date %s: rebuild it with a later expiry", req.Role, p.Version, p.Expires.UTC().Format(time.RFC3339), date.Format("2006-01-02"))
	}
	if max := pol.maxExpiry(); p.Expires.Sub(date) > max {
		return nil, refuse(RuleExpiry, "%s version %d expires %s, more than the policy's %d days after %s: rebuild it with an earlier expiry", req.Role, p.Version, p.Expires.UTC().Format("2006-01-02"), int(max.Hours()/24), date.Format("2006-01-02"))
	}
	return v, nil
}
