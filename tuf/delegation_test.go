package tuf

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/theupdateframework/go-tuf/v2/metadata"
)

func TestChangeAndRemoveDelegation(t *testing.T) {
	tr := newTestRepo(t)
	// Change: proj now needs 3 of alice, bob, carol and may sign only proj/v2/*.
	next, _ := tr.NextTargets("targets", refTime.Add(60*24*time.Hour))
	spec := DelegationSpec{Name: "proj", Threshold: 3, Paths: []string{"proj/v2/*"}, Terminating: true}
	for _, n := range []string{"alice", "bob", "carol"} {
		k, _ := tufKey(t, tr.keys[n])
		spec.Keys = append(spec.Keys, k)
	}
	if err := SetDelegation(next, spec); err != nil {
		t.Fatal(err)
	}
	if n := len(next.Signed.Delegations.Roles); n != 1 {
		t.Fatalf("changing a role left %d roles", n)
	}
	if err := tr.commit(t, "targets", next, "t1"); err != nil {
		t.Fatal(err)
	}
	if err := tr.releaseFile(t, "proj/v2/x.tgz", "x", "alice", "bob"); err == nil {
		t.Fatal("2 signatures accepted after the threshold became 3")
	}
	if err := tr.releaseFile(t, "proj/v2/x.tgz", "x", "alice", "bob", "carol"); err != nil {
		t.Fatal(err)
	}
	// The old target proj/a.tgz is outside the new paths: clients no longer find it.
	if _, _, err := tr.client().Verify(context.Background(), tr.root, "proj/a.tgz"); err == nil || !strings.Contains(err.Error(), "not signed by any role") {
		t.Fatalf("target outside the delegated paths: %v", err)
	}
	if _, _, err := tr.client().Verify(context.Background(), tr.root, "proj/v2/x.tgz"); err != nil {
		t.Fatal(err)
	}
	// Remove: the role and its keys go.
	next, _ = tr.NextTargets("targets", refTime.Add(60*24*time.Hour))
	if err := RemoveDelegation(next, "proj"); err != nil {
		t.Fatal(err)
	}
	if next.Signed.Delegations != nil {
		t.Fatalf("delegations left after removing the only role: %+v", next.Signed.Delegations)
	}
	if err := RemoveDelegation(next, "proj"); err == nil {
		t.Fatal("removing a role twice succeeded")
	}
	if err := tr.commit(t, "targets", next, "t1"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := tr.client().Verify(context.Background(), tr.root, "proj/v2/x.tgz"); err == nil {
		t.Fatal("target of a removed role still verifies")
	}
}

func TestSetDelegationRefusesOneKeyTwice(t *testing.T) {
	h := holders(t, "alice")
	parent := metadata.Targets(refTime.Add(time.Hour))
	k, _ := tufKey(t, h["alice"])
	twin := *k
	twin.UnrecognizedFields = map[string]any{FieldHolder: "someone else"}
	err := SetDelegation(parent, DelegationSpec{Name: "proj", Threshold: 2, Paths: []string{"*"}, Keys: []*metadata.Key{k, &twin}})
	if err == nil || !strings.Contains(err.Error(), "same public key") {
		t.Fatalf("one public key under two holders: %v", err)
	}
}

func TestSuccinctHashedBins(t *testing.T) {
	tr := newTestRepo(t)
	next, _ := tr.NextTargets("targets", refTime.Add(60*24*time.Hour))
	next.Signed.Delegations = nil
	var keys []*metadata.Key
	for _, n := range []string{"alice", "bob"} {
		k, _ := tufKey(t, tr.keys[n])
		keys = append(keys, k)
	}
	if err := SetSuccinctBins(next, keys, 2, 4, "bin"); err != nil {
		t.Fatal(err)
	}
	if err := tr.commit(t, "targets", next, "t1"); err != nil {
		t.Fatal(err)
	}
	target := "pkgs/left-pad-1.3.0.tgz"
	bin := next.Signed.Delegations.SuccinctRoles.GetRolesForTarget(target)[0].Name
	m := metadata.Targets(refTime.Add(30 * 24 * time.Hour))
	tf, _ := HashReader(strings.NewReader("pad"))
	SetTarget(m, target, tf, []byte(`{"npm":{"name":"left-pad"}}`))
	tr.AddTargetFile(target, []byte("pad"))
	if err := tr.commit(t, bin, m, "alice", "bob"); err != nil {
		t.Fatalf("commit bin %s: %v", bin, err)
	}
	rep, data, err := tr.client().Verify(context.Background(), tr.root, target)
	if err != nil {
		t.Fatal(err)
	}
	if string(data) != "pad" || rep.TargetRole != bin {
		t.Fatalf("got %q from %s, want from %s", data, rep.TargetRole, bin)
	}
	if rep.TargetInfo.Custom == nil || !strings.Contains(string(*rep.TargetInfo.Custom), "left-pad") {
		t.Fatalf("custom field lost: %v", rep.TargetInfo.Custom)
	}
	if err := SetSuccinctBins(next, keys, 0, 4, "bin"); err == nil {
		t.Fatal("threshold 0 bins accepted")
	}
	if err := SetSuccinctBins(next, keys, 2, 33, "bin"); err == nil {
		t.Fatal("33-bit bins accepted")
	}
}

func TestDiffTargets(t *testing.T) {
	old := metadata.Targets(refTime)
	a, _ := HashReader(strings.NewReader("a"))
	b, _ := HashReader(strings.NewReader("b"))
	SetTarget(old, "p/keep", a, nil)
	SetTarget(old, "p/change", a, nil)
	SetTarget(old, "p/drop", a, nil)
	next := metadata.Targets(refTime)
	SetTarget(next, "p/keep", a, nil)
	SetTarget(next, "p/change", b, nil)
	SetTarget(next, "p/new", b, nil)
	var got []string
	for _, c := range DiffTargets(old, next) {
		got = append(got, c.Change+" "+c.Path)
	}
	want := "changed p/change,removed p/drop,added p/new"
	if strings.Join(got, ",") != want {
		t.Fatalf("diff %v, want %s", got, want)
	}
}
