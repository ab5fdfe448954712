package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"os"
	"strings"
	"time"

	"airlock.dev/airlock/internal/cli"
	"airlock.dev/airlock/tuf"
)

func cmdVerify(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := cli.NewFlagSet("airlock verify", `usage: airlock verify --root ROOT.json --repo DIR|URL [--target NAME [--file PATH]] [--json]

A full TUF client check, stricter than go-tuf and tuf-js: the root chain from
ROOT.json (each step signed by the old and the new root keys), timestamp,
snapshot, targets and the delegations leading to NAME (thresholds met by
distinct keys, approval groups, exact versions and hashes, expiry), then the
target's bytes, compared with PATH when given.

examples:
  airlock verify --root repo/metadata/1.root.json --repo repo --target sigstore/sigstore-2.0.0.tgz
  airlock verify --root 1.root.json --repo https://example.org/tuf --target sigstore/sigstore-2.0.0.tgz \
      --file sigstore-2.0.0.tgz --json
`, stderr)
	rootFile := fs.String("root", "", "trusted root metadata")
	repo := fs.String("repo", "", "repository folder or http(s) URL")
	target := fs.String("target", "", "target to verify")
	file := fs.String("file", "", "local file that must equal the target")
	asJSON := fs.Bool("json", false, "print the report as JSON")
	at := fs.String("time", "", "reference time for expiry (RFC 3339; default now)")
	if err := cli.Parse(fs, args); err != nil {
		return err
	}
	if *rootFile == "" || *repo == "" {
		return cli.Usagef("--root and --repo are required")
	}
	if *file != "" && *target == "" {
		return cli.Usagef("--file needs --target")
	}
	root, err := os.ReadFile(*rootFile)
	if err != nil {
		return err
	}
	c := &tuf.Client{RefTime: time.Now()}
	if *at != "" {
		if c.RefTime, err = time.Parse(time.RFC3339, *at); err != nil {
			return cli.Usagef("--time: %v", err)
		}
	}
	if strings.HasPrefix(*repo, "http://") || strings.HasPrefix(*repo, "https://") {
		u, err := url.Parse(*repo)
		if err != nil {
			return cli.Usagef("--repo: %v", err)
		}
		c.Fetch = tuf.HTTPFetcher{Base: u}
	} else {
		c.Fetch = tuf.DirFetcher(*repo)
	}
	rep, data, err := c.Verify(ctx, root, *target)
	if err != nil {
		return err
	}
	if *file != "" {
		local, err := os.ReadFile(*file)
		if err != nil {
			return err
		}
		if !bytes.Equal(local, data) {
			return fmt.Errorf("%s differs from the signed target %s", *file, *target)
		}
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(rep)
	}
	fmt.Fprintf(stdout, "root version %d: trusted\n", rep.RootVersion)
	for _, r := range rep.Roles {
		var who []string
		for _, s := range r.Signers {
			n := s.KeyID[:12]
			if s.Holder != "" {
				n = s.Holder + " " + n
			}
			who = append(who, n)
		}
		fmt.Fprintf(stdout, "%-10s version %-4d expires %s  signed by %s\n", r.Role, r.Version, r.Expires.UTC().Format("2006-01-02"), strings.Join(who, ", "))
	}
	if rep.Target != "" {
		fmt.Fprintf(stdout, "target %s: %d bytes, signed by role %s, bytes verified\n", rep.Target, rep.TargetInfo.Length, rep.TargetRole)
	}
	return nil
}
