package tuf

import (
	"strings"
	"testing"
	"time"

	"github.com/theupdateframework/go-tuf/v2/metadata"
)

func TestDeriveTargetsKind(t *testing.T) {
	hs := holders(t, "alice", "bob", "carol")
	ka, _ := tufKey(t, hs["alice"])
	kb, _ := tufKey(t, hs["bob"])
	kc, _ := tufKey(t, hs["carol"])
	spec := func(threshold int, paths []string, keys ...*metadata.Key) DelegationSpec {
		return DelegationSpec{Name: "sub", Threshold: threshold, Paths: paths, Keys: keys}
	}
	base := func() *metadata.Metadata[metadata.TargetsType] {
		m := release(t, 3, 2)
		if err := SetDelegation(m, spec(2, []string{"proj/a/*"}, ka, kb)); err != nil {
			t.Fatal(err)
		}
		return m
	}
	next := func(edit func(m *metadata.Metadata[metadata.TargetsType])) *metadata.Metadata[metadata.TargetsType] {
		m := base()
		m.Signed.Version++
		m.Signed.Expires = m.Signed.Expires.Add(30 * 24 * time.Hour)
		edit(m)
		return m
	}
	set := func(s DelegationSpec) func(m *metadata.Metadata[metadata.TargetsType]) {
		return func(m *metadata.Metadata[metadata.TargetsType]) {
			if err := SetDelegation(m, s); err != nil {
				t.Fatal(err)
			}
		}
	}
	cases := []struct {
		name string
		cur  *metadata.Metadata[metadata.TargetsType]
		next *metadata.Metadata[metadata.TargetsType]
		want string
	}{
		{"version and expiry only", base(), next(func(*metadata.Metadata[metadata.TargetsType]) {}), KindResign},
		{"target added", base(), next(func(m *metadata.Metadata[metadata.TargetsType]) {
			tf, _ := HashReader(strings.NewReader("new"))
			SetTarget(m, "proj/new.tgz", tf, nil)
		}), KindRelease},
		{"target removed", base(), next(func(m *metadata.Metadata[metadata.TargetsType]) { RemoveTarget(m, "proj/pkg-0.tgz") }), KindRelease},
		{"other field", base(), next(func(m *metadata.Metadata[metadata.TargetsType]) { m.Signed.UnrecognizedFields = map[string]any{"x": 1} }), KindRelease},
		{"key added", base(), next(set(spec(2, []string{"proj/a/*"}, ka, kb, kc))), KindEnrolment},
		{"key removed", base(), next(set(spec(1, []string{"proj/a/*"}, ka))), KindDelegation},
		{"threshold", base(), next(set(spec(1, []string{"proj/a/*"}, ka, kb))), KindDelegation},
		{"key added and threshold", base(), next(set(spec(3, []string{"proj/a/*"}, ka, kb, kc))), KindDelegation},
		{"paths", base(), next(set(spec(2, []string{"proj/*"}, ka, kb))), KindDelegation},
		{"role added", base(), next(set(DelegationSpec{Name: "other", Threshold: 1, Paths: []string{"proj/b/*"}, Keys: []*metadata.Key{kc}})), KindDelegation},
		{"role removed", base(), next(func(m *metadata.Metadata[metadata.TargetsType]) { RemoveDelegation(m, "sub") }), KindDelegation},
		{"delegation and targets", base(), next(func(m *metadata.Metadata[metadata.TargetsType]) {
			RemoveTarget(m, "proj/pkg-0.tgz")
			set(spec(1, []string{"proj/a/*"}, ka))(m)
		}), KindDelegation},
		{"first version with targets", nil, release(t, 1, 1), KindRelease},
		{"first version delegating", nil, func() *metadata.Metadata[metadata.TargetsType] {
			m := release(t, 1, 0)
			set(spec(1, []string{"proj/a/*"}, ka))(m)
			return m
		}(), KindDelegation},
	}
	for _, c := range cases {
		got, why := DeriveTargetsKind(c.cur, c.next)
		if got != c.want || why == "" {
			t.Errorf("%s: derived %s (%s), want %s", c.name, got, why, c.want)
		}
	}
}

func TestCheckKindLabel(t *testing.T) {
	if err := CheckKindLabel(KindDelegation, KindEnrolment, "x"); err != nil {
		t.Errorf("an enrolment labelled delegation: %v", err)
	}
	for _, c := range [][2]string{{KindRelease, KindDelegation}, {KindResign, KindDelegation}, {KindResign, KindRelease}, {KindEnrolment, KindDelegation}, {KindRelease, KindRootRotate}} {
		err := CheckKindLabel(c[0], c[1], "why")
		if err == nil || !strings.Contains(err.Error(), `labelled "`+c[0]+`" but its metadata is a `+c[1]) {
			t.Errorf("label %s for a %s: %v", c[0], c[1], err)
		}
	}
}
