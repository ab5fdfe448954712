package ur

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"sort"
	"strconv"
	"strings"
	"testing"
)

// TestOverheadTable prints frames shown ÷ fragments under random loss for
// this package's encoder and decoder, side by side with the reference
// JavaScript implementation measured in the same run: its own encoder and
// decoder, and its decoder fed this package's default schedule. It runs
// only with UR_OVERHEAD_TABLE=1 (transfer/qr/bench.sh sets it), since the
// reference takes minutes.
func TestOverheadTable(t *testing.T) {
	if os.Getenv("UR_OVERHEAD_TABLE") == "" {
		t.Skip("set UR_OVERHEAD_TABLE=1 to measure (slow: runs the reference implementation)")
	}
	goTrials, jsTrials := 200, 20
	if v, err := strconv.Atoi(os.Getenv("UR_OVERHEAD_TRIALS")); err == nil && v > 0 {
		goTrials, jsTrials = v, max(1, v/10)
	}
	var rows []string
	rows = append(rows, fmt.Sprintf("%4s %5s | %-22s | %-22s | %-22s | %-22s | %s", "k", "loss",
		"ours: dense+GF(2)", "ref sched+GF(2)", "reference js", "js decoder, dense", "ref÷ours"))
	for _, k := range []int{10, 30, 100} {
		for _, loss := range []float64{0, 0.1, 0.3} {
			dense := measureOverhead(t, k, loss, ScheduleDense, goTrials)
			refSched := measureOverhead(t, k, loss, ScheduleReference, goTrials)
			js := jsReferenceOverhead(t, k, loss, jsTrials)
			jsDense := jsDecoderOnDense(t, k, loss, jsTrials)
			rows = append(rows, fmt.Sprintf("%4d %4.0f%% | %s | %s | %s | %s | %.2f",
				k, loss*100, dense, refSched, js, jsDense, js.mean/dense.mean))
		}
	}
	t.Logf("frames shown ÷ fragments (mean p90 max; ours %d trials, js %d):\n%s", goTrials, jsTrials, strings.Join(rows, "\n"))
}

func (s overheadStats) String() string {
	return fmt.Sprintf("%.3f %.3f %.3f", s.mean, s.p90, s.max)
}

func jsReferenceOverhead(t *testing.T, k int, loss float64, trials int) overheadStats {
	out, err := exec.Command("node", interopScript(t, "ur-bench.js"), strconv.Itoa(k), strconv.FormatFloat(loss, 'f', -1, 64), strconv.Itoa(trials)).Output()
	if err != nil {
		t.Fatalf("ur-bench.js: %v", err)
	}
	var r struct{ Mean, P90, Max float64 }
	if err := json.Unmarshal(out, &r); err != nil {
		t.Fatalf("ur-bench.js output %q: %v", out, err)
	}
	return overheadStats{r.Mean, r.P90, r.Max}
}

// jsDecoderOnDense shows the default schedule's frames, with losses, to
// the reference decoder and counts the frames shown until it completes.
func jsDecoderOnDense(t *testing.T, k int, loss float64, trials int) overheadStats {
	const fragLen = 16
	var in bytes.Buffer
	var shownIndex [][]int
	for trial := 0; trial < trials; trial++ {
		msg := makeMessage(k*fragLen-3, fmt.Sprintf("js-%d-%d", k, trial))
		e, err := NewEncoder(msg, EncoderOptions{MaxFragmentLen: fragLen, MinFragmentLen: 1})
		if err != nil {
			t.Fatal(err)
		}
		rng := rand.New(rand.NewPCG(uint64(k), uint64(trial)+1e6))
		var kept []string
		var idx []int
		for n := 1; n <= 40*k; n++ {
			p := e.NextPart()
			if rng.Float64() < loss {
				continue
			}
			kept = append(kept, p)
			idx = append(idx, n)
		}
		line, _ := json.Marshal(kept)
		in.Write(append(line, '\n'))
		shownIndex = append(shownIndex, idx)
	}
	cmd := exec.Command("node", interopScript(t, "ur-count.js"))
	cmd.Stdin = &in
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("ur-count.js: %v", err)
	}
	var ratios []float64
	sum := 0.0
	for i, f := range strings.Fields(string(out)) {
		used, _ := strconv.Atoi(f)
		if used <= 0 {
			t.Fatalf("reference decoder did not complete trial %d", i)
		}
		r := float64(shownIndex[i][used-1]) / float64(k)
		ratios = append(ratios, r)
		sum += r
	}
	if len(ratios) != trials {
		t.Fatalf("ur-count.js answered %d trials of %d", len(ratios), trials)
	}
	sort.Float64s(ratios)
	return overheadStats{sum / float64(trials), ratios[len(ratios)*9/10], ratios[len(ratios)-1]}
}
