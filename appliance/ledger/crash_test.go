package ledger_test

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"airlock.dev/airlock/appliance/audit"
	"airlock.dev/airlock/appliance/ledger"
	"airlock.dev/airlock/appliance/store"
)

// Environment of the helper process.
const (
	envHelper = "AIRLOCK_LEDGER_CRASH_HELPER"
	envDir    = "AIRLOCK_LEDGER_CRASH_DIR"
	envSeed   = "AIRLOCK_LEDGER_CRASH_SEED"
	envMode   = "AIRLOCK_LEDGER_CRASH_MODE"
)

// Helper exit codes.
const (
	exitBroken = 3 // an injected write failure broke the ledger or log: restart
	exitBug    = 4 // an invariant failed inside the helper
)

// Modes of the helper process.
const (
	modeExternal = "external"  // the parent kills it after a random delay
	modeSelfKill = "self-kill" // it SIGKILLs itself at a random durable-write step
	modeFail     = "fail"      // a random durable-write step returns an error
)

var roles = []string{"targets", "root", "projects/left-pad"}

func clock() time.Time { return time.Now().UTC() }

// TestHelperProcess is the crash-injection worker: it records signings and
// appends audit entries in a loop, printing a line to stdout for every
// operation that returned success, until it is killed. It does nothing in a
// normal test run.
func TestHelperProcess(t *testing.T) {
	if os.Getenv(envHelper) != "1" {
		return
	}
	os.Exit(helperMain())
}

func helperMain() int {
	seed, _ := strconv.ParseUint(os.Getenv(envSeed), 10, 64)
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	bug := func(format string, a ...any) int {
		fmt.Fprintf(os.Stderr, format+"\n", a...)
		return exitBug
	}
	d, err := store.OpenDir(os.Getenv(envDir))
	if err != nil {
		return bug("open dir: %v", err)
	}
	switch os.Getenv(envMode) {
	case modeSelfKill:
		d.SetTestOnlyHook(func(store.Op, string) error {
			if rng.IntN(12) == 0 {
				syscall.Kill(os.Getpid(), syscall.SIGKILL)
				select {} // the signal is on its way
			}
			return nil
		})
	case modeFail:
		d.SetTestOnlyHook(func(op store.Op, name string) error {
			if rng.IntN(15) == 0 {
				return errors.New("injected fault")
			}
			return nil
		})
	}
	// The helper starts like the appliance does: open both, which may
	// recover an interrupted audit append.
	l, err := ledger.Open(d)
	if err != nil {
		return bug("open ledger: %v", err)
	}
	lg, err := audit.Open(d, clock)
	if errors.Is(err, audit.ErrBroken) || err != nil && os.Getenv(envMode) == modeFail {
		return exitBroken
	}
	if err != nil {
		return bug("open audit: %v", err)
	}
	out := bufio.NewWriter(os.Stdout)
	ack := func(format string, a ...any) {
		fmt.Fprintf(out, format+"\n", a...)
		out.Flush() // one write(2) per line: the parent sees every ack made before the kill
	}
	for i := 0; i < 10000; i++ {
		role := roles[rng.IntN(len(roles))]
		h, _, _ := l.Highest(role)
		v := h + int64(rng.IntN(3)) - 1 // a rollback, a retry or equivocation, or the next version
		if v < 1 {
			v = 1
		}
		p := sha256.Sum256(fmt.Appendf(nil, "%s/%d/%d", role, v, rng.IntN(2)))
		cer := fmt.Sprintf("s%d-%d", seed, i)
		err := l.Record(role, v, p, cer, clock())
		outcome := audit.OutcomeOK
		switch {
		case err == nil:
			ack("L %s %d %x", role, v, p)
		case errors.Is(err, ledger.ErrRollback) || errors.Is(err, ledger.ErrEquivocation):
			outcome = audit.OutcomeRefused
		case errors.Is(err, ledger.ErrBroken) || os.Getenv(envMode) == modeFail:
			return exitBroken
		default:
			return bug("record: %v", err)
		}
		e, sum, err := lg.Append(audit.Entry{
			Time: clock(), Ceremony: cer, Step: "sign", Actor: "crash-helper",
			Hashes:  []audit.Hash{{Name: "payload", Sum: p}},
			Outcome: outcome, Detail: fmt.Sprintf("%s version %d", role, v),
		})
		if err != nil {
			if os.Getenv(envMode) == modeFail {
				return exitBroken
			}
			return bug("append: %v", err)
		}
		ack("A %d %x", e.Seq, sum)
	}
	return 0
}

type model struct {
	signed   map[string]map[int64]string // role → version → payload acknowledged by Record
	highest  map[string]int64
	appended map[int64]string // seq → entry hash acknowledged by Append
}

// observe folds a helper's acknowledgements into the model and reports any
// pair of acknowledgements that together break a rule.
func (m *model) observe(stdout []byte) (acks int, err error) {
	for _, line := range strings.Split(string(stdout), "\n") {
		f := strings.Fields(line)
		switch {
		case len(f) == 0:
		case f[0] == "L" && len(f) == 4:
			v, _ := strconv.ParseInt(f[2], 10, 64)
			role, p := f[1], f[3]
			if v < m.highest[role] {
				return acks, fmt.Errorf("rollback acknowledged: %s version %d after version %d", role, v, m.highest[role])
			}
			if m.signed[role] == nil {
				m.signed[role] = make(map[int64]string)
			}
			if old, ok := m.signed[role][v]; ok && old != p {
				return acks, fmt.Errorf("equivocation acknowledged: %s version %d with %s and %s", role, v, old, p)
			}
			m.signed[role][v] = p
			m.highest[role] = v
			acks++
		case f[0] == "A" && len(f) == 3:
			seq, _ := strconv.ParseInt(f[1], 10, 64)
			m.appended[seq] = f[2]
			acks++
		default:
			return acks, fmt.Errorf("helper printed %q", line)
		}
	}
	return acks, nil
}

// check reopens the state directory and verifies it against the model.
func (m *model) check(path string) (recovered bool, err error) {
	d, err := store.OpenDir(path)
	if err != nil {
		return false, err
	}
	defer d.Close()
	l, err := ledger.Open(d)
	if err != nil {
		return false, fmt.Errorf("ledger unreadable after a crash: %w", err)
	}
	for role, versions := range m.signed {
		h, _, _ := l.Highest(role)
		if h < m.highest[role] {
			return false, fmt.Errorf("%s: ledger's highest version %d is below acknowledged %d", role, h, m.highest[role])
		}
		for v, ph := range versions {
			var p, other [32]byte
			hex.Decode(p[:], []byte(ph))
			other = sha256.Sum256(p[:])
			if err := l.Check(role, v, other); err == nil {
				return false, fmt.Errorf("%s version %d acknowledged with %s now accepts other bytes", role, v, ph)
			}
			if v > 1 {
				if err := l.Check(role, v-1, p); err == nil {
					return false, fmt.Errorf("%s accepts version %d after acknowledging %d", role, v-1, v)
				}
			}
			if err := l.Check(role, v, p); (err == nil) != (v == h) {
				return false, fmt.Errorf("%s version %d (highest %d) same-payload retry: %v", role, v, h, err)
			}
		}
	}
	for _, e := range l.History("") {
		if ph, ok := m.signed[e.Role][e.Version]; ok && ph != hex.EncodeToString(e.Payload[:]) {
			return false, fmt.Errorf("ledger history holds %s version %d with %x, acknowledged with %s", e.Role, e.Version, e.Payload, ph)
		}
	}
	lg, err := audit.Open(d, clock)
	if err != nil {
		return false, fmt.Errorf("audit log unreadable after a crash: %w", err)
	}
	_, recovered = lg.Recovery()
	if err := lg.Verify(); err != nil {
		return recovered, err
	}
	es := lg.Entries()
	for seq, h := range m.appended {
		if seq >= int64(len(es)) {
			return recovered, fmt.Errorf("acknowledged audit entry %d lost (log has %d)", seq, len(es))
		}
		if got := hex.EncodeToString(func() []byte { s := audit.EntrySum(es[seq]); return s[:] }()); got != h {
			return recovered, fmt.Errorf("acknowledged audit entry %d changed: %s, was %s", seq, got, h)
		}
	}
	return recovered, nil
}

// TestCrashInjection kills a process that records signings and appends
// audit entries at random instants (SIGKILL from outside after a random
// delay, SIGKILL from inside at a random durable-write step, or an error
// injected at a random step), then reopens the state and checks that no
// acknowledged signing or entry was lost and no rule can be broken.
func TestCrashInjection(t *testing.T) {
	runs := map[string]int{modeExternal: 160, modeSelfKill: 100, modeFail: 40}
	if testing.Short() {
		runs = map[string]int{modeExternal: 30, modeSelfKill: 15, modeFail: 10}
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "state")
	d, err := store.OpenDir(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := ledger.Init(d); err != nil {
		t.Fatal(err)
	}
	if err := audit.Init(d); err != nil {
		t.Fatal(err)
	}
	d.Close()

	m := &model{signed: map[string]map[int64]string{}, highest: map[string]int64{}, appended: map[int64]string{}}
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 1))
	var kills, selfKills, broken, acks, recoveries, total int
	for _, mode := range []string{modeExternal, modeSelfKill, modeFail} {
		for range runs[mode] {
			total++
			var stdout, stderr bytes.Buffer
			cmd := exec.Command(exe, "-test.run=^TestHelperProcess$", "-test.count=1")
			seed := rng.Uint64()
			cmd.Env = append(os.Environ(), envHelper+"=1", envDir+"="+path, envMode+"="+mode,
				envSeed+"="+strconv.FormatUint(seed, 10))
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			// Self-kill and fault runs end on their own; bound them anyway.
			// Signal on an *os.Process that was waited for is a no-op.
			limit := time.Minute
			if mode == modeExternal {
				limit = time.Duration(rng.IntN(60_000)) * time.Microsecond
			}
			timer := time.AfterFunc(limit, func() { cmd.Process.Signal(syscall.SIGKILL) })
			werr := cmd.Wait()
			timer.Stop()
			var ee *exec.ExitError
			switch {
			case errors.As(werr, &ee) && ee.Sys().(syscall.WaitStatus).Signaled():
				if mode == modeSelfKill {
					selfKills++
				} else {
					kills++
				}
			case errors.As(werr, &ee) && ee.ExitCode() == exitBroken:
				broken++
			case werr == nil:
			default:
				t.Fatalf("run %d (%s, seed %d): helper failed: %v\n%s", total, mode, seed, werr, stderr.Bytes())
			}
			n, err := m.observe(stdout.Bytes())
			acks += n
			if err != nil {
				t.Fatalf("run %d (%s, seed %d): %v", total, mode, seed, err)
			}
			rec, err := m.check(path)
			if err != nil {
				t.Fatalf("run %d (%s, seed %d): after the crash: %v", total, mode, seed, err)
			}
			if rec {
				recoveries++
			}
		}
	}
	signed := 0
	for _, vs := range m.signed {
		signed += len(vs)
	}
	t.Logf("%d runs: %d killed from outside, %d killed themselves mid-write, %d stopped by an injected fault; %d acknowledgements checked; %d (role, version) signings; %d audit entries acknowledged; %d interrupted audit appends discarded on reopen",
		total, kills, selfKills, broken, acks, signed, len(m.appended), recoveries)
	if kills+selfKills < total/2 {
		t.Errorf("only %d of %d runs ended in a kill: the test is not exercising crashes", kills+selfKills, total)
	}
	if len(m.appended) == 0 || signed == 0 {
		t.Error("no operation was ever acknowledged: the helper never got going")
	}
}
