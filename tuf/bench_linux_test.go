package tuf

import (
	"runtime"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// BenchmarkSingleReleaseInterleaved alternates one Airlock verification of
// a single release and its two signature checks alone, op by op and in both
// orders, so both see the same load on a shared machine. It reports both
// the wall time and the CPU time of the benchmark's own thread per op, and
// their ratios: on a loaded machine the wall time mostly measures waiting
// for a core, the thread's CPU time does not.
func BenchmarkSingleReleaseInterleaved(b *testing.B) {
	c := benchSetup(b, 1)
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	verify := func() {
		if _, _, err := VerifyTargets(c.raw, c.d, RoleCheck{}); err != nil {
			b.Fatal(err)
		}
	}
	sigsOnly := func() {
		for _, s := range c.sigs {
			pk := c.d.key(s.KeyID)
			if err := verifyParsed(pk.pub, pk.hash, c.canon, s.Signature); err != nil {
				b.Fatal(err)
			}
		}
	}
	cpu := func() time.Duration {
		var ts unix.Timespec
		if err := unix.ClockGettime(unix.CLOCK_THREAD_CPUTIME_ID, &ts); err != nil {
			b.Fatal(err)
		}
		return time.Duration(ts.Nano())
	}
	// wall and CPU time of [airlock, signatures].
	var wall, thread [2]time.Duration
	first := 0
	for b.Loop() {
		order := [2]func(){verify, sigsOnly}
		if first == 1 {
			order = [2]func(){sigsOnly, verify}
		}
		for k, f := range order {
			w0, c0 := time.Now(), cpu()
			f()
			c1, w1 := cpu(), time.Now()
			which := k ^ first
			wall[which] += w1.Sub(w0)
			thread[which] += c1 - c0
		}
		first ^= 1
	}
	n := float64(b.N)
	b.ReportMetric(float64(wall[0])/n, "airlock-wall-ns/op")
	b.ReportMetric(float64(wall[1])/n, "signatures-wall-ns/op")
	b.ReportMetric(float64(thread[0])/n, "airlock-cpu-ns/op")
	b.ReportMetric(float64(thread[1])/n, "signatures-cpu-ns/op")
	b.ReportMetric(float64(wall[0])/float64(wall[1]), "wall-ratio")
	b.ReportMetric(float64(thread[0])/float64(thread[1]), "cpu-ratio")
}
