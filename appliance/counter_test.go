package appliance

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"airlock.dev/airlock/appliance/ledger"
	"airlock.dev/airlock/hsm/tpm"
	"airlock.dev/airlock/hsm/tpm/tpmtest"
)

// copyState copies a whole state directory, as a backup of the partition.
func copyState(t *testing.T, from, to string) {
	t.Helper()
	if err := os.CopyFS(to, os.DirFS(from)); err != nil {
		t.Fatal(err)
	}
}

// swapState replaces the state directory at path with the copy at from.
func swapState(t *testing.T, from, path string) {
	t.Helper()
	if err := os.RemoveAll(path); err != nil {
		t.Fatal(err)
	}
	copyState(t, from, path)
}

func wantStateRollback(t *testing.T, err error, want string) {
	t.Helper()
	if !errors.Is(err, ErrStateRollback) || !strings.Contains(err.Error(), want) {
		t.Fatalf("got %v, want a state rollback containing %q", err, want)
	}
}

// Attack: the whole state partition (ledger and audit log together) is
// restored from an older copy, which the ledger and audit binding cannot
// see; the TPM NV counter the state is bound to can.
func TestOlderStateCopyRefusedByTPMCounter(t *testing.T) {
	ctr := tpm.Counter{Device: tpmtest.Simulator(t)}
	s := newScenario(t).role("sigstore", 2, "alice", "bob")
	st := s.openState()
	path := st.Path()
	unbound := filepath.Join(s.dir, "backup-unbound")
	copyState(t, path, unbound)
	if err := st.BindCounter(ctr); err != nil {
		t.Fatal(err)
	}
	v0, ok, err := ctr.Read()
	if err != nil || !ok || st.Ledger.Counter() != v0 {
		t.Fatalf("counter %d %v %v, ledger %d", v0, ok, err, st.Ledger.Counter())
	}
	older := filepath.Join(s.dir, "backup-bound")
	copyState(t, path, older)

	s.sign(s.release("sigstore", "1.3.0", "", nil), []string{"alice", "bob"}).done(t)
	if v, _, _ := ctr.Read(); v != v0+1 || st.Ledger.Counter() != v0+1 {
		t.Fatalf("after a signing: counter %d, ledger %d, want %d", v, st.Ledger.Counter(), v0+1)
	}
	st.Close()
	current := filepath.Join(s.dir, "current")
	copyState(t, path, current)

	// The copy from before the signing is consistent in itself: it opens,
	// and the counter refuses it.
	swapState(t, older, path)
	old, err := OpenState(path, fixedClock())
	if err != nil {
		t.Fatal(err)
	}
	wantStateRollback(t, old.BindCounter(ctr), "an older copy of the state directory was restored")
	old.Close()

	// A copy from before the binding cannot be bound again.
	swapState(t, unbound, path)
	old, err = OpenState(path, fixedClock())
	if err != nil {
		t.Fatal(err)
	}
	wantStateRollback(t, old.BindCounter(ctr), "ledger.json is bound to no counter")
	old.Close()

	// The current state binds.
	swapState(t, current, path)
	cur, err := OpenState(path, fixedClock())
	if err != nil {
		t.Fatal(err)
	}
	defer cur.Close()
	if err := cur.BindCounter(ctr); err != nil {
		t.Fatal(err)
	}
}

// A crash between the ledger write and the counter increment leaves the
// ledger one above the counter; opening completes the increment.
func TestCounterCatchesUpAfterInterruptedSigning(t *testing.T) {
	ctr := tpm.Counter{Device: tpmtest.Simulator(t)}
	s := newScenario(t).role("sigstore", 2, "alice", "bob")
	st := s.openState()
	if err := st.BindCounter(ctr); err != nil {
		t.Fatal(err)
	}
	v0 := st.Ledger.Counter()
	n, last := st.Audit.Head()
	// The ledger moves on; the counter does not (the crash).
	if err := st.Ledger.BindCounter(v0+1, ledger.AuditHead{Entries: n, Last: last}); err != nil {
		t.Fatal(err)
	}
	st = s.reopen()
	if err := st.BindCounter(ctr); err != nil {
		t.Fatal(err)
	}
	if v, _, _ := ctr.Read(); v != v0+1 {
		t.Fatalf("counter %d, want %d", v, v0+1)
	}
	// Signing goes on from there.
	s.sign(s.release("sigstore", "1.3.0", "", nil), []string{"alice", "bob"}).done(t)
	if v, _, _ := ctr.Read(); v != v0+2 || st.Ledger.Counter() != v0+2 {
		t.Fatalf("after a signing: counter %d, ledger %d, want %d", v, st.Ledger.Counter(), v0+2)
	}
}
