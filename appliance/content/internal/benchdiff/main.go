// Command benchdiff reads two artifacts (or unpacked directories), compares
// them with package content and prints per-file line counts in the form of
// git diff --numstat, then the elapsed time and the peak resident set size.
// bench.sh runs it beside git on the same inputs.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"runtime/pprof"
	"sync"
	"syscall"
	"time"

	"airlock.dev/airlock/appliance/content"
)

func main() {
	asJSON := flag.Bool("json", false, "print the whole diff as JSON")
	quiet := flag.Bool("q", false, "print only the timing line")
	cpuProfile := flag.String("cpuprofile", "", "write a CPU profile to this file")
	memProfile := flag.String("memprofile", "", "write an allocation profile to this file")
	flag.Parse()
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			fmt.Fprintln(os.Stderr, "benchdiff: error:", err)
			os.Exit(1)
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			fmt.Fprintln(os.Stderr, "benchdiff: error:", err)
			os.Exit(1)
		}
		defer pprof.StopCPUProfile()
	}
	if flag.NArg() != 2 {
		fmt.Fprintln(os.Stderr, "usage: benchdiff [-json] [-q] OLD NEW  (artifact files or directories)")
		os.Exit(2)
	}
	start := time.Now()
	lim := content.DefaultLimits()
	var d *content.Diff
	if st, err := os.Stat(flag.Arg(0)); err == nil && st.IsDir() {
		d = compareDirs(flag.Arg(0), flag.Arg(1), lim)
	} else {
		d = compareFiles(flag.Arg(0), flag.Arg(1), lim)
	}
	elapsed := time.Since(start)
	if *memProfile != "" {
		f, err := os.Create(*memProfile)
		if err != nil {
			fail(err)
		}
		if err := pprof.Lookup("allocs").WriteTo(f, 0); err != nil {
			fail(err)
		}
		f.Close()
	}
	switch {
	case *asJSON:
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(d); err != nil {
			fmt.Fprintln(os.Stderr, "benchdiff: error:", err)
			os.Exit(1)
		}
	case !*quiet:
		for _, c := range d.Files {
			if c.Binary {
				fmt.Printf("-\t-\t%s\n", content.Visible(c.Path))
				continue
			}
			fmt.Printf("%d\t%d\t%s\n", c.LinesAdded, c.LinesRemoved, content.Visible(c.Path))
		}
		for _, s := range d.Signals {
			fmt.Fprintf(os.Stderr, "signal %s %s %s:%d %s\n", s.Severity, s.Kind, content.Visible(s.File), s.Line, content.Visible(s.Detail))
		}
	}
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	fmt.Fprintf(os.Stderr, "benchdiff: %d files changed, +%d -%d lines, %.3fs, peak RSS %d KiB\n",
		len(d.Files), d.LinesAdded, d.LinesRemoved, elapsed.Seconds(), ru.Maxrss)
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "benchdiff: error:", err)
	os.Exit(1)
}

// compareDirs reads two unpacked trees, at once, and compares them.
func compareDirs(old, new string, lim content.Limits) *content.Diff {
	trees := make([]*content.Tree, 2)
	errs := make([]error, 2)
	var wg sync.WaitGroup
	for i, p := range []string{old, new} {
		wg.Go(func() { trees[i], errs[i] = content.ReadDir(p, lim) })
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			fail(err)
		}
	}
	return content.Compare(trees[0], trees[1], lim)
}

// compareFiles compares two artifacts as the appliance does.
func compareFiles(old, new string, lim content.Limits) *content.Diff {
	var arts [2]content.Artifact
	for i, p := range []string{old, new} {
		f, err := os.Open(p)
		if err != nil {
			fail(err)
		}
		st, err := f.Stat()
		if err != nil {
			fail(err)
		}
		arts[i] = content.Artifact{Name: filepath.Base(p), R: f, Size: st.Size()}
	}
	d, err := content.CompareArtifacts(&arts[0], arts[1], lim)
	if err != nil {
		fail(err)
	}
	return d
}
