package appliance

import (
	"slices"

	"airlock.dev/airlock/appliance/content"
	"airlock.dev/airlock/tuf"
)

// textRisks adds the signals about text the bundle supplies outside the
// artifacts: target names, the holders named by the signing keys (the
// current delegation's and any new role's), and CI's note. Each is shown
// escaped anyway; these signals say that it tried to deceive.
func textRisks(r *Review, v *verified) {
	var targets []string
	for _, t := range r.Targets {
		if t.Change != "removed" {
			targets = append(targets, t.Path)
		}
	}
	for _, t := range targets {
		r.Risks = append(r.Risks, content.TextSignals("target name", t, r.Role)...)
	}
	r.Risks = append(r.Risks, content.PeerSignals("target name", targets)...)

	var holders []string
	add := func(d *tuf.Delegation) {
		if d == nil {
			return
		}
		for _, id := range d.KeyIDs {
			if h := tuf.Holder(d.Keys[id]); h != "" && !slices.Contains(holders, h) {
				holders = append(holders, h)
			}
		}
	}
	add(v.deleg)
	add(v.newDeleg)
	for _, rc := range r.Roles {
		if rc.New != nil {
			for _, k := range rc.New.Keys {
				if k.Holder != "" && !slices.Contains(holders, k.Holder) {
					holders = append(holders, k.Holder)
				}
			}
		}
	}
	r.Risks = append(r.Risks, content.PeerSignals("holder name", holders)...)
	r.Risks = append(r.Risks, content.ProseSignals("note from CI", r.Note)...)
	r.Risks = dedupeSignals(r.Risks)
}

// dedupeSignals drops repeated signals (a name checked both alone and
// against its peers), keeping the first.
func dedupeSignals(in []content.Signal) []content.Signal {
	seen := map[content.Signal]bool{}
	out := in[:0]
	for _, s := range in {
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	return out
}
