package tuf

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/theupdateframework/go-tuf/v2/metadata"

	"airlock.dev/airlock/hsm"
)

var refTime = time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)

// holders makes development signers named after their holders.
func holders(t testing.TB, names ...string) map[string]hsm.Signer {
	t.Helper()
	dir := t.TempDir()
	out := map[string]hsm.Signer{}
	for _, n := range names {
		s, err := hsm.GenerateFileKey(filepath.Join(dir, n+".pem"), hsm.ECDSAP256, n, nil)
		if err != nil {
			t.Fatal(err)
		}
		out[n] = s
	}
	return out
}

func tufKey(t testing.TB, s hsm.Signer) (*metadata.Key, string) {
	t.Helper()
	k, err := KeyFromSigner(s)
	if err != nil {
		t.Fatal(err)
	}
	id, err := KeyID(k)
	if err != nil {
		t.Fatal(err)
	}
	return k, id
}

// delegation builds a targets role delegating "proj" to the given signers.
func delegation(t testing.TB, threshold int, signers ...hsm.Signer) (*metadata.Metadata[metadata.TargetsType], *Delegation) {
	t.Helper()
	parent := metadata.Targets(refTime.Add(90 * 24 * time.Hour))
	spec := DelegationSpec{Name: "proj", Threshold: threshold, Paths: []string{"proj/*"}}
	for _, s := range signers {
		k, _ := tufKey(t, s)
		spec.Keys = append(spec.Keys, k)
	}
	if err := SetDelegation(parent, spec); err != nil {
		t.Fatal(err)
	}
	d, err := DelegationFromTargets(parent, "targets", "proj")
	if err != nil {
		t.Fatal(err)
	}
	return parent, d
}

func release(t testing.TB, version int64, ntargets int) *metadata.Metadata[metadata.TargetsType] {
	t.Helper()
	m := metadata.Targets(refTime.Add(30 * 24 * time.Hour))
	m.Signed.Version = version
	for i := 0; i < ntargets; i++ {
		tf, err := HashReader(stringsReader(fmt.Sprintf("artifact %d", i)))
		if err != nil {
			t.Fatal(err)
		}
		if err := SetTarget(m, fmt.Sprintf("proj/pkg-%d.tgz", i), tf, nil); err != nil {
			t.Fatal(err)
		}
	}
	return m
}

func signWith(t testing.TB, m *metadata.Metadata[metadata.TargetsType], d *Delegation, signers ...hsm.Signer) {
	t.Helper()
	payload, err := Canonical(m)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range signers {
		sig, err := SignPayload(d, s, payload)
		if err != nil {
			t.Fatal(err)
		}
		m.Signatures = append(m.Signatures, sig)
	}
}

func roundTrip[T metadata.Roles](t testing.TB, m *metadata.Metadata[T]) []byte {
	t.Helper()
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
