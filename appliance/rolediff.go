package appliance

import (
	"slices"
	"sort"

	"github.com/theupdateframework/go-tuf/v2/metadata"

	"airlock.dev/airlock/tuf"
)

// need computes who may sign and what the approvals must reach.
func need(v *verified, pol RolePolicy) *Need {
	n := &Need{Threshold: v.deleg.Threshold, MinHolders: pol.minHolders()}
	keys := map[string]*NeedKey{}
	add := func(d *tuf.Delegation, old bool) {
		for _, id := range d.KeyIDs {
			k, ok := keys[id]
			if !ok {
				k = &NeedKey{KeyID: id, Holder: tuf.Holder(d.Keys[id])}
				keys[id] = k
			}
			if old {
				k.Old = true
			} else {
				k.New = true
			}
		}
		for _, g := range d.Groups {
			n.Groups = append(n.Groups, NeedGroup{Name: g.Name, KeyIDs: slices.Clone(g.KeyIDs), Min: g.Min})
		}
	}
	if v.newDeleg != nil {
		n.OldThreshold = v.deleg.Threshold
		n.Threshold = v.newDeleg.Threshold
		add(v.deleg, true)
		add(v.newDeleg, false)
	} else {
		add(v.deleg, false)
	}
	for _, k := range keys {
		n.Keys = append(n.Keys, *k)
	}
	sort.Slice(n.Keys, func(i, j int) bool { return n.Keys[i].KeyID < n.Keys[j].KeyID })
	return n
}

func keyFacts(keys map[string]*metadata.Key, ids []string) []KeyFact {
	var out []KeyFact
	for _, id := range ids {
		k := keys[id]
		f := KeyFact{KeyID: id, Holder: tuf.Holder(k), Kind: string(tuf.KeyKind(k))}
		if a, err := tuf.Attestation(k); err == nil && a != nil {
			f.Attested = true
		}
		if fp, err := tuf.Fingerprint(k); err == nil {
			f.Fingerprint = fp
		}
		out = append(out, f)
	}
	return out
}

func sameRole(a, b *RoleFacts) bool {
	if a.Threshold != b.Threshold || a.Terminating != b.Terminating || !slices.Equal(a.Paths, b.Paths) || len(a.Keys) != len(b.Keys) || len(a.Groups) != len(b.Groups) {
		return false
	}
	for i := range a.Keys {
		if a.Keys[i] != b.Keys[i] {
			return false
		}
	}
	for i := range a.Groups {
		if a.Groups[i].Name != b.Groups[i].Name || a.Groups[i].Min != b.Groups[i].Min || !slices.Equal(a.Groups[i].KeyIDs, b.Groups[i].KeyIDs) {
			return false
		}
	}
	return true
}

func diffFacts(old, new map[string]*RoleFacts) []RoleChange {
	var names []string
	for n := range old {
		names = append(names, n)
	}
	for n := range new {
		if _, ok := old[n]; !ok {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	var out []RoleChange
	for _, n := range names {
		o, nw := old[n], new[n]
		switch {
		case o == nil:
			out = append(out, RoleChange{Name: n, Change: "added", New: nw})
		case nw == nil:
			out = append(out, RoleChange{Name: n, Change: "removed", Old: o})
		case !sameRole(o, nw):
			out = append(out, RoleChange{Name: n, Change: "changed", Old: o, New: nw})
		}
	}
	return out
}

// diffRoots lists the top-level roles whose keys or thresholds change in a
// root rotation, old and new side by side.
func diffRoots(old, new *metadata.Metadata[metadata.RootType]) []RoleChange {
	facts := func(r *metadata.Metadata[metadata.RootType]) map[string]*RoleFacts {
		m := map[string]*RoleFacts{}
		if r == nil {
			return m
		}
		for name, role := range r.Signed.Roles {
			ids := slices.Clone(role.KeyIDs)
			sort.Strings(ids)
			m[name] = &RoleFacts{Threshold: role.Threshold, Keys: keyFacts(r.Signed.Keys, ids)}
		}
		return m
	}
	return diffFacts(facts(old), facts(new))
}

// diffDelegations lists the delegated roles whose keys, threshold, groups or
// paths change.
func diffDelegations(old, new *metadata.Delegations) []RoleChange {
	facts := func(dg *metadata.Delegations) map[string]*RoleFacts {
		m := map[string]*RoleFacts{}
		if dg == nil {
			return m
		}
		for i := range dg.Roles {
			r := &dg.Roles[i]
			ids := slices.Clone(r.KeyIDs)
			sort.Strings(ids)
			f := &RoleFacts{Threshold: r.Threshold, Keys: keyFacts(dg.Keys, ids), Paths: slices.Clone(r.Paths), Terminating: r.Terminating}
			if gs, err := tuf.GroupsOf(r); err == nil {
				f.Groups = gs
			}
			m[r.Name] = f
		}
		if sr := dg.SuccinctRoles; sr != nil {
			ids := slices.Clone(sr.KeyIDs)
			sort.Strings(ids)
			m["succinct:"+sr.NamePrefix] = &RoleFacts{Threshold: sr.Threshold, Keys: keyFacts(dg.Keys, ids)}
		}
		return m
	}
	return diffFacts(facts(old), facts(new))
}
