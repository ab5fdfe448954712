package appliance

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/theupdateframework/go-tuf/v2/metadata"

	"airlock.dev/airlock/tuf"
)

// relabel rewrites a bundle's request to claim another role, keeping the
// chain of trust (the delegator is targets for both).
func relabel(t *testing.T, bundle, role string) {
	t.Helper()
	editRequest(t, bundle, func(req *tuf.Request) {
		req.Role = role
		req.Current = nil
	})
}

func refusalReason(t *testing.T, r result, rule Rule, want string) {
	t.Helper()
	r.refusedFor(t, rule)
	if !strings.Contains(r.state.Refusal.Reason, want) {
		t.Fatalf("refused for %q, want a reason containing %q", r.state.Refusal.Reason, want)
	}
}

// Attack: bytes for pair version 1 sent as role tufjs (same holders) are
// refused because their targets lie outside tufjs's delegated paths.
func TestRelabelledRoleRefusedByDelegatedPaths(t *testing.T) {
	s := newScenario(t).role("pair", 2, "alice", "bob").role("tufjs", 2, "alice", "bob")
	s.sign(s.release("pair", "1.3.0", "", nil), []string{"alice", "bob"}).done(t)
	other := s.release("pair", "2.0.0", "", func(dir string) { relabel(t, dir, "tufjs") })
	refusalReason(t, s.sign(other, []string{"alice", "bob"}), RuleTargets, "outside the role's delegated paths")
}

// Attack: roles sharing keys; a second payload for version 1 whose targets
// do fit the claimed role is refused by the ledger, keyed by the keys that
// sign, so no client can be shown two payloads for pair version 1.
func TestSharedKeysNeverSignTwoPayloadsForOneVersion(t *testing.T) {
	s := newScenario(t).role("pair", 2, "alice", "bob").role("tufjs", 2, "alice", "bob")
	s.sign(s.release("pair", "1.3.0", "", nil), []string{"alice", "bob"}).done(t)
	r := s.sign(s.release("tufjs", "2.0.0", "", nil), []string{"alice", "bob"})
	refusalReason(t, r, RuleLedger, "already signed targets version 1 (as role pair")
	if len(r.state.Signed) != 0 {
		t.Fatal("a key signed")
	}
}

// Targets outside the role's delegated paths are refused.
func TestTargetOutsideDelegatedPathsRefused(t *testing.T) {
	s := newScenario(t).role("sigstore", 2, "alice", "bob")
	b := s.release("sigstore", "1.3.0", "", func(dir string) {
		editMetadata(t, dir, func(m map[string]any) {
			ts := m["targets"].(map[string]any)
			for k, v := range ts {
				delete(ts, k)
				ts["evil/"+k] = v
			}
		})
	})
	refusalReason(t, s.sign(b, []string{"alice", "bob"}), RuleTargets, `target "evil/sigstore/sigstore-1.3.0.tgz"`)
}

// Attack: one public key listed under two key ids in a delegation.
func TestDuplicatePublicKeyUnderTwoKeyIDsRefused(t *testing.T) {
	s := delegationScenario(t, 2)
	b := s.targetsChange("dup", tuf.KindDelegation, func(m *metadata.Metadata[metadata.TargetsType]) {
		s.delegate(m, "sigstore", 2, nil, "alice", "bob", "carol")
		k := s.metaKey("alice")
		k.UnrecognizedFields["x-airlock-holder"] = "mallory"
		id, _ := tuf.KeyID(k)
		m.Signed.Delegations.Keys[id] = k
		m.Signed.Delegations.Roles[0].KeyIDs = append(m.Signed.Delegations.Roles[0].KeyIDs, id)
	})
	refusalReason(t, s.sign(b, []string{"ken", "lea"}), RuleMetadata, "one public key is listed under two key ids")
}

// Attack: a chain carrying targets v2 after this appliance signed targets v3.
func TestStaleDelegatorRefused(t *testing.T) {
	s := delegationScenario(t, 2)
	s.policy.Roles["sigstore"] = RolePolicy{}
	stale := s.release("sigstore", "1.3.0", "", nil) // chain: targets v2
	change := s.targetsChange("revoke", tuf.KindDelegation, func(m *metadata.Metadata[metadata.TargetsType]) {
		s.delegate(m, "sigstore", 2, nil, "alice", "bob")
	})
	s.sign(change, []string{"ken", "lea"}).done(t) // targets v3 signed here
	refusalReason(t, s.sign(stale, []string{"alice", "bob"}), RuleChain, "carries targets version 2, but this appliance has signed or accepted targets version 3")
}

// Attack: the confirmed date goes backwards.
func TestConfirmedDateNeverGoesBackwards(t *testing.T) {
	s := newScenario(t).role("sigstore", 2, "alice", "bob").role("other", 2, "alice", "bob")
	s.sign(s.release("sigstore", "1.3.0", "", nil), []string{"alice", "bob"}).done(t)
	st := s.openState()
	ui := &scriptUI{confirm: map[string]bool{"alice": true, "bob": true}}
	c, err := New(Config{State: st, UI: ui, Clock: fixedClock(), Dev: true, Date: now.Add(-48 * time.Hour),
		Bundle: dirBundle(s.release("other", "1.3.0", "", nil)), Keys: KeyURIs{"file:" + s.paths["alice"], "file:" + s.paths["bob"]}, Sink: DirSink(filepath.Join(s.dir, "out-back"))})
	if err != nil {
		t.Fatal(err)
	}
	state, err := c.Run(t.Context())
	refusalReason(t, result{state: state, err: err, ui: ui, out: filepath.Join(s.dir, "out-back")}, RuleDate, "earlier than 2025-06-02")
}

// Attack: replacing ledger.json with an older valid copy re-opens a signed
// version; the audit log's binding refuses the state.
func TestOlderLedgerCopyRefused(t *testing.T) {
	s := newScenario(t).role("sigstore", 2, "alice", "bob")
	st := s.openState()
	ledgerPath := filepath.Join(st.Path(), "ledger.json")
	old, err := os.ReadFile(ledgerPath)
	if err != nil {
		t.Fatal(err)
	}
	s.sign(s.release("sigstore", "1.3.0", "", nil), []string{"alice", "bob"}).done(t)
	path := st.Path()
	st.Close()
	if err := os.WriteFile(ledgerPath, old, 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = OpenState(path, fixedClock())
	if err == nil || !strings.Contains(err.Error(), "an older copy may have been restored") {
		t.Fatalf("OpenState with an older ledger: %v", err)
	}
}
