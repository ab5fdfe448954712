package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/theupdateframework/go-tuf/v2/metadata"

	"airlock.dev/airlock/hsm"
	"airlock.dev/airlock/internal/cli"
	"airlock.dev/airlock/internal/online"
	"airlock.dev/airlock/tuf"
)

func cmdRoot(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := cli.NewFlagSet("airlock root", `usage: airlock root --repo DIR [--role root|targets|snapshot|timestamp] [--add-key URI|KEY.json]...
       [--remove-key KEYID|URI|KEY.json]... [--threshold N] [--expires 365d] [--note TEXT] --out BUNDLE

Builds the next root version and writes it as a bundle for a root ceremony
on the appliance: keys of --role are added and removed, its threshold set,
and the new root expires after --expires. The appliance has it signed by a
threshold of the current root keys and a threshold of the new ones;
airlock combine then writes it, even when every root key is new.

example:
  airlock root --repo repo --add-key file:r3.pem --remove-key file:r1.pem --threshold 2 --out rotate
`, stderr)
	repoDir := fs.String("repo", "", "repository folder")
	role := fs.String("role", metadata.ROOT, "top-level role whose keys or threshold change")
	var addKeys, removeKeys cli.List
	fs.Var(&addKeys, "add-key", "key URI or TUF public key file to add to --role (repeat)")
	fs.Var(&removeKeys, "remove-key", "key id, key URI or TUF public key file to remove from --role (repeat)")
	threshold := fs.Int("threshold", 0, "new threshold of --role (default: unchanged)")
	expires := fs.String("expires", "365d", "expiry of the new root version")
	note := fs.String("note", "", "note shown on the appliance as untrusted text")
	out := fs.String("out", "", "bundle folder to write")
	pinFile := pinFileFlag(fs)
	if err := cli.Parse(fs, args); err != nil {
		return err
	}
	if *repoDir == "" || *out == "" {
		return cli.Usagef("--repo and --out are required")
	}
	if *threshold < 0 {
		return cli.Usagef("--threshold %d: want 1 or more", *threshold)
	}
	kp, err := keyPrompter(*pinFile, stderr)
	if err != nil {
		return err
	}
	exp, err := durationFlag("expires", *expires)
	if err != nil {
		return err
	}
	repo, err := tuf.OpenRepository(*repoDir)
	if err != nil {
		return err
	}
	cur, err := repo.Root()
	if err != nil {
		return err
	}
	if cur.Signed.Roles[*role] == nil {
		return cli.Usagef("--role %q: want root, targets, snapshot or timestamp", *role)
	}
	o := online.RootOptions{Role: *role, Threshold: *threshold, Expires: exp, Note: *note, Now: time.Now()}
	for _, s := range removeKeys {
		id, err := roleKeyID(ctx, cur, *role, s, kp)
		if err != nil {
			return fmt.Errorf("--remove-key %s: %w", s, err)
		}
		o.Remove = append(o.Remove, id)
	}
	for _, s := range addKeys {
		k, err := loadPublicKey(ctx, s, kp)
		if err != nil {
			return fmt.Errorf("--add-key %s: %w", s, err)
		}
		o.Add = append(o.Add, k)
	}
	b, err := online.CreateRootBundle(repo, o)
	if err != nil {
		return err
	}
	if err := b.WriteDir(*out); err != nil {
		return err
	}
	p, err := b.Request.Payload()
	if err != nil {
		return err
	}
	r, rr := p.Root.Signed.Roles[*role], p.Root.Signed.Roles[metadata.ROOT]
	fmt.Fprintf(stderr, "airlock root: wrote bundle %s for root version %d (%s %d-of-%d, root %d-of-%d, expires %s); sign it on the appliance with a threshold of the current and of the new root keys\n",
		*out, p.Version, *role, r.Threshold, len(r.KeyIDs), rr.Threshold, len(rr.KeyIDs), p.Expires.UTC().Format(time.DateOnly))
	printRequestFingerprint(stderr, "airlock root", *out)
	return nil
}

// roleKeyID finds the key id under which role lists the key s names: a key
// id, or a key URI or public key file compared by public key.
func roleKeyID(ctx context.Context, root *metadata.Metadata[metadata.RootType], role, s string, p hsm.Prompter) (string, error) {
	if len(s) == 64 && strings.Trim(s, "0123456789abcdef") == "" {
		return s, nil
	}
	k, err := loadPublicKey(ctx, s, p)
	if err != nil {
		return "", err
	}
	if id := online.KeyIDByPublicKey(root, role, k); id != "" {
		return id, nil
	}
	return "", fmt.Errorf("not a key of %s", role)
}
