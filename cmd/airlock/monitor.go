package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"time"

	"airlock.dev/airlock/internal/cli"
	"airlock.dev/airlock/registry"
	"airlock.dev/airlock/tuf"
)

func cmdMonitor(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := cli.NewFlagSet("airlock monitor", `usage: airlock monitor --registry URL --tuf URL|DIR --root ROOT.json --package NAME...
       [--interval 5m] [--once] [--alert-command CMD]

For every version the registry serves, check its tarball against a
threshold-signed TUF target (the airlock client's checks). A version with no
signed target, other bytes, or no provenance after versions that had it
raises an alarm: a JSON line on stdout, CMD run with the line on stdin, and
with --once exit status 1. A version staged at a gate (policyRestrictions)
is not installable and is not checked.

example:
  airlock monitor --registry http://127.0.0.1:4880 --tuf http://127.0.0.1:4880/tuf \
      --root repo/metadata/1.root.json --package tuf-js --once
`, stderr)
	reg := fs.String("registry", "", "npm registry URL (the gate, or the registry behind it)")
	repo := fs.String("tuf", "", "TUF repository: http(s) URL or folder (metadata/ and targets/ below it)")
	rootFile := fs.String("root", "", "trusted root metadata")
	var pkgs cli.List
	fs.Var(&pkgs, "package", "package to watch (repeat)")
	interval := fs.String("interval", "5m", "time between checks")
	once := fs.Bool("once", false, "check once; exit 1 on any alarm")
	alert := fs.String("alert-command", "", "shell command run for each alarm, the JSON line on stdin")
	if err := cli.Parse(fs, args); err != nil {
		return err
	}
	if *reg == "" || *repo == "" || *rootFile == "" || len(pkgs) == 0 {
		return cli.Usagef("--registry, --tuf, --root and at least one --package are required")
	}
	ru, err := url.Parse(*reg)
	if err != nil || (ru.Scheme != "http" && ru.Scheme != "https") || ru.Host == "" {
		return cli.Usagef("--registry: want an http(s) URL")
	}
	for _, p := range pkgs {
		if err := registry.CheckName(p); err != nil {
			return cli.Usagef("--package: %v", err)
		}
	}
	every, err := durationFlag("interval", *interval)
	if err != nil {
		return err
	}
	root, err := os.ReadFile(*rootFile)
	if err != nil {
		return err
	}
	m := &registry.Monitor{Registry: ru, Root: root}
	if strings.HasPrefix(*repo, "http://") || strings.HasPrefix(*repo, "https://") {
		tu, err := url.Parse(*repo)
		if err != nil {
			return cli.Usagef("--tuf: %v", err)
		}
		m.Repo = tuf.HTTPFetcher{Base: tu}
	} else {
		m.Repo = tuf.DirFetcher(*repo)
	}
	seen := map[string]bool{}
	for {
		raised, failed := 0, 0
		for _, p := range pkgs {
			alarms, err := m.Check(ctx, p)
			if err != nil {
				failed++
				fmt.Fprintf(stderr, "airlock monitor: %s: %v\n", p, err)
				continue
			}
			for _, a := range alarms {
				key := a.Kind + " " + a.Package + "@" + a.Version + " " + a.Reason
				if seen[key] {
					continue
				}
				seen[key] = true
				raised++
				line, _ := json.Marshal(a)
				fmt.Fprintf(stdout, "%s\n", line)
				if *alert != "" {
					cmd := exec.CommandContext(ctx, "sh", "-c", *alert)
					cmd.Stdin = bytes.NewReader(append(line, '\n'))
					cmd.Stdout, cmd.Stderr = stderr, stderr
					if err := cmd.Run(); err != nil {
						fmt.Fprintf(stderr, "airlock monitor: alert command: %v\n", err)
					}
				}
			}
		}
		if *once {
			if raised > 0 {
				return fmt.Errorf("%d alarm(s) raised", raised)
			}
			if failed > 0 {
				return fmt.Errorf("%d package(s) could not be checked", failed)
			}
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(every):
		}
	}
}
