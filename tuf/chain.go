package tuf

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/theupdateframework/go-tuf/v2/metadata"
)

// Delegation verifies the request's chain of trust and returns who may sign
// its role, and the newest root the chain leads to. See DelegationChain.
func (req *Request) Delegation(pinned []byte, now time.Time) (*Delegation, *metadata.Metadata[metadata.RootType], error) {
	c, err := req.DelegationChain(pinned, now)
	if err != nil {
		return nil, nil, err
	}
	return c.Delegation, c.Root, nil
}

// VerifiedChain is what verifying a request's chain of trust establishes.
type VerifiedChain struct {
	// Delegation is who may sign the request's role.
	Delegation *Delegation
	// Root is the newest root the chain leads to.
	Root *metadata.Metadata[metadata.RootType]
	// Delegators are the verified targets metadata from "targets" down to
	// the request's delegator, with their role names (empty when the
	// delegator is root).
	Delegators []NamedTargets
}

// NamedTargets is verified targets metadata and the role it is.
type NamedTargets struct {
	Name     string
	Metadata *metadata.Metadata[metadata.TargetsType]
}

// Parent is the delegator's verified metadata, nil when root delegates the
// role.
func (c *VerifiedChain) Parent() *metadata.Metadata[metadata.TargetsType] {
	if len(c.Delegators) == 0 {
		return nil
	}
	return c.Delegators[len(c.Delegators)-1].Metadata
}

// DelegationChain verifies the request's chain of trust. The chain starts
// from pinned (the appliance's pinned root) or, when pinned is nil, from the
// chain's own first root: trust on first use, for development signing only.
// Each root step needs a threshold of the old and the new root keys; each
// delegator must verify under its own delegator at now.
func (req *Request) DelegationChain(pinned []byte, now time.Time) (*VerifiedChain, error) {
	chain := req.Chain.Root
	if len(chain) == 0 {
		return nil, errors.New("request has no root chain")
	}
	var trusted *metadata.Metadata[metadata.RootType]
	var err error
	if pinned != nil {
		trusted, err = ParseStrict[metadata.RootType](pinned)
	} else {
		trusted, err = ParseStrict[metadata.RootType](chain[0])
	}
	if err != nil {
		return nil, fmt.Errorf("trusted root: %w", err)
	}
	if err := VerifyTrustedRoot(trusted); err != nil {
		return nil, fmt.Errorf("trusted root: %w", err)
	}
	var next [][]byte
	for _, raw := range chain {
		r, err := ParseStrict[metadata.RootType](raw)
		if err != nil {
			return nil, fmt.Errorf("chain root: %w", err)
		}
		if r.Signed.Version > trusted.Signed.Version {
			next = append(next, raw)
		}
	}
	root, err := VerifyRootChain(trusted, next, now)
	if err != nil {
		return nil, err
	}
	vc := &VerifiedChain{Root: root}
	if req.Delegator == metadata.ROOT {
		vc.Delegation, err = DelegationFromRoot(root, req.Role)
		if err != nil {
			return nil, err
		}
		return vc, nil
	}
	if len(req.Chain.Delegators) == 0 {
		return nil, errors.New("request has no delegator metadata")
	}
	d, err := DelegationFromRoot(root, metadata.TARGETS)
	if err != nil {
		return nil, err
	}
	name := metadata.TARGETS
	var parent *metadata.Metadata[metadata.TargetsType]
	for i, raw := range req.Chain.Delegators {
		if _, _, err := VerifyTargets(raw, d, RoleCheck{RefTime: now}); err != nil {
			return nil, fmt.Errorf("delegator %s: %w", name, err)
		}
		m, err := ParseStrict[metadata.TargetsType](raw)
		if err != nil {
			return nil, fmt.Errorf("delegator %d: %w", i, err)
		}
		parent = m
		vc.Delegators = append(vc.Delegators, NamedTargets{Name: name, Metadata: m})
		if i+1 < len(req.Chain.Delegators) {
			nextName, err := nextDelegatorName(m, req.Chain.Delegators[i+1])
			if err != nil {
				return nil, err
			}
			if d, err = DelegationFromTargets(m, name, nextName); err != nil {
				return nil, err
			}
			name = nextName
		}
	}
	if name != req.Delegator {
		return nil, fmt.Errorf("request says %s delegates %s, its chain ends at %s", req.Delegator, req.Role, name)
	}
	if vc.Delegation, err = DelegationFromTargets(parent, name, req.Role); err != nil {
		return nil, err
	}
	return vc, nil
}

// nextDelegatorName finds which delegated role of m the next chain element
// is, by trying each delegation's keys against it.
func nextDelegatorName(m *metadata.Metadata[metadata.TargetsType], raw json.RawMessage) (string, error) {
	next, err := ParseTargets(raw)
	if err != nil {
		return "", err
	}
	if m.Signed.Delegations == nil {
		return "", errors.New("chain: delegator delegates nothing")
	}
	for _, r := range m.Signed.Delegations.Roles {
		d, err := DelegationFromTargets(m, "", r.Name)
		if err != nil {
			continue
		}
		if _, err := next.Verify(d, RoleCheck{}); err == nil {
			return r.Name, nil
		}
	}
	return "", errors.New("chain: next delegator is not signed by any delegated role")
}
