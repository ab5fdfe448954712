package tuf

import (
	"crypto"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/secure-systems-lab/go-securesystemslib/cjson"
	"github.com/theupdateframework/go-tuf/v2/metadata"
)

// Group is an approval group of a delegated role (x-airlock-groups): at
// least Min distinct keys among KeyIDs must sign, in addition to the role's
// threshold.
type Group struct {
	Name   string   `json:"name"`
	KeyIDs []string `json:"keyids"`
	Min    int      `json:"min"`
}

// Delegation is who may sign a role, as its delegator lists it.
type Delegation struct {
	Role      string
	Delegator string
	// Keys holds the delegator's keys for KeyIDs.
	Keys      map[string]*metadata.Key
	KeyIDs    []string
	Threshold int
	Groups    []Group

	// parsed caches each key's public key and fingerprint by key ID.
	parsed map[string]parsedKey
}

type parsedKey struct {
	pub  crypto.PublicKey
	hash crypto.Hash
	fp   string
	err  error
}

// Clone returns a copy of d that shares its keys and groups but not its
// parsed-key cache, for use by another goroutine.
func (d *Delegation) Clone() *Delegation {
	c := *d
	c.parsed = make(map[string]parsedKey, len(d.parsed))
	for id, pk := range d.parsed {
		c.parsed[id] = pk
	}
	return &c
}

// key returns the parsed public key listed under id.
func (d *Delegation) key(id string) parsedKey {
	if pk, ok := d.parsed[id]; ok {
		return pk
	}
	if d.parsed == nil {
		d.parsed = map[string]parsedKey{}
	}
	var pk parsedKey
	k, ok := d.Keys[id]
	if !ok || k == nil {
		pk.err = fmt.Errorf("key %s is not listed", short(id))
	} else if pk.pub, pk.hash, pk.err = publicKey(k); pk.err == nil {
		pk.fp, pk.err = fingerprint(pk.pub)
	}
	d.parsed[id] = pk
	return pk
}

// Signer is one distinct key whose signature counted.
type Signer struct {
	KeyID       string `json:"keyid"`
	Fingerprint string `json:"fingerprint"`
	Holder      string `json:"holder,omitempty"`
}

// Verified is the outcome of a threshold check.
type Verified struct {
	Role      string   `json:"role"`
	Threshold int      `json:"threshold"`
	Signers   []Signer `json:"signers"`
	// Ignored explains signatures that did not count.
	Ignored []string `json:"ignored,omitempty"`
}

// ThresholdError reports a role whose distinct valid signatures fall short.
type ThresholdError struct {
	Role      string
	Have      int
	Want      int
	Ignored   []string
	GroupName string
}

func (e *ThresholdError) Error() string {
	var b strings.Builder
	if e.GroupName != "" {
		fmt.Fprintf(&b, "role %s: approval group %q has %d of the %d signatures it needs", e.Role, e.GroupName, e.Have, e.Want)
	} else {
		fmt.Fprintf(&b, "role %s: %d valid signature(s) from distinct keys, threshold is %d", e.Role, e.Have, e.Want)
	}
	if len(e.Ignored) > 0 {
		fmt.Fprintf(&b, " (not counted: %s)", strings.Join(e.Ignored, "; "))
	}
	return b.String()
}

// ErrRollback reports a version at or below the current one.
var ErrRollback = errors.New("version rollback")

// ErrExpired reports metadata expired at the reference time.
var ErrExpired = errors.New("metadata expired")

// DelegationFromRoot returns who may sign a top-level role.
func DelegationFromRoot(root *metadata.Metadata[metadata.RootType], role string) (*Delegation, error) {
	r, ok := root.Signed.Roles[role]
	if !ok || r == nil {
		return nil, fmt.Errorf("root version %d has no role %q", root.Signed.Version, role)
	}
	d := &Delegation{Role: role, Delegator: metadata.ROOT, Keys: root.Signed.Keys, KeyIDs: r.KeyIDs, Threshold: r.Threshold}
	return d, d.check()
}

// NewDelegation returns who may sign role as a delegator listed it, with
// the checks DelegationFromRoot and DelegationFromTargets make (key IDs
// are the hashes of their keys, thresholds reachable, groups well formed),
// for a caller that kept a delegation it read from verified metadata.
func NewDelegation(role, delegator string, keys map[string]*metadata.Key, keyIDs []string, threshold int, groups []Group) (*Delegation, error) {
	d := &Delegation{Role: role, Delegator: delegator, Keys: keys, KeyIDs: keyIDs, Threshold: threshold, Groups: groups}
	return d, d.check()
}

// DelegationFromTargets returns who may sign a role delegated by t, either by
// name or as a succinct hashed bin.
func DelegationFromTargets(t *metadata.Metadata[metadata.TargetsType], delegator, role string) (*Delegation, error) {
	return delegationFrom(t.Signed.Delegations, delegator, role)
}

// Delegation returns who may sign a role t delegates (see
// DelegationFromTargets).
func (t *Targets) Delegation(delegator, role string) (*Delegation, error) {
	return delegationFrom(t.Delegations, delegator, role)
}

func delegationFrom(dg *metadata.Delegations, delegator, role string) (*Delegation, error) {
	if dg == nil {
		return nil, fmt.Errorf("role %s delegates nothing, so it cannot delegate %q", delegator, role)
	}
	if len(dg.Roles) > 0 && dg.SuccinctRoles != nil {
		return nil, fmt.Errorf("role %s has both roles and succinct_roles", delegator)
	}
	for _, r := range dg.Roles {
		if r.Name != role {
			continue
		}
		d := &Delegation{Role: role, Delegator: delegator, Keys: dg.Keys, KeyIDs: r.KeyIDs, Threshold: r.Threshold}
		groups, err := GroupsOf(&r)
		if err != nil {
			return nil, fmt.Errorf("role %s: %w", role, err)
		}
		d.Groups = groups
		return d, d.check()
	}
	if sr := dg.SuccinctRoles; sr != nil && sr.IsDelegatedRole(role) {
		d := &Delegation{Role: role, Delegator: delegator, Keys: dg.Keys, KeyIDs: sr.KeyIDs, Threshold: sr.Threshold}
		return d, d.check()
	}
	return nil, fmt.Errorf("role %s does not delegate %q", delegator, role)
}

// GroupsOf reads a delegated role's x-airlock-groups.
func GroupsOf(r *metadata.DelegatedRole) ([]Group, error) {
	v, ok := r.UnrecognizedFields[FieldGroups]
	if !ok || v == nil {
		return nil, nil
	}
	raw, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	var gs []Group
	if err := json.Unmarshal(raw, &gs); err != nil {
		return nil, fmt.Errorf("%s: %w", FieldGroups, err)
	}
	return gs, nil
}

// SetGroups writes a delegated role's x-airlock-groups (nil removes them).
func SetGroups(r *metadata.DelegatedRole, gs []Group) {
	if len(gs) == 0 {
		delete(r.UnrecognizedFields, FieldGroups)
		return
	}
	if r.UnrecognizedFields == nil {
		r.UnrecognizedFields = map[string]any{}
	}
	var v any
	raw, _ := json.Marshal(gs)
	_ = json.Unmarshal(raw, &v)
	r.UnrecognizedFields[FieldGroups] = v
}

// check refuses delegations no threshold can be trusted under: thresholds
// below 1 or above the number of distinct keys, unknown or duplicate key IDs,
// key IDs that are not the hash of their key, and malformed groups.
func (d *Delegation) check() error {
	if len(d.KeyIDs) > MaxKeys {
		return fmt.Errorf("role %s lists %d keys, over the %d cap", d.Role, len(d.KeyIDs), MaxKeys)
	}
	if d.Threshold < 1 {
		return fmt.Errorf("role %s: threshold %d is below 1", d.Role, d.Threshold)
	}
	seen := map[string]bool{}
	distinct := map[string]bool{}
	for i, id := range d.KeyIDs {
		if seen[id] {
			return fmt.Errorf("role %s: key id %s listed twice", d.Role, short(id))
		}
		seen[id] = true
		k, ok := d.Keys[id]
		if !ok || k == nil {
			return fmt.Errorf("role %s: keyids[%d] %s is not in %s's keys", d.Role, i, short(id), d.Delegator)
		}
		if err := checkKeyID(id, k); err != nil {
			return fmt.Errorf("role %s: %w", d.Role, err)
		}
		pk := d.key(id)
		if pk.err != nil {
			// An unusable key cannot count; the threshold check below says so.
			continue
		}
		distinct[pk.fp] = true
	}
	if d.Threshold > len(distinct) {
		return fmt.Errorf("role %s: threshold %d is above the %d distinct usable keys", d.Role, d.Threshold, len(distinct))
	}
	names := map[string]bool{}
	for i, g := range d.Groups {
		if g.Name == "" || names[g.Name] {
			return fmt.Errorf("role %s: approval group %d has an empty or repeated name", d.Role, i)
		}
		names[g.Name] = true
		gdistinct := map[string]bool{}
		for _, id := range g.KeyIDs {
			if !seen[id] {
				return fmt.Errorf("role %s: approval group %q names key %s, which is not a key of the role", d.Role, g.Name, short(id))
			}
			if pk := d.key(id); pk.err == nil {
				gdistinct[pk.fp] = true
			}
		}
		if g.Min < 1 || g.Min > len(gdistinct) {
			return fmt.Errorf("role %s: approval group %q needs %d of %d distinct keys", d.Role, g.Name, g.Min, len(gdistinct))
		}
	}
	return nil
}

// checkKeyID refuses a key ID that is not the SHA-256 of the key's
// canonical form, as TUF 1.0 defines it.
func checkKeyID(id string, k *metadata.Key) error {
	want, err := KeyID(k)
	if err != nil {
		return fmt.Errorf("key %s: %w", short(id), err)
	}
	if want != id {
		return fmt.Errorf("key id %s is not the sha-256 of its key (%s)", short(id), short(want))
	}
	return nil
}

// Verify counts the signatures over payload that meet the role's threshold:
// only valid signatures by the role's keys count, and each distinct public
// key counts once however many key IDs list it or signatures repeat it.
func (d *Delegation) Verify(payload []byte, sigs []metadata.Signature) (*Verified, error) {
	return d.tally(sigs, func(pk parsedKey, s metadata.Signature) error {
		return verifyParsed(pk.pub, pk.hash, payload, s.Signature)
	})
}

// tally counts sigs against the role as Verify describes; valid decides
// whether one signature verifies.
func (d *Delegation) tally(sigs []metadata.Signature, valid func(pk parsedKey, s metadata.Signature) error) (*Verified, error) {
	if len(sigs) > MaxSignatures {
		return nil, fmt.Errorf("role %s: %d signatures, over the %d cap", d.Role, len(sigs), MaxSignatures)
	}
	inRole := map[string]bool{}
	for _, id := range d.KeyIDs {
		inRole[id] = true
	}
	v := &Verified{Role: d.Role, Threshold: d.Threshold}
	ids := make(map[string]bool, len(sigs))
	for _, s := range sigs {
		if ids[s.KeyID] {
			return v, fmt.Errorf("role %s: key id %s signs twice (a signatures array must list each key id once)", d.Role, short(s.KeyID))
		}
		ids[s.KeyID] = true
	}
	counted := map[string]bool{}
	for i, s := range sigs {
		if !inRole[s.KeyID] {
			v.Ignored = append(v.Ignored, fmt.Sprintf("signature %d: key %s is not a key of role %s", i, short(s.KeyID), d.Role))
			continue
		}
		k := d.Keys[s.KeyID]
		pk := d.key(s.KeyID)
		if pk.err != nil {
			v.Ignored = append(v.Ignored, fmt.Sprintf("signature %d: key %s: %v", i, short(s.KeyID), pk.err))
			continue
		}
		fp := pk.fp
		if counted[fp] {
			v.Ignored = append(v.Ignored, fmt.Sprintf("signature %d: key %s already counted", i, short(s.KeyID)))
			continue
		}
		if err := valid(pk, s); err != nil {
			v.Ignored = append(v.Ignored, fmt.Sprintf("signature %d: key %s: invalid signature", i, short(s.KeyID)))
			continue
		}
		counted[fp] = true
		v.Signers = append(v.Signers, Signer{KeyID: s.KeyID, Fingerprint: fp, Holder: Holder(k)})
	}
	sort.Slice(v.Signers, func(i, j int) bool { return v.Signers[i].KeyID < v.Signers[j].KeyID })
	if len(v.Signers) < d.Threshold {
		return v, &ThresholdError{Role: d.Role, Have: len(v.Signers), Want: d.Threshold, Ignored: v.Ignored}
	}
	return v, nil
}

// CheckGroups checks that every approval group of the role is met by the
// distinct keys that signed.
func (d *Delegation) CheckGroups(v *Verified) error {
	signed := map[string]bool{}
	for _, s := range v.Signers {
		signed[s.Fingerprint] = true
	}
	for _, g := range d.Groups {
		have := map[string]bool{}
		for _, id := range g.KeyIDs {
			if pk := d.key(id); pk.err == nil && signed[pk.fp] {
				have[pk.fp] = true
			}
		}
		if len(have) < g.Min {
			return &ThresholdError{Role: d.Role, GroupName: g.Name, Have: len(have), Want: g.Min}
		}
	}
	return nil
}

// Canonical returns the canonical JSON of a role's signed part: the bytes
// signatures are made over.
func Canonical[T metadata.Roles](m *metadata.Metadata[T]) ([]byte, error) {
	return cjson.EncodeCanonical(m.Signed)
}

// ParseStrict parses metadata of type T, refusing non-strict JSON, the wrong
// _type, unsupported spec versions and dates outside the specification's
// format (see checkSpecDates).
func ParseStrict[T metadata.Roles](data []byte) (*metadata.Metadata[T], error) {
	if err := checkStrictJSON(data, MaxMetadataBytes); err != nil {
		return nil, err
	}
	if err := checkSpecDates(data); err != nil {
		return nil, err
	}
	if typeOf[T]() == metadata.TARGETS {
		if err := checkNullTargets(data); err != nil {
			return nil, err
		}
	}
	var m metadata.Metadata[T]
	if err := json.Unmarshal(data, &m); err != nil {
		return nil, err
	}
	h := header(&m)
	want := typeOf[T]()
	if h.Type != want {
		return nil, fmt.Errorf("_type is %q, want %q", h.Type, want)
	}
	if err := checkSpecVersion(h.SpecVersion); err != nil {
		return nil, err
	}
	if h.Version < 1 {
		return nil, fmt.Errorf("version %d is below 1", h.Version)
	}
	if len(m.Signatures) > MaxSignatures {
		return nil, fmt.Errorf("%d signatures, over the %d cap", len(m.Signatures), MaxSignatures)
	}
	return &m, nil
}

func checkSpecVersion(v string) error {
	parts := strings.Split(v, ".")
	if len(parts) < 2 || len(parts) > 3 || parts[0] != "1" {
		return fmt.Errorf("spec_version %q is not supported (want 1.x)", v)
	}
	for _, p := range parts {
		if p == "" || strings.Trim(p, "0123456789") != "" {
			return fmt.Errorf("spec_version %q is not supported (want 1.x)", v)
		}
	}
	return nil
}

// Header is what every role's signed part has.
type Header struct {
	Type        string
	SpecVersion string
	Version     int64
	Expires     time.Time
}

func header[T metadata.Roles](m *metadata.Metadata[T]) Header {
	switch s := any(&m.Signed).(type) {
	case *metadata.RootType:
		return Header{s.Type, s.SpecVersion, s.Version, s.Expires}
	case *metadata.TargetsType:
		return Header{s.Type, s.SpecVersion, s.Version, s.Expires}
	case *metadata.SnapshotType:
		return Header{s.Type, s.SpecVersion, s.Version, s.Expires}
	case *metadata.TimestampType:
		return Header{s.Type, s.SpecVersion, s.Version, s.Expires}
	}
	return Header{}
}

func typeOf[T metadata.Roles]() string {
	var zero T
	switch any(zero).(type) {
	case metadata.RootType:
		return metadata.ROOT
	case metadata.TargetsType:
		return metadata.TARGETS
	case metadata.SnapshotType:
		return metadata.SNAPSHOT
	default:
		return metadata.TIMESTAMP
	}
}

// RoleCheck says what a verified role must also satisfy.
type RoleCheck struct {
	// RefTime is the time expiry is judged at (the operator-confirmed date
	// on the appliance). Zero skips the expiry check.
	RefTime time.Time
	// Current is the version already trusted (0: none). A new version must
	// be strictly greater.
	Current int64
	// AllowEqual accepts a version equal to Current (re-verifying the same
	// metadata, as a client does with its local copy).
	AllowEqual bool
	// MaxExpiry, when set, refuses expiry further than this past RefTime.
	MaxExpiry time.Duration
}

// VerifyRole checks signed metadata against its delegation: threshold by
// distinct keys, approval groups, version and expiry.
func VerifyRole[T metadata.Roles](m *metadata.Metadata[T], d *Delegation, rc RoleCheck) (*Verified, error) {
	payload, err := Canonical(m)
	if err != nil {
		return nil, fmt.Errorf("role %s: canonical form: %w", d.Role, err)
	}
	return verifySigned(d, payload, m.Signatures, header(m), rc)
}

// VerifyTargets parses targets metadata as received (ParseTargets) and
// verifies it against its delegation as VerifyRole does.
func VerifyTargets(raw []byte, d *Delegation, rc RoleCheck) (*Targets, *Verified, error) {
	t, err := ParseTargets(raw)
	if err != nil {
		return nil, nil, fmt.Errorf("role %s: %w", d.Role, err)
	}
	v, err := t.Verify(d, rc)
	return t, v, err
}

// Verify checks parsed targets metadata against its delegation.
func (t *Targets) Verify(d *Delegation, rc RoleCheck) (*Verified, error) {
	if t.Header.Type != metadata.TARGETS {
		return nil, fmt.Errorf("role %s: _type is %q, want %q", d.Role, t.Header.Type, metadata.TARGETS)
	}
	return verifySigned(d, t.payload, t.Signatures, t.Header, rc)
}

// VerifySignatures checks signatures over canonical bytes against a
// delegation: the threshold by distinct keys and the approval groups. It is
// for signatures made or received before they are put on metadata (combine,
// the appliance checking what it signed).
func VerifySignatures(d *Delegation, canonical []byte, sigs []metadata.Signature) (*Verified, error) {
	return verifySigned(d, canonical, sigs, Header{}, RoleCheck{})
}

// verifySigned is the one place a role's signatures are judged: every
// reader of TUF metadata in Airlock (the Updater behind airlock client and
// airlock verify, combine and commit, the request chain the appliance
// checks, the registry) reaches it through VerifyRole, VerifyTargets or
// VerifyRootStep. Thresholds count distinct public keys, then approval
// groups, then version and expiry.
func verifySigned(d *Delegation, payload []byte, sigs []metadata.Signature, h Header, rc RoleCheck) (*Verified, error) {
	v, err := d.Verify(payload, sigs)
	if err != nil {
		return v, err
	}
	if err := d.CheckGroups(v); err != nil {
		return v, err
	}
	return v, checkHeader(d.Role, h, rc)
}

// verifySignedOnce is verifySigned for signatures each already verified
// over the payload by the key its key ID names (Combine verifies each as
// it adds it): the same key-ID, role, distinct-key threshold and group
// rules, without a second signature verification.
func verifySignedOnce(d *Delegation, sigs []metadata.Signature) (*Verified, error) {
	v, err := d.tally(sigs, func(parsedKey, metadata.Signature) error { return nil })
	if err != nil {
		return v, err
	}
	return v, d.CheckGroups(v)
}

func checkHeader(role string, h Header, rc RoleCheck) error {
	if rc.Current > 0 {
		if h.Version < rc.Current || (h.Version == rc.Current && !rc.AllowEqual) {
			return fmt.Errorf("role %s: version %d is not above the current version %d: %w", role, h.Version, rc.Current, ErrRollback)
		}
	}
	if !rc.RefTime.IsZero() {
		if !rc.RefTime.Before(h.Expires) {
			return fmt.Errorf("role %s: expired %s (reference time %s): %w", role, h.Expires.UTC().Format(time.RFC3339), rc.RefTime.UTC().Format(time.RFC3339), ErrExpired)
		}
		if rc.MaxExpiry > 0 && h.Expires.Sub(rc.RefTime) > rc.MaxExpiry {
			return fmt.Errorf("role %s: expires %s, more than %s after %s", role, h.Expires.UTC().Format(time.RFC3339), rc.MaxExpiry, rc.RefTime.UTC().Format("2006-01-02"))
		}
	}
	return nil
}

// VerifyRootChain walks from a trusted root through the newer root versions
// given in order: each must be exactly one version above the last and be
// signed by a threshold of both the previous root's and its own root keys.
// The final root must not be expired at refTime (zero skips that check).
func VerifyRootChain(trusted *metadata.Metadata[metadata.RootType], next [][]byte, refTime time.Time) (*metadata.Metadata[metadata.RootType], error) {
	if len(next) > MaxRootChain {
		return nil, fmt.Errorf("root chain of %d versions is over the %d cap", len(next), MaxRootChain)
	}
	cur := trusted
	for i, raw := range next {
		n, err := ParseStrict[metadata.RootType](raw)
		if err != nil {
			return nil, fmt.Errorf("root chain[%d]: %w", i, err)
		}
		if n.Signed.Version != cur.Signed.Version+1 {
			return nil, fmt.Errorf("root chain[%d]: version %d does not follow version %d", i, n.Signed.Version, cur.Signed.Version)
		}
		if err := VerifyRootStep(cur, n); err != nil {
			return nil, fmt.Errorf("root chain[%d]: %w", i, err)
		}
		cur = n
	}
	if !refTime.IsZero() && !refTime.Before(cur.Signed.Expires) {
		return nil, fmt.Errorf("root version %d expired %s: %w", cur.Signed.Version, cur.Signed.Expires.UTC().Format(time.RFC3339), ErrExpired)
	}
	return cur, nil
}

// VerifyRootStep checks that next is signed by a threshold of prev's root
// keys and a threshold of its own.
func VerifyRootStep(prev, next *metadata.Metadata[metadata.RootType]) error {
	payload, err := Canonical(next)
	if err != nil {
		return err
	}
	oldD, err := DelegationFromRoot(prev, metadata.ROOT)
	if err != nil {
		return fmt.Errorf("previous root: %w", err)
	}
	if _, err := verifySigned(oldD, payload, next.Signatures, header(next), RoleCheck{}); err != nil {
		return fmt.Errorf("root version %d under the keys of version %d: %w", next.Signed.Version, prev.Signed.Version, err)
	}
	newD, err := DelegationFromRoot(next, metadata.ROOT)
	if err != nil {
		return err
	}
	if _, err := verifySigned(newD, payload, next.Signatures, header(next), RoleCheck{}); err != nil {
		return fmt.Errorf("root version %d under its own keys: %w", next.Signed.Version, err)
	}
	if err := checkRootRoles(next); err != nil {
		return err
	}
	return nil
}

// checkRootRoles checks every top-level role of a root is well formed.
func checkRootRoles(r *metadata.Metadata[metadata.RootType]) error {
	if len(r.Signed.Keys) > MaxKeys {
		return fmt.Errorf("root lists %d keys, over the %d cap", len(r.Signed.Keys), MaxKeys)
	}
	// The root role must be sound for the root to be trusted at all; a
	// flaw in another role (say a threshold above its keys) makes only
	// that role unverifiable, when it is checked.
	if _, err := DelegationFromRoot(r, metadata.ROOT); err != nil {
		return err
	}
	for _, name := range metadata.TOP_LEVEL_ROLE_NAMES {
		if rr := r.Signed.Roles[name]; rr == nil {
			return fmt.Errorf("root version %d has no role %q", r.Signed.Version, name)
		}
	}
	for name := range r.Signed.Roles {
		switch name {
		case metadata.ROOT, metadata.TARGETS, metadata.SNAPSHOT, metadata.TIMESTAMP:
		default:
			return fmt.Errorf("root has unknown role %q", name)
		}
	}
	return nil
}

// VerifyTrustedRoot checks a root that is trusted on first use (pinned):
// well formed and signed by a threshold of its own keys.
func VerifyTrustedRoot(r *metadata.Metadata[metadata.RootType]) error {
	if err := checkRootRoles(r); err != nil {
		return err
	}
	d, _ := DelegationFromRoot(r, metadata.ROOT)
	payload, err := Canonical(r)
	if err != nil {
		return err
	}
	_, err = verifySigned(d, payload, r.Signatures, header(r), RoleCheck{})
	return err
}

func short(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}
