package appliance

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"airlock.dev/airlock/appliance/provenance"
	"airlock.dev/airlock/hsm"
	"airlock.dev/airlock/hsm/attest"
	"airlock.dev/airlock/tuf"
)

// PolicyFormat is the version of the policy file format.
const PolicyFormat = 1

// Caps on the policy file.
const (
	MaxPolicyBytes   = 1 << 20
	MaxPolicyRoles   = 1000
	MaxPolicyHolders = 100
)

// Policy is the appliance's policy file (policy.json in the state
// directory): what each role may sign, with which keys and who must approve.
// A role that is not in the policy is refused.
type Policy struct {
	Format int `json:"airlock_policy"`
	// Roles maps a TUF role name ("root", "targets", a delegated role) to
	// its rules.
	Roles map[string]RolePolicy `json:"roles"`
}

// RolePolicy is what the appliance demands of one role's ceremonies.
type RolePolicy struct {
	// Kinds are the ceremony kinds allowed (tuf.KindRelease, ...); empty
	// allows every kind that fits the role.
	Kinds []string `json:"kinds,omitempty"`
	// Holders, when set, are the only people who may approve; each key's
	// holder comes from the signed metadata (x-airlock-holder).
	Holders []string `json:"holders,omitempty"`
	// MinHolders is how many distinct people must approve; never below 2.
	MinHolders int `json:"min_holders,omitempty"`
	// Groups are approval groups by holder name, on top of the groups the
	// role's delegation carries.
	Groups []HolderGroup `json:"groups,omitempty"`
	// MaxExpiryDays caps how far after the confirmed date the new metadata
	// may expire (default 365).
	MaxExpiryDays int `json:"max_expiry_days,omitempty"`
	// KeyKinds are the key kinds allowed to sign (default yubikey, tpm;
	// file keys only ever in development mode).
	KeyKinds []hsm.Kind `json:"key_kinds,omitempty"`
	// Attestation is what the keys that sign must prove about themselves.
	Attestation attest.Policy `json:"attestation"`
	// Provenance is the trusted-publisher policy of the role's artifacts.
	Provenance *ProvenancePolicy `json:"provenance,omitempty"`
	// RequireContentReview refuses a release whose artifact bytes, or the
	// previous release's bytes, did not reach the appliance (over QR, or
	// left out by CI): the holders must have seen the content diff. When
	// false, such a release is shown with a high risk signal instead.
	RequireContentReview bool `json:"require_content_review,omitempty"`
}

// HolderGroup is an approval group by holder names.
type HolderGroup struct {
	Name    string   `json:"name"`
	Holders []string `json:"holders"`
	Min     int      `json:"min"`
}

// ProvenancePolicy is the JSON form of provenance.Policy.
type ProvenancePolicy struct {
	Package    string      `json:"package"`
	Require    bool        `json:"require"`
	Publishers []Publisher `json:"publishers"`
}

// Publisher is the JSON form of provenance.Publisher.
type Publisher struct {
	Issuer       string   `json:"issuer"`
	Repository   string   `json:"repository"`
	WorkflowPath string   `json:"workflow_path"`
	Refs         []string `json:"refs"`
	Builder      string   `json:"builder,omitempty"`
}

// Provenance returns the provenance.Policy of the role.
func (p *ProvenancePolicy) Provenance() provenance.Policy {
	out := provenance.Policy{Package: p.Package, RequireProvenance: p.Require}
	for _, pub := range p.Publishers {
		out.Publishers = append(out.Publishers, provenance.Publisher{
			Issuer: pub.Issuer, Repository: pub.Repository, WorkflowPath: pub.WorkflowPath,
			Refs: slices.Clone(pub.Refs), Builder: pub.Builder,
		})
	}
	return out
}

// ParsePolicy parses and checks a policy file strictly.
func ParsePolicy(b []byte) (*Policy, error) {
	if len(b) > MaxPolicyBytes {
		return nil, fmt.Errorf("policy: %d bytes, over the %d-byte cap", len(b), MaxPolicyBytes)
	}
	var p Policy
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&p); err != nil {
		return nil, fmt.Errorf("policy: %w (the policy file format is described in README.md, \"The policy file\")", policyDecodeError(err))
	}
	if dec.More() {
		return nil, fmt.Errorf("policy: trailing data after the json object")
	}
	if err := p.Validate(); err != nil {
		return nil, err
	}
	return &p, nil
}

// Validate reports a policy that is malformed or could never be met.
func (p *Policy) Validate() error {
	if p.Format != PolicyFormat {
		return fmt.Errorf("policy: format %d is not supported (want \"airlock_policy\": %d)", p.Format, PolicyFormat)
	}
	if len(p.Roles) == 0 {
		return fmt.Errorf("policy: no roles: add at least one role under \"roles\"")
	}
	if len(p.Roles) > MaxPolicyRoles {
		return fmt.Errorf("policy: %d roles, over the %d cap", len(p.Roles), MaxPolicyRoles)
	}
	names := make([]string, 0, len(p.Roles))
	for name := range p.Roles {
		names = append(names, name)
	}
	slices.Sort(names) // the first error is the same on every run
	for _, name := range names {
		if name == "" {
			return fmt.Errorf("policy: roles: a role has an empty name")
		}
		if err := p.Roles[name].validate(); err != nil {
			return fmt.Errorf("policy: roles[%q].%w", name, err)
		}
	}
	return nil
}

// policyDecodeError names the field of a json decoding error.
func policyDecodeError(err error) error {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) && te.Field != "" {
		return fmt.Errorf("field %s: want a %s, got a json %s", te.Field, te.Type, te.Value)
	}
	if msg, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
		return fmt.Errorf("unknown field %s", msg)
	}
	return err
}

func (r RolePolicy) validate() error {
	kinds := []string{tuf.KindRelease, tuf.KindResign, tuf.KindDelegation, tuf.KindRootRotate, tuf.KindEnrolment}
	for _, k := range r.Kinds {
		if !slices.Contains(kinds, k) {
			return fmt.Errorf("kinds: %q is not one of %v", k, kinds)
		}
	}
	if len(r.Holders) > MaxPolicyHolders {
		return fmt.Errorf("holders: %d names, over the %d cap", len(r.Holders), MaxPolicyHolders)
	}
	if r.MinHolders < 0 || r.MinHolders == 1 {
		return fmt.Errorf("min_holders: %d, want 2 or more: at least two distinct people approve every signature set (0 means 2)", r.MinHolders)
	}
	if len(r.Holders) > 0 && len(r.Holders) < r.minHolders() {
		return fmt.Errorf("holders: %d listed but min_holders is %d: list more holders or lower min_holders", len(r.Holders), r.minHolders())
	}
	for i, g := range r.Groups {
		if g.Min < 1 || g.Min > len(g.Holders) {
			return fmt.Errorf("groups[%d].min: group %q needs %d of its %d holders: want 1 to %d", i, g.Name, g.Min, len(g.Holders), len(g.Holders))
		}
	}
	if r.MaxExpiryDays < 0 || r.MaxExpiryDays > 3650 {
		return fmt.Errorf("max_expiry_days: %d, want 1 to 3650 (0 means 365)", r.MaxExpiryDays)
	}
	for _, k := range r.KeyKinds {
		if k != hsm.KindYubiKey && k != hsm.KindTPM && k != hsm.KindFile {
			return fmt.Errorf("key_kinds: %q, want yubikey, tpm or file", k)
		}
	}
	if r.Provenance != nil {
		if err := r.Provenance.Provenance().Validate(); err != nil {
			return fmt.Errorf("provenance: %w", err)
		}
	}
	return nil
}

func (r RolePolicy) minHolders() int {
	if r.MinHolders < 2 {
		return 2
	}
	return r.MinHolders
}

func (r RolePolicy) maxExpiry() time.Duration {
	d := r.MaxExpiryDays
	if d == 0 {
		d = 365
	}
	return time.Duration(d) * 24 * time.Hour
}

func (r RolePolicy) kindAllowed(k hsm.Kind, dev bool) bool {
	if k == hsm.KindFile {
		return dev
	}
	if len(r.KeyKinds) == 0 {
		return k.Hardware()
	}
	return slices.Contains(r.KeyKinds, k)
}

func (r RolePolicy) ceremonyAllowed(kind string) bool {
	return len(r.Kinds) == 0 || slices.Contains(r.Kinds, kind)
}
