package appliance

import (
	"bufio"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"airlock.dev/airlock/appliance/store"
	"airlock.dev/airlock/internal/online"
	"airlock.dev/airlock/tuf"
)

// Environment of the crash helper process.
const (
	crashEnv       = "AIRLOCK_APPLIANCE_CRASH_HELPER" // state directory
	crashBundles   = "AIRLOCK_CRASH_BUNDLES"          // bundle folders, list-separated
	crashKeys      = "AIRLOCK_CRASH_KEYS"             // key URIs, list-separated
	crashOut       = "AIRLOCK_CRASH_OUT"              // folder for response folders
	crashSeed      = "AIRLOCK_CRASH_SEED"
	crashMode      = "AIRLOCK_CRASH_MODE"      // loop, fault, selfkill, or all (every bundle once, then exit)
	crashTestSeed  = "AIRLOCK_CRASH_TEST_SEED" // replays the runs of a failed test
	crashRuns      = 60                        // helper processes started, each killed at a random point (30 to 50 s)
	crashMaxDelay  = 400 * time.Millisecond
	crashVersions  = 5
	crashListSplit = "\n"
	crashReady     = "airlock-crash-helper-ready"
)

// TestCrashHelperProcess is the helper of TestCeremonyCrashInjection: run as
// a child process, it signs bundles in a loop until it is killed.
func TestCrashHelperProcess(t *testing.T) {
	stateDir := os.Getenv(crashEnv)
	if stateDir == "" {
		return // not a helper run
	}
	os.Exit(crashHelper(stateDir))
}

func crashHelper(stateDir string) int {
	seed, _ := strconv.ParseUint(os.Getenv(crashSeed), 10, 64)
	rng := rand.New(rand.NewPCG(seed, 7))
	bundles := strings.Split(os.Getenv(crashBundles), crashListSplit)
	keys := KeyURIs(strings.Split(os.Getenv(crashKeys), crashListSplit))
	mode := os.Getenv(crashMode)
	open := func() *StateDir {
		st, err := OpenState(stateDir, SystemClock)
		if err != nil {
			fmt.Fprintln(os.Stderr, "open state:", err)
			os.Exit(3)
		}
		ops := 0
		switch mode {
		case "fault": // a durable write fails at a random step
			failAt := rng.IntN(40)
			st.dir.SetTestOnlyHook(func(op store.Op, name string) error {
				ops++
				if ops == failAt {
					return errors.New("injected fault")
				}
				return nil
			})
		case "selfkill": // the process dies exactly at a random write step
			killAt := 1 + rng.IntN(60)
			st.dir.SetTestOnlyHook(func(op store.Op, name string) error {
				ops++
				if ops == killAt {
					syscall.Kill(os.Getpid(), syscall.SIGKILL)
				}
				return nil
			})
		}
		return st
	}
	st := open()
	fmt.Println(crashReady) // the parent's kill timer starts now
	for n := 0; ; n++ {
		// Lower versions are likelier, so that several versions get signed.
		b := bundles[min(rng.IntN(len(bundles)), rng.IntN(len(bundles)))]
		if mode == "all" {
			if n == len(bundles) {
				return 0
			}
			b = bundles[n]
		}
		ui := &scriptUI{confirm: map[string]bool{"alice": true, "bob": true}}
		out := filepath.Join(os.Getenv(crashOut), fmt.Sprintf("%d-%d", os.Getpid(), n))
		c, err := New(Config{State: st, UI: ui, Clock: SystemClock, Date: now, Dev: true, Bundle: dirBundle(b), Keys: keys, Sink: DirSink(out)})
		if err != nil {
			return 4
		}
		if _, err := c.Run(context.Background()); err != nil {
			if os.Getenv("AIRLOCK_CRASH_DEBUG") != "" {
				fmt.Fprintln(os.Stderr, "ceremony:", err)
			}
			// A failed write leaves the ledger refusing until a restart.
			st.Close()
			st = open()
		}
	}
}

// TestCeremonyCrashInjection kills complete signing ceremonies at random
// points, some for the same version with different payloads, and checks
// after every kill that the state opens and verifies and that no two
// exported responses sign different bytes under one version.
func TestCeremonyCrashInjection(t *testing.T) {
	if os.Getenv(crashEnv) != "" {
		t.Skip("helper process")
	}
	s := newScenario(t).role("sigstore", 2, "alice", "bob")
	var bundles []string
	for v := 1; v <= crashVersions; v++ {
		for _, tgz := range []string{"1.3.0", "2.0.0"} {
			bundles = append(bundles, s.plainRelease("sigstore", tgz, int64(v)))
		}
	}
	stateDir := s.openState().Path()
	s.state.Close()
	s.state = nil
	outRoot := filepath.Join(s.dir, "responses")
	if err := os.Mkdir(outRoot, 0o755); err != nil {
		t.Fatal(err)
	}
	keys := "file:" + s.paths["alice"] + crashListSplit + "file:" + s.paths["bob"]
	run := func(seed uint64, mode string, kill time.Duration) (killed bool) {
		cmd := exec.Command(os.Args[0], "-test.run=^TestCrashHelperProcess$", "-test.count=1")
		cmd.Env = append(os.Environ(), crashEnv+"="+stateDir, crashBundles+"="+strings.Join(bundles, crashListSplit),
			crashKeys+"="+keys, crashOut+"="+outRoot, crashSeed+"="+strconv.FormatUint(seed, 10), crashMode+"="+mode)
		var stderr strings.Builder
		cmd.Stderr = &stderr
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		// The kill delay counts from when the helper has opened the
		// state, not from when the process started, so that how far the
		// helper gets does not depend on how fast the machine starts it.
		ready := make(chan struct{})
		go func() {
			sc := bufio.NewScanner(stdout)
			for sc.Scan() {
				if sc.Text() == crashReady {
					close(ready)
					break
				}
			}
			io.Copy(io.Discard, stdout)
		}()
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		if kill > 0 {
			select {
			case err = <-done:
			case <-ready:
				select {
				case err = <-done:
				case <-time.After(kill):
					cmd.Process.Signal(syscall.SIGKILL)
					err = <-done
				}
			}
		} else {
			err = <-done
		}
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() && ws.Signal() == syscall.SIGKILL {
				return true
			}
		}
		if os.Getenv("AIRLOCK_CRASH_DEBUG") != "" {
			t.Logf("helper %s: %v\n%s", mode, err, stderr.String())
		}
		if err != nil {
			t.Fatalf("helper (seed %d, %s) failed: %v\n%s", seed, mode, err, stderr.String())
		}
		return false
	}
	check := func(when string) {
		t.Helper()
		st, err := OpenState(stateDir, SystemClock)
		if err != nil {
			t.Fatalf("%s: the state does not open: %v", when, err)
		}
		defer st.Close()
		if err := st.Audit.Verify(); err != nil {
			t.Fatalf("%s: audit log: %v", when, err)
		}
	}
	// The number of runs is fixed; where each is killed is drawn from a
	// seed printed here, which AIRLOCK_CRASH_TEST_SEED replays (the kill
	// times of "loop" runs vary with the machine; the write step of
	// "fault" and "selfkill" runs is fixed by the seed).
	seed := uint64(time.Now().UnixNano())
	if v := os.Getenv(crashTestSeed); v != "" {
		var err error
		if seed, err = strconv.ParseUint(v, 10, 64); err != nil {
			t.Fatalf("%s=%q: want a decimal seed", crashTestSeed, v)
		}
	}
	t.Logf("crash injection: %d runs, seed %d (replay with %s=%d)", crashRuns, seed, crashTestSeed, seed)
	rng := rand.New(rand.NewPCG(seed, 1))
	runs, kills, selfKills := 0, 0, 0
	modes := []string{"loop", "loop", "fault", "selfkill"}
	for runs < crashRuns {
		hseed := rng.Uint64()
		mode := modes[rng.IntN(len(modes))]
		delay := time.Duration(rng.Int64N(int64(crashMaxDelay))) + time.Millisecond
		if run(hseed, mode, delay) {
			kills++
			if mode == "selfkill" {
				selfKills++
			}
		}
		runs++
		check(fmt.Sprintf("after run %d (test seed %d; helper seed %d, %s, %v)", runs, seed, hseed, mode, delay))
	}
	// A last helper signs every bundle and exits: the versions the ledger
	// allows end exported.
	run(rng.Uint64(), "all", 0)
	check("after the final run")

	st, err := OpenState(stateDir, SystemClock)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	type key struct {
		role    string
		version int64
	}
	signed := map[key]string{}
	exported, dirs := 0, 0
	ents, err := os.ReadDir(outRoot)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		dirs++
		b, err := os.ReadFile(filepath.Join(outRoot, e.Name(), ResponseFile))
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		resp, err := tuf.ParseResponse(b)
		if err != nil {
			t.Fatalf("response %s is not whole: %v", e.Name(), err)
		}
		exported++
		k := key{resp.Role, resp.Version}
		if prev, ok := signed[k]; ok && prev != resp.SignedSHA256 {
			t.Fatalf("equivocation: %s version %d exported for %s and %s", k.role, k.version, prev, resp.SignedSHA256)
		}
		signed[k] = resp.SignedSHA256
		recorded := false
		for _, le := range st.Ledger.History(resp.Role) {
			if le.Version == resp.Version && hex.EncodeToString(le.Payload[:]) == resp.SignedSHA256 {
				recorded = true
			}
		}
		if !recorded {
			t.Fatalf("response %s signs %s version %d (%s), which the ledger does not record", e.Name(), resp.Role, resp.Version, resp.SignedSHA256)
		}
	}
	if exported == 0 {
		t.Fatal("no ceremony exported a response")
	}
	t.Logf("%d helper runs (%d killed, %d at an exact write step), %d response folders begun, %d responses exported for %d versions, %d ledger entries, %d audit entries",
		runs, kills, selfKills, dirs, exported, len(signed), len(st.Ledger.History("sigstore")), st.Audit.Len())
}

// plainRelease builds a release bundle of role carrying the fixture tarball,
// without provenance or a previous release, as the given version.
func (s *scenario) plainRelease(role, tgz string, version int64) string {
	s.t.Helper()
	b, err := online.CreateBundle(s.repo, online.BundleOptions{Role: role, Now: now,
		Add: []online.FileArg{{File: filepath.Join("testdata", "sigstore-"+tgz+".tgz"), Target: role + "/sigstore-" + tgz + ".tgz"}}})
	if err != nil {
		s.t.Fatal(err)
	}
	dir := filepath.Join(s.dir, fmt.Sprintf("bundle-v%d-%s", version, tgz))
	if err := b.WriteDir(dir); err != nil {
		s.t.Fatal(err)
	}
	editMetadata(s.t, dir, func(m map[string]any) { m["version"] = version })
	return dir
}
