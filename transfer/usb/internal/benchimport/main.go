// Command benchimport imports a release bundle from a disk image in user
// space, as the appliance does, and prints the throughput and peak memory.
// transfer/usb/bench.sh builds and runs it.
package main

import (
	"flag"
	"fmt"
	"io/fs"
	"os"
	"runtime/pprof"
	"syscall"
	"time"

	"airlock.dev/airlock/transfer/bundle"
	"airlock.dev/airlock/transfer/usb"
)

func main() {
	image := flag.String("image", "", "disk image or device to read")
	work := flag.String("work", "", "empty or new working directory")
	cpuprofile := flag.String("cpuprofile", "", "write a CPU profile to this file")
	flag.Parse()
	if *image == "" || *work == "" {
		fmt.Fprintln(os.Stderr, "usage: benchimport -image IMG -work DIR")
		os.Exit(2)
	}
	if *cpuprofile != "" {
		f, err := os.Create(*cpuprofile)
		if err != nil {
			fail(err)
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			fail(err)
		}
		defer pprof.StopCPUProfile()
	}
	start := time.Now()
	v, err := usb.Open(*image)
	if err != nil {
		fail(err)
	}
	defer v.Close()
	dirs, err := usb.FindBundles(v.FS)
	if err != nil || len(dirs) == 0 {
		fail(fmt.Errorf("no bundle on %s: %v", *image, err))
	}
	sub, err := fs.Sub(v.FS, dirs[0])
	if err != nil {
		fail(err)
	}
	m, err := bundle.Import(sub, *work, bundle.Options{})
	if err != nil {
		fail(err)
	}
	elapsed := time.Since(start)
	var total int64
	for _, f := range m.Files {
		total += f.Size
	}
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	fmt.Printf("bytes=%d seconds=%.3f mbps=%.1f maxrss_kib=%d type=%s\n",
		total, elapsed.Seconds(), float64(total)/elapsed.Seconds()/1e6, ru.Maxrss, v.Type)
}

func fail(err error) {
	pprof.StopCPUProfile()
	fmt.Fprintln(os.Stderr, "benchimport: error:", err)
	os.Exit(1)
}
