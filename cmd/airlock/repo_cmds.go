package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/theupdateframework/go-tuf/v2/metadata"

	"airlock.dev/airlock/hsm"
	"airlock.dev/airlock/internal/cli"
	"airlock.dev/airlock/internal/online"
	"airlock.dev/airlock/transfer/bundle"
	"airlock.dev/airlock/transfer/ur"
	"airlock.dev/airlock/tuf"
)

// pinFileFlag adds --pin-file to a command that may ask for a PIN.
func pinFileFlag(fs *flag.FlagSet) *string {
	return fs.String("pin-file", "", "automation only: file whose first line is the PIN of every key asked for (default $"+pinFileEnv+")")
}

func durationFlag(name, v string) (time.Duration, error) {
	d, err := cli.ParseDuration(v)
	if err != nil {
		return 0, cli.Usagef("--%s: %v", name, err)
	}
	return d, nil
}

func cmdInit(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := cli.NewFlagSet("airlock init", `usage: airlock init --repo DIR --root-key URI... --targets-key URI... --online-key URI

Creates a TUF repository: root and targets signed by their keys, snapshot
and timestamp by the online key. A software online key is remembered
relative to the repository folder.

examples:
  airlock key generate --dev --holder online --out online.pem
  airlock init --repo repo --root-key file:r1.pem --root-key file:r2.pem --root-threshold 2 \
      --targets-key file:t1.pem --online-key file:online.pem
  airlock init --repo repo --root-key 'yubikey:serial=12345678;slot=9c' --targets-key 'yubikey:serial=12345678;slot=9d' \
      --online-key tpm:handle=0x81000010
`, stderr)
	pinFile := pinFileFlag(fs)
	repo := fs.String("repo", "", "repository folder to create")
	var rootKeys, targetsKeys cli.List
	fs.Var(&rootKeys, "root-key", "root key URI (repeat)")
	fs.Var(&targetsKeys, "targets-key", "targets key URI (repeat)")
	onlineKey := fs.String("online-key", "", "snapshot and timestamp key URI (held by the registry gate)")
	rootT := fs.Int("root-threshold", 1, "root signatures required")
	targetsT := fs.Int("targets-threshold", 1, "targets signatures required")
	rootExp := fs.String("root-expires", "365d", "root expiry")
	targetsExp := fs.String("targets-expires", "90d", "targets expiry")
	snapExp := fs.String("snapshot-expires", "7d", "snapshot expiry")
	tsExp := fs.String("timestamp-expires", "1d", "timestamp expiry")
	if err := cli.Parse(fs, args); err != nil {
		return err
	}
	p, err := keyPrompter(*pinFile, stderr)
	if err != nil {
		return err
	}
	if *repo == "" || len(rootKeys) == 0 || len(targetsKeys) == 0 || *onlineKey == "" {
		return cli.Usagef("--repo, --root-key, --targets-key and --online-key are required")
	}
	o := tuf.InitOptions{RootThreshold: *rootT, TargetsThreshold: *targetsT}
	for _, p := range []struct {
		name, v string
		d       *time.Duration
	}{{"root-expires", *rootExp, &o.RootExpires}, {"targets-expires", *targetsExp, &o.TargetsExpires}, {"snapshot-expires", *snapExp, &o.SnapshotExpires}, {"timestamp-expires", *tsExp, &o.TimestampExpires}} {
		if *p.d, err = durationFlag(p.name, p.v); err != nil {
			return err
		}
	}
	if o.Root, err = cli.OpenKeys(ctx, rootKeys, p); err != nil {
		return err
	}
	if o.Targets, err = cli.OpenKeys(ctx, targetsKeys, p); err != nil {
		return err
	}
	ks, err := cli.OpenKeys(ctx, []string{*onlineKey}, p)
	if err != nil {
		return err
	}
	o.Online = ks[0]
	if _, err := tuf.Init(*repo, o); err != nil {
		return err
	}
	fmt.Fprintf(stderr, "airlock init: created %s: root 1 (%d-of-%d), targets 1 (%d-of-%d)\n", *repo, *rootT, len(rootKeys), *targetsT, len(targetsKeys))
	return nil
}

// loadPublicKey reads a key given as a URI (the key or card must be present)
// or as a file holding a TUF public key in JSON (as airlock key public and
// airlock key enroll print).
func loadPublicKey(ctx context.Context, s string, p hsm.Prompter) (*metadata.Key, error) {
	if strings.HasSuffix(s, ".json") {
		return readKeyFile(s)
	}
	ks, err := cli.OpenKeys(ctx, []string{s}, p)
	if err != nil {
		return nil, err
	}
	return tuf.KeyFromSigner(ks[0])
}

func cmdDelegate(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := cli.NewFlagSet("airlock delegate", `usage: airlock delegate --repo DIR --role NAME --key URI|KEY.json... --threshold N --paths PATTERN...
       [--group NAME:MIN:KEY,KEY...] [--terminating] (--sign-key URI... | --out BUNDLE)
       airlock delegate --repo DIR --role PREFIX --key URI|KEY.json... --threshold N --succinct-bits B ...
       airlock delegate --repo DIR --role NAME --remove (--sign-key URI... | --out BUNDLE)

The change is a new version of the delegating role (targets). With --sign-key
it is signed at once (development); with --out it becomes a bundle for a
delegation ceremony on the appliance. Group keys are key ids, or #N for the
N-th --key (from 1).

examples:
  airlock delegate --repo repo --sign-key file:t1.pem --role sigstore --key file:alice.pem \
      --key file:bob.pem --threshold 2 --paths 'sigstore/*'
  airlock delegate --repo repo --role sigstore --key alice.json --key bob.json --key carol.json \
      --threshold 2 --paths 'sigstore/*' --group 'maintainers:1:#1,#2' --out bundle
`, stderr)
	pinFile := pinFileFlag(fs)
	repoDir := fs.String("repo", "", "repository folder")
	role := fs.String("role", "", "delegated role name")
	delegator := fs.String("delegator", metadata.TARGETS, "delegating role")
	var keys, paths, groups, signKeys cli.List
	fs.Var(&keys, "key", "key URI or TUF public key file of the role (repeat)")
	fs.Var(&paths, "paths", "target path pattern the role may sign (repeat)")
	fs.Var(&groups, "group", "approval group NAME:MIN:KEY,KEY (repeat)")
	fs.Var(&signKeys, "sign-key", "key of the delegating role to sign the change with (repeat)")
	threshold := fs.Int("threshold", 0, "signatures required")
	terminating := fs.Bool("terminating", false, "stop the target search at this role")
	remove := fs.Bool("remove", false, "remove the role")
	bins := fs.Int("succinct-bits", 0, "delegate every target to 2^N hashed bins named ROLE-XX instead of by --paths")
	out := fs.String("out", "", "write a bundle for the appliance instead of signing")
	expires := fs.String("expires", "90d", "expiry of the new delegating version")
	if err := cli.Parse(fs, args); err != nil {
		return err
	}
	p, err := keyPrompter(*pinFile, stderr)
	if err != nil {
		return err
	}
	if *repoDir == "" || *role == "" {
		return cli.Usagef("--repo and --role are required")
	}
	if (len(signKeys) == 0) == (*out == "") {
		return cli.Usagef("give either --sign-key (sign now) or --out (bundle for the appliance)")
	}
	exp, err := durationFlag("expires", *expires)
	if err != nil {
		return err
	}
	repo, err := tuf.OpenRepository(*repoDir)
	if err != nil {
		return err
	}
	now := time.Now()
	next, err := repo.NextTargets(*delegator, now.Add(exp))
	if err != nil {
		return err
	}
	if *remove {
		if err := tuf.RemoveDelegation(next, *role); err != nil {
			return err
		}
	} else {
		if len(keys) == 0 || *threshold < 1 || (len(paths) == 0) == (*bins == 0) {
			return cli.Usagef("--key, --threshold and either --paths or --succinct-bits are required to add or change a role")
		}
		spec := tuf.DelegationSpec{Name: *role, Threshold: *threshold, Paths: paths, Terminating: *terminating}
		var ids []string
		for _, k := range keys {
			pk, err := loadPublicKey(ctx, k, p)
			if err != nil {
				return err
			}
			id, err := tuf.KeyID(pk)
			if err != nil {
				return err
			}
			spec.Keys = append(spec.Keys, pk)
			ids = append(ids, id)
		}
		for _, g := range groups {
			grp, err := parseGroup(g, ids)
			if err != nil {
				return err
			}
			spec.Groups = append(spec.Groups, grp)
		}
		if *bins > 0 {
			if len(groups) > 0 || *terminating {
				return cli.Usagef("--group and --terminating do not apply to hashed bins")
			}
			if err := tuf.SetSuccinctBins(next, spec.Keys, *threshold, *bins, *role); err != nil {
				return err
			}
		} else if err := tuf.SetDelegation(next, spec); err != nil {
			return err
		}
	}
	if *out != "" {
		raw, err := next.ToBytes(false)
		if err != nil {
			return err
		}
		req, err := repo.BuildRequest(tuf.KindDelegation, *delegator, raw, now)
		if err != nil {
			return err
		}
		b := &online.Bundle{Request: req, Files: map[string]string{}}
		if err := b.WriteDir(*out); err != nil {
			return err
		}
		fmt.Fprintf(stderr, "airlock delegate: wrote bundle %s for %s version %d\n", *out, *delegator, next.Signed.Version)
		printRequestFingerprint(stderr, "airlock delegate", *out)
		return nil
	}
	signers, err := cli.OpenKeys(ctx, signKeys, p)
	if err != nil {
		return err
	}
	d, err := repo.Delegation(*delegator)
	if err != nil {
		return err
	}
	if err := tuf.SignAll(next, d, signers); err != nil {
		return err
	}
	ks, err := cli.OpenKeys(ctx, []string{repo.OnlineKeyURI()}, p)
	if err != nil {
		return err
	}
	if err := repo.CommitTargets(*delegator, next, ks[0], now); err != nil {
		return err
	}
	fmt.Fprintf(stderr, "airlock delegate: %s version %d written\n", *delegator, next.Signed.Version)
	return nil
}

// Caps on a --group spec.
const (
	maxGroupName = 64
	maxGroupKeys = 100
)

// parseGroup parses an approval group NAME:MIN:KEY,KEY where a KEY is a key
// id or #N, the N-th --key (ids holds their key ids).
func parseGroup(s string, ids []string) (tuf.Group, error) {
	parts := strings.SplitN(s, ":", 3)
	if len(parts) != 3 {
		return tuf.Group{}, cli.Usagef("--group %q: want NAME:MIN:KEY,KEY", s)
	}
	if parts[0] == "" || len(parts[0]) > maxGroupName || strings.ContainsFunc(parts[0], func(r rune) bool { return r < 0x21 || r > 0x7e }) {
		return tuf.Group{}, cli.Usagef("--group %q: the name must be 1 to %d printable characters without spaces", s, maxGroupName)
	}
	keys := strings.Split(parts[2], ",")
	if len(keys) > maxGroupKeys {
		return tuf.Group{}, cli.Usagef("--group %q: more than %d keys", s, maxGroupKeys)
	}
	min, err := strconv.Atoi(parts[1])
	if err != nil || min < 1 || min > len(keys) {
		return tuf.Group{}, cli.Usagef("--group %q: MIN must be a number from 1 to the %d keys listed", s, len(keys))
	}
	g := tuf.Group{Name: parts[0], Min: min}
	for _, k := range keys {
		if n, ok := strings.CutPrefix(k, "#"); ok {
			i, err := strconv.Atoi(n)
			if err != nil || i < 1 || i > len(ids) {
				return tuf.Group{}, cli.Usagef("--group %q: %s is not a --key index from 1 to %d", s, k, len(ids))
			}
			k = ids[i-1]
		}
		if k == "" || slices.Contains(g.KeyIDs, k) {
			return tuf.Group{}, cli.Usagef("--group %q: an empty or repeated key", s)
		}
		g.KeyIDs = append(g.KeyIDs, k)
	}
	return g, nil
}

func cmdBundle(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) > 0 && (args[0] == "-h" || args[0] == "-help" || args[0] == "--help" || args[0] == "help") {
		args = []string{"create", "-h"}
	}
	if len(args) == 0 || args[0] != "create" {
		return cli.Usagef("airlock bundle has one subcommand: airlock bundle create --repo DIR --role NAME --add FILE[=TARGET]... --out BUNDLE")
	}
	args = args[1:]
	fs := cli.NewFlagSet("airlock bundle create", `usage: airlock bundle create --repo DIR --role NAME --add FILE[=TARGET]... [--remove TARGET]...
       [--provenance FILE[=TARGET]]... [--previous FILE[=TARGET]]... [--expires 90d] [--note TEXT] --out BUNDLE

Builds a release bundle for the appliance: the request (the new metadata to
sign and the chain it rests on), the artifacts, their provenance and the
previous release for the content review. Relative paths are relative to
the working directory.

examples:
  airlock bundle create --repo repo --role sigstore --add sigstore-2.0.0.tgz=sigstore/sigstore-2.0.0.tgz \
      --provenance sigstore-2.0.0.sigstore.json --previous sigstore-1.3.0.tgz --out bundle
  airlock bundle create --repo repo --role sigstore --remove sigstore/sigstore-1.3.0.tgz --out bundle
`, stderr)
	repoDir := fs.String("repo", "", "repository folder")
	role := fs.String("role", "", "role to release")
	var add, remove, prov, prev cli.List
	fs.Var(&add, "add", "artifact FILE[=TARGET] to add or replace (repeat)")
	fs.Var(&remove, "remove", "target to remove (repeat)")
	fs.Var(&prov, "provenance", "Sigstore bundle FILE[=TARGET] (repeat)")
	fs.Var(&prev, "previous", "previous release FILE[=TARGET] for content diffs (repeat)")
	expires := fs.String("expires", "90d", "expiry of the new version")
	note := fs.String("note", "", "note for the key holders (shown as untrusted text)")
	out := fs.String("out", "", "bundle folder to write")
	if err := cli.Parse(fs, args); err != nil {
		return err
	}
	if *repoDir == "" || *role == "" || *out == "" {
		return cli.Usagef("--repo, --role and --out are required")
	}
	exp, err := durationFlag("expires", *expires)
	if err != nil {
		return err
	}
	repo, err := tuf.OpenRepository(*repoDir)
	if err != nil {
		return err
	}
	o := online.BundleOptions{Role: *role, Remove: remove, Expires: exp, Note: *note}
	for _, a := range add {
		o.Add = append(o.Add, online.ParseFileArg(a))
	}
	for _, a := range prov {
		o.Provenance = append(o.Provenance, online.ParseFileArg(a))
	}
	for _, a := range prev {
		o.Previous = append(o.Previous, online.ParseFileArg(a))
	}
	b, err := online.CreateBundle(repo, o)
	if err != nil {
		return err
	}
	if err := b.WriteDir(*out); err != nil {
		return err
	}
	p, _ := b.Request.Payload()
	fmt.Fprintf(stderr, "airlock bundle create: %s version %d, sha256 %s, %d files -> %s\n", *role, p.Version, p.SHA256, len(b.Files), *out)
	printRequestFingerprint(stderr, "airlock bundle create", *out)
	return nil
}

func cmdSign(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := cli.NewFlagSet("airlock sign", `usage: airlock sign --key URI... BUNDLE --out RESPONSE

Development signing of a request; the appliance is the production path.

example:
  airlock sign --key file:alice.pem bundle --out alice.json
`, stderr)
	pinFile := pinFileFlag(fs)
	var keys cli.List
	fs.Var(&keys, "key", "key URI (repeat)")
	out := fs.String("out", "", "response file to write")
	args = moveFlagsFirst(args)
	if err := cli.Parse(fs, args); err != nil {
		return err
	}
	p, err := keyPrompter(*pinFile, stderr)
	if err != nil {
		return err
	}
	if len(keys) == 0 || *out == "" || fs.NArg() != 1 {
		return cli.Usagef("want --key URI, --out RESPONSE and one BUNDLE")
	}
	for _, k := range keys {
		if _, err := hsm.ParseURI(k); err != nil {
			return cli.Usagef("--key: %v", err)
		}
	}
	req, err := online.ReadRequest(fs.Arg(0))
	if err != nil {
		return err
	}
	signers, err := cli.OpenKeys(ctx, keys, p)
	if err != nil {
		return err
	}
	resp, err := online.Sign(req, signers, time.Now())
	if err != nil {
		return err
	}
	raw, err := resp.Marshal()
	if err != nil {
		return err
	}
	f, err := os.OpenFile(*out, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return err
	}
	if _, err := f.Write(append(raw, '\n')); err != nil {
		f.Close()
		return err
	}
	fmt.Fprintf(stderr, "airlock sign: %s version %d sha256 %s signed by %d key(s) -> %s\n", resp.Role, resp.Version, resp.SignedSHA256, len(resp.Signatures), *out)
	return f.Close()
}

// moveFlagsFirst lets positional arguments come before flags, as the
// documented forms do ("airlock sign --key K BUNDLE --out R").
func moveFlagsFirst(args []string) []string {
	var flags, pos []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		if strings.HasPrefix(a, "-") && len(a) > 1 {
			flags = append(flags, a)
			if !strings.Contains(a, "=") && i+1 < len(args) && !isBoolFlag(a) {
				flags = append(flags, args[i+1])
				i++
			}
			continue
		}
		pos = append(pos, a)
	}
	return append(flags, pos...)
}

func isBoolFlag(a string) bool {
	switch strings.TrimLeft(a, "-") {
	case "json", "dev", "terminating", "remove", "h", "help":
		return true
	}
	return false
}

func cmdCombine(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := cli.NewFlagSet("airlock combine", `usage: airlock combine --repo DIR [--dev] BUNDLE RESPONSE...

Merge signature responses into the repository. Responses made with
development keys, or without a ceremony record hash, are refused unless
--dev. Each response's ceremony record (record.json beside response.json,
or NAME.record.json beside NAME.json) must verify and belong to it, as
airlock record verify checks; a missing record is refused unless --dev.

example:
  airlock combine --repo repo bundle alice.json bob.json
`, stderr)
	pinFile := pinFileFlag(fs)
	repoDir := fs.String("repo", "", "repository folder")
	dev := fs.Bool("dev", false, "accept responses made with development (software) keys")
	withoutRecord := fs.Bool("without-record", false, "accept a response with no ceremony record beside it (a response that came back by QR alone), with a warning")
	asJSON := fs.Bool("json", false, "print the result as JSON")
	if err := cli.Parse(fs, moveFlagsFirst(args)); err != nil {
		return err
	}
	p, err := keyPrompter(*pinFile, stderr)
	if err != nil {
		return err
	}
	if *repoDir == "" || fs.NArg() < 2 {
		return cli.Usagef("want --repo DIR, a BUNDLE and at least one RESPONSE")
	}
	repo, err := tuf.OpenRepository(*repoDir)
	if err != nil {
		return err
	}
	var resps []*tuf.Response
	for _, f := range fs.Args()[1:] {
		r, err := online.ReadResponse(f)
		if err != nil {
			return err
		}
		resps = append(resps, r)
	}
	req, err := online.ReadRequest(fs.Arg(0))
	if err != nil {
		return err
	}
	if err := req.CheckUniqueKeys(); err != nil {
		return err
	}
	if err := online.CheckRepositoryUniqueKeys(repo, req.Role); err != nil {
		return err
	}
	d, err := combineSigners(repo, req)
	if err != nil {
		return err
	}
	if err := online.CheckResponsesProduction(d, resps, *dev); err != nil {
		return err
	}
	if err := checkRecords(fs.Args()[1:], resps, *dev || *withoutRecord, stderr); err != nil {
		return err
	}
	ks, err := cli.OpenKeys(ctx, []string{repo.OnlineKeyURI()}, p)
	if err != nil {
		return err
	}
	res, err := online.Combine(repo, fs.Arg(0), resps, ks[0], time.Now())
	if err != nil {
		return err
	}
	if *asJSON {
		return json.NewEncoder(stdout).Encode(res)
	}
	var who []string
	for _, s := range res.Signers {
		who = append(who, s.Holder+" "+s.KeyID[:12])
	}
	fmt.Fprintf(stdout, "%s version %d: %d signatures (%s); snapshot and timestamp refreshed\n", res.Role, res.Version, len(res.Signers), strings.Join(who, ", "))
	return nil
}

// combineSigners is who may sign the request's role: for a root rotation,
// the keys of the current and of the new root.
func combineSigners(repo *tuf.Repository, req *tuf.Request) (*tuf.Delegation, error) {
	if req.Role != metadata.ROOT {
		return repo.Delegation(req.Role)
	}
	p, err := req.Payload()
	if err != nil {
		return nil, err
	}
	cur, err := repo.Root()
	if err != nil {
		return nil, err
	}
	d, _, _, err := tuf.RootRotationSigners(cur, p.Root)
	return d, err
}

// printRequestFingerprint prints the fingerprint of the request.json just
// written into the bundle folder dir: the appliance shows the same four
// words after the import and the operator compares them, so a stick or QR
// stream swapped on the way is caught before the review.
func printRequestFingerprint(w io.Writer, cmd, dir string) {
	b, err := readCapped(filepath.Join(dir, bundle.RequestFile), tuf.MaxRequestBytes)
	if err != nil {
		fmt.Fprintf(w, "%s: cannot read back the request for its fingerprint: %v\n", cmd, err)
		return
	}
	fmt.Fprintf(w, "%s: request fingerprint: %s (the appliance shows it after the import: compare)\n", cmd, ur.Fingerprint(b))
}
