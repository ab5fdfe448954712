package tuf

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/theupdateframework/go-tuf/v2/metadata"
)

func TestThresholdCountsDistinctKeys(t *testing.T) {
	h := holders(t, "alice", "bob", "carol", "mallory")
	_, d := delegation(t, 2, h["alice"], h["bob"], h["carol"])

	tests := []struct {
		name    string
		sign    func(m *metadata.Metadata[metadata.TargetsType])
		wantErr string
	}{
		{"two distinct holders", func(m *metadata.Metadata[metadata.TargetsType]) { signWith(t, m, d, h["alice"], h["bob"]) }, ""},
		{"one holder", func(m *metadata.Metadata[metadata.TargetsType]) { signWith(t, m, d, h["alice"]) }, "1 valid signature"},
		{"one key id signing twice is refused", func(m *metadata.Metadata[metadata.TargetsType]) { signWith(t, m, d, h["alice"], h["alice"]) }, "signs twice"},
		{"key outside the role counts zero", func(m *metadata.Metadata[metadata.TargetsType]) {
			signWith(t, m, d, h["alice"])
			_, id := tufKey(t, h["mallory"])
			payload, _ := Canonical(m)
			sig, err := signPayload(h["mallory"], payload)
			if err != nil {
				t.Fatal(err)
			}
			m.Signatures = append(m.Signatures, metadata.Signature{KeyID: id, Signature: sig})
		}, "not a key of role proj"},
		{"invalid signature counts zero", func(m *metadata.Metadata[metadata.TargetsType]) {
			signWith(t, m, d, h["alice"], h["bob"])
			m.Signatures[1].Signature[10] ^= 1
		}, "invalid signature"},
		{"signature over other bytes counts zero", func(m *metadata.Metadata[metadata.TargetsType]) {
			signWith(t, m, d, h["alice"], h["bob"])
			m.Signed.Version++
		}, "invalid signature"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := release(t, 1, 2)
			tt.sign(m)
			_, err := VerifyRole(m, d, RoleCheck{RefTime: refTime})
			checkErr(t, err, tt.wantErr)
		})
	}
}

func checkErr(t *testing.T, err error, want string) {
	t.Helper()
	switch {
	case want == "" && err != nil:
		t.Fatalf("unexpected error: %v", err)
	case want != "" && err == nil:
		t.Fatalf("accepted, want an error containing %q", want)
	case want != "" && !strings.Contains(err.Error(), want):
		t.Fatalf("error %q does not contain %q", err, want)
	}
}

func TestOneKeyUnderTwoKeyIDsCountsOnce(t *testing.T) {
	h := holders(t, "alice", "bob")
	parent, _ := delegation(t, 1, h["alice"], h["bob"])
	// List alice's public key a second time under another key ID (another
	// holder name changes the canonical form and so the ID), and as the
	// compat key type, and require 2 signatures.
	k, _ := tufKey(t, h["alice"])
	twin := *k
	twin.UnrecognizedFields = map[string]any{FieldHolder: "alice-again"}
	twinID, _ := KeyID(&twin)
	compat := *k
	compat.Type = metadata.KeyTypeECDSA_SHA2_P256_COMPAT
	compat.UnrecognizedFields = nil
	compatID, _ := KeyID(&compat)
	dg := parent.Signed.Delegations
	dg.Keys[twinID] = &twin
	dg.Keys[compatID] = &compat
	dg.Roles[0].KeyIDs = append(dg.Roles[0].KeyIDs, twinID, compatID)
	dg.Roles[0].Threshold = 2
	d, err := DelegationFromTargets(parent, "targets", "proj")
	if err != nil {
		t.Fatal(err)
	}
	m := release(t, 1, 1)
	payload, _ := Canonical(m)
	sig, _ := signPayload(h["alice"], payload)
	for _, id := range d.KeyIDs[:1] {
		m.Signatures = append(m.Signatures, metadata.Signature{KeyID: id, Signature: sig})
	}
	m.Signatures = append(m.Signatures, metadata.Signature{KeyID: twinID, Signature: sig}, metadata.Signature{KeyID: compatID, Signature: sig})
	_, err = VerifyRole(m, d, RoleCheck{})
	var te *ThresholdError
	if !errors.As(err, &te) || te.Have != 1 {
		t.Fatalf("alice under three key ids: err %v, want 1 distinct signer", err)
	}
	// And a threshold above the distinct keys is refused outright.
	dg.Roles[0].Threshold = 3
	if _, err := DelegationFromTargets(parent, "targets", "proj"); err == nil || !strings.Contains(err.Error(), "above the 2 distinct") {
		t.Fatalf("threshold 3 over 2 distinct keys: %v", err)
	}
}

func TestDelegationRules(t *testing.T) {
	h := holders(t, "alice", "bob")
	tests := []struct {
		name    string
		mutate  func(dg *metadata.Delegations)
		wantErr string
	}{
		{"threshold zero", func(dg *metadata.Delegations) { dg.Roles[0].Threshold = 0 }, "below 1"},
		{"threshold above keys", func(dg *metadata.Delegations) { dg.Roles[0].Threshold = 3 }, "above the 2 distinct"},
		{"duplicate key id", func(dg *metadata.Delegations) { dg.Roles[0].KeyIDs = append(dg.Roles[0].KeyIDs, dg.Roles[0].KeyIDs[0]) }, "listed twice"},
		{"unknown key id", func(dg *metadata.Delegations) { dg.Roles[0].KeyIDs[0] = strings.Repeat("ab", 32) }, "is not in"},
		{"key id not the hash of its key", func(dg *metadata.Delegations) {
			id := dg.Roles[0].KeyIDs[0]
			bad := strings.Repeat("cd", 32)
			dg.Keys[bad] = dg.Keys[id]
			delete(dg.Keys, id)
			dg.Roles[0].KeyIDs[0] = bad
		}, "is not the sha-256 of its key"},
		{"unknown key type cannot count", func(dg *metadata.Delegations) {
			id := dg.Roles[0].KeyIDs[0]
			k := *dg.Keys[id]
			k.Type = "rot13"
			nid, _ := KeyID(&k)
			delete(dg.Keys, id)
			dg.Keys[nid] = &k
			dg.Roles[0].KeyIDs[0] = nid
		}, "above the 1 distinct"},
		{"group names a key outside the role", func(dg *metadata.Delegations) {
			SetGroups(&dg.Roles[0], []Group{{Name: "core", KeyIDs: []string{strings.Repeat("ef", 32)}, Min: 1}})
		}, "not a key of the role"},
		{"group minimum above its keys", func(dg *metadata.Delegations) {
			SetGroups(&dg.Roles[0], []Group{{Name: "core", KeyIDs: dg.Roles[0].KeyIDs[:1], Min: 2}})
		}, "needs 2 of 1"},
		{"group minimum zero", func(dg *metadata.Delegations) {
			SetGroups(&dg.Roles[0], []Group{{Name: "core", KeyIDs: dg.Roles[0].KeyIDs[:1], Min: 0}})
		}, "needs 0 of 1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			parent, _ := delegation(t, 2, h["alice"], h["bob"])
			tt.mutate(parent.Signed.Delegations)
			_, err := DelegationFromTargets(parent, "targets", "proj")
			checkErr(t, err, tt.wantErr)
		})
	}
}

func TestApprovalGroups(t *testing.T) {
	h := holders(t, "alice", "bob", "carol")
	parent, _ := delegation(t, 2, h["alice"], h["bob"], h["carol"])
	dg := parent.Signed.Delegations
	// "release" needs carol.
	SetGroups(&dg.Roles[0], []Group{{Name: "release", KeyIDs: dg.Roles[0].KeyIDs[2:], Min: 1}})
	d, err := DelegationFromTargets(parent, "targets", "proj")
	if err != nil {
		t.Fatal(err)
	}
	m := release(t, 1, 1)
	signWith(t, m, d, h["alice"], h["bob"])
	if _, err := VerifyRole(m, d, RoleCheck{}); err == nil || !strings.Contains(err.Error(), `approval group "release" has 0 of the 1`) {
		t.Fatalf("group unmet: %v", err)
	}
	m.Signatures = nil
	signWith(t, m, d, h["alice"], h["carol"])
	if _, err := VerifyRole(m, d, RoleCheck{}); err != nil {
		t.Fatalf("group met: %v", err)
	}
}

func TestVersionAndExpiry(t *testing.T) {
	h := holders(t, "alice")
	_, d := delegation(t, 1, h["alice"])
	tests := []struct {
		name    string
		version int64
		rc      RoleCheck
		want    error
		wantErr string
	}{
		{"newer version", 3, RoleCheck{Current: 2, RefTime: refTime}, nil, ""},
		{"same version", 2, RoleCheck{Current: 2}, ErrRollback, "not above"},
		{"rollback", 1, RoleCheck{Current: 2}, ErrRollback, "not above"},
		{"same version allowed for re-verification", 2, RoleCheck{Current: 2, AllowEqual: true}, nil, ""},
		{"expired", 3, RoleCheck{RefTime: refTime.Add(31 * 24 * time.Hour)}, ErrExpired, "expired"},
		{"too far in the future", 3, RoleCheck{RefTime: refTime, MaxExpiry: 7 * 24 * time.Hour}, nil, "more than"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := release(t, tt.version, 1)
			signWith(t, m, d, h["alice"])
			_, err := VerifyRole(m, d, tt.rc)
			checkErr(t, err, tt.wantErr)
			if tt.want != nil && !errors.Is(err, tt.want) {
				t.Fatalf("error %v is not %v", err, tt.want)
			}
		})
	}
}

func TestParseStrictRefusesAmbiguousJSON(t *testing.T) {
	h := holders(t, "alice")
	_, d := delegation(t, 1, h["alice"])
	m := release(t, 1, 1)
	signWith(t, m, d, h["alice"])
	good := string(roundTrip(t, m))
	if _, err := ParseStrict[metadata.TargetsType]([]byte(good)); err != nil {
		t.Fatalf("good metadata: %v", err)
	}
	tests := []struct{ name, in, wantErr string }{
		{"duplicate key", strings.Replace(good, `"_type":"targets"`, `"_type":"targets","_type":"targets"`, 1), "duplicate key"},
		{"float", strings.Replace(good, `"version":1`, `"version":1.0`, 1), "not an integer"},
		{"overflow", strings.Replace(good, `"version":1`, `"version":99999999999999999999`, 1), "overflows"},
		{"trailing data", good + "{}", "trailing data"},
		{"invalid utf-8", strings.Replace(good, `"targets"`, "\"targ\xffets\"", 1), "invalid utf-8"},
		{"deep nesting", strings.Repeat("[", 40) + strings.Repeat("]", 40), "nested deeper"},
		{"wrong type", strings.Replace(good, `"_type":"targets"`, `"_type":"root"`, 1), "_type is"},
		{"unsupported spec version", strings.Replace(good, `"spec_version":"1.0.31"`, `"spec_version":"2.0.0"`, 1), "spec_version"},
		{"version zero", strings.Replace(good, `"version":1`, `"version":0`, 1), "below 1"},
		// go-tuf's decoder dereferences each target entry and would panic.
		{"null target", strings.Replace(good, `"targets":{`, `"targets":{"a":null,`, 1), `target "a": a target entry is null`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.in == good {
				t.Fatal("mutation did not apply")
			}
			_, err := ParseStrict[metadata.TargetsType]([]byte(tt.in))
			checkErr(t, err, tt.wantErr)
			// The parser clients use refuses it for the same reason,
			// whichever path it takes.
			_, err = ParseTargets([]byte(tt.in))
			checkErr(t, err, tt.wantErr)
		})
	}
	if _, err := ParseTargets([]byte(good)); err != nil {
		t.Fatalf("good metadata: %v", err)
	}
}
