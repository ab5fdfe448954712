package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"time"

	"airlock.dev/airlock/internal/cli"
	"airlock.dev/airlock/tuf"
)

func cmdClient(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := cli.NewFlagSet("airlock client", `usage: airlock client --metadata-dir DIR [--metadata-url URL] init ROOT | refresh |
       download --target-name NAME [--target-name NAME...] --target-base-url URL --target-dir DIR [--json]

A TUF client that remembers what it trusted: DIR keeps root.json,
timestamp.json, snapshot.json, targets.json and delegated roles, each saved
as soon as it is verified, so an older repository replayed later is refused.
It speaks the TUF conformance suite's client protocol.

example:
  airlock client --metadata-dir state init repo/metadata/1.root.json
  airlock client --metadata-dir state --metadata-url http://127.0.0.1:8000/metadata refresh
`, stderr)
	dir := fs.String("metadata-dir", "", "directory of trusted metadata")
	metaURL := fs.String("metadata-url", "", "base URL of the repository's metadata")
	var names cli.List
	fs.Var(&names, "target-name", "target path to download (repeatable, processed in order)")
	targetURL := fs.String("target-base-url", "", "base URL of the repository's targets")
	targetDir := fs.String("target-dir", "", "directory to store verified targets in")
	asJSON := fs.Bool("json", false, "print the report as JSON")
	if slices.ContainsFunc(args, func(a string) bool { return a == "-h" || a == "-help" || a == "--help" }) {
		args = []string{"-h"} // "airlock client init -h" asks for help too
	}
	if err := cli.Parse(fs, args); err != nil {
		return err
	}
	rest := fs.Args()
	if len(rest) == 0 {
		return cli.Usagef("a command is required: init, refresh or download")
	}
	if *dir == "" {
		return cli.Usagef("--metadata-dir is required")
	}
	store := tuf.DirStore(*dir)
	switch rest[0] {
	case "init":
		if len(rest) != 2 {
			return cli.Usagef("init takes the trusted root file")
		}
		root, err := os.ReadFile(rest[1])
		if err != nil {
			return err
		}
		if err := os.MkdirAll(*dir, 0o755); err != nil {
			return err
		}
		return tuf.InitStore(store, root)
	case "refresh", "download":
	default:
		return cli.Usagef("unknown command %q (init, refresh, download)", rest[0])
	}
	if len(rest) != 1 {
		return cli.Usagef("%s takes no arguments", rest[0])
	}
	if *metaURL == "" {
		return cli.Usagef("--metadata-url is required")
	}
	mu, err := url.Parse(*metaURL)
	if err != nil || (mu.Scheme != "http" && mu.Scheme != "https") {
		return cli.Usagef("--metadata-url: want an http(s) URL")
	}
	now, err := clientNow()
	if err != nil {
		return err
	}
	u := &tuf.Updater{Store: store, Remote: tuf.HTTPFetcher{Base: mu}, RefTime: now}
	if rest[0] == "download" {
		if len(names) == 0 || *targetURL == "" || *targetDir == "" {
			return cli.Usagef("download needs --target-name, --target-base-url and --target-dir")
		}
		tu, err := url.Parse(*targetURL)
		if err != nil || (tu.Scheme != "http" && tu.Scheme != "https") {
			return cli.Usagef("--target-base-url: want an http(s) URL")
		}
		u.Targets = tuf.HTTPFetcher{Base: tu}
	}
	if err := u.Refresh(ctx); err != nil {
		return err
	}
	var got []string
	for _, name := range names {
		info, err := u.GetTargetInfo(ctx, name)
		if err != nil {
			return err
		}
		p, err := u.DownloadTarget(ctx, info, *targetDir)
		if err != nil {
			return err
		}
		got = append(got, p)
	}
	rep := u.Report()
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(struct {
			*tuf.ClientReport
			Files []string `json:"files,omitempty"`
		}{rep, got})
	}
	fmt.Fprintf(stdout, "root version %d: trusted\n", rep.RootVersion)
	for _, r := range rep.Roles {
		fmt.Fprintf(stdout, "%-10s version %-4d expires %s\n", r.Role, r.Version, r.Expires.UTC().Format("2006-01-02"))
	}
	for i, p := range got {
		fmt.Fprintf(stdout, "target %s: verified, %s\n", names[i], p)
	}
	return nil
}

// clientNow is the reference time. When libfaketime moves the clock
// (FAKETIME is set), Go's runtime does not see it, so the time comes from
// libc through date(1).
func clientNow() (time.Time, error) {
	if os.Getenv("FAKETIME") == "" {
		return time.Now(), nil
	}
	out, err := exec.Command("date", "+%s").Output()
	if err != nil {
		return time.Time{}, fmt.Errorf("reading the faked time with date: %w", err)
	}
	s, err := strconv.ParseInt(strings.TrimSpace(string(out)), 10, 64)
	if err != nil {
		return time.Time{}, fmt.Errorf("date printed %q: %w", out, err)
	}
	return time.Unix(s, 0), nil
}
