// Package demo runs a whole release on embedded defaults: a real npm
// release pair (sigstore 1.3.0 and 2.0.0) with its real Sigstore
// provenance, development keys for every role, two holders signing, and two
// independent checks of the result. It is what a newcomer runs first.
package demo

import (
	"bytes"
	"context"
	"embed"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"airlock.dev/airlock/hsm"
	"airlock.dev/airlock/internal/gotuf"
	"airlock.dev/airlock/internal/online"
	"airlock.dev/airlock/tuf"
)

// Data holds the embedded release pair, its provenance and the Sigstore
// trusted root (files under data/), shared with the appliance demo.
//
//go:embed data
var Data embed.FS

// Run performs the demo in dir (which must be empty or absent), printing
// each step to out.
func Run(ctx context.Context, dir string, out io.Writer) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	step := func(format string, args ...any) { fmt.Fprintf(out, "==> "+format+"\n", args...) }
	now := time.Now()
	keysDir := filepath.Join(dir, "keys")
	if err := os.Mkdir(keysDir, 0o700); err != nil {
		return fmt.Errorf("demo folder %s is not empty: %w", dir, err)
	}
	step("development keys (software, refused by the appliance outside --dev)")
	keys := map[string]hsm.Signer{}
	for _, who := range []string{"root-ada", "root-grace", "root-linus", "targets-ken", "online", "alice", "bob", "carol"} {
		s, err := hsm.GenerateFileKey(filepath.Join(keysDir, who+".pem"), hsm.ECDSAP256, who, nil)
		if err != nil {
			return err
		}
		keys[who] = s
	}
	repoDir := filepath.Join(dir, "repo")
	step("airlock init: root 2-of-3, targets 1-of-1, online snapshot/timestamp key")
	repo, err := tuf.Init(repoDir, tuf.InitOptions{
		Root:          []hsm.Signer{keys["root-ada"], keys["root-grace"], keys["root-linus"]},
		RootThreshold: 2, Targets: []hsm.Signer{keys["targets-ken"]}, TargetsThreshold: 1,
		Online: keys["online"], Now: now,
	})
	if err != nil {
		return err
	}
	step("airlock delegate: role \"sigstore\" for sigstore/*, 2-of-3 (alice, bob, carol), group maintainers needs alice or bob")
	next, err := repo.NextTargets("targets", now.Add(90*24*time.Hour))
	if err != nil {
		return err
	}
	spec := tuf.DelegationSpec{Name: "sigstore", Threshold: 2, Paths: []string{"sigstore/*"}, Terminating: true}
	var ids []string
	for _, who := range []string{"alice", "bob", "carol"} {
		k, err := tuf.KeyFromSigner(keys[who])
		if err != nil {
			return err
		}
		id, _ := tuf.KeyID(k)
		ids = append(ids, id)
		spec.Keys = append(spec.Keys, k)
	}
	spec.Groups = []tuf.Group{{Name: "maintainers", KeyIDs: ids[:2], Min: 1}}
	if err := tuf.SetDelegation(next, spec); err != nil {
		return err
	}
	d, err := repo.Delegation("targets")
	if err != nil {
		return err
	}
	if err := tuf.SignAll(next, d, []hsm.Signer{keys["targets-ken"]}); err != nil {
		return err
	}
	if err := repo.CommitTargets("targets", next, keys["online"], now); err != nil {
		return err
	}

	files := filepath.Join(dir, "ci")
	if err := os.Mkdir(files, 0o755); err != nil {
		return err
	}
	for _, name := range []string{"sigstore-1.3.0.tgz", "sigstore-2.0.0.tgz", "sigstore@1.3.0.provenance.sigstore.json", "sigstore@2.0.0.provenance.sigstore.json"} {
		b, err := Data.ReadFile("data/" + name)
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(files, name), b, 0o644); err != nil {
			return err
		}
	}
	attempt := 0
	release := func(version, previous string, signers ...string) (*online.CombineResult, string, error) {
		tgz := filepath.Join(files, "sigstore-"+version+".tgz")
		o := online.BundleOptions{
			Role: "sigstore", Now: now, Note: "release " + version + " from CI",
			Add:        []online.FileArg{{File: tgz, Target: "sigstore/sigstore-" + version + ".tgz"}},
			Provenance: []online.FileArg{{File: filepath.Join(files, "sigstore@"+version+".provenance.sigstore.json")}},
		}
		if previous != "" {
			o.Previous = []online.FileArg{{File: filepath.Join(files, "sigstore-"+previous+".tgz")}}
		}
		b, err := online.CreateBundle(repo, o)
		if err != nil {
			return nil, "", err
		}
		attempt++
		bdir := filepath.Join(dir, fmt.Sprintf("bundle-%d-%s", attempt, version))
		if err := b.WriteDir(bdir); err != nil {
			return nil, "", err
		}
		p, _ := b.Request.Payload()
		step("airlock bundle create: sigstore version %d with sigstore-%s.tgz; bytes to sign have sha256 %s", p.Version, version, p.SHA256)
		var resps []*tuf.Response
		for _, who := range signers {
			r, err := online.Sign(b.Request, []hsm.Signer{keys[who]}, now)
			if err != nil {
				return nil, "", err
			}
			step("airlock sign: %s signs", who)
			resps = append(resps, r)
		}
		res, err := online.Combine(repo, bdir, resps, keys["online"], now)
		return res, bdir, err
	}
	if _, _, err := release("1.3.0", "", "alice", "carol"); err != nil {
		return err
	}
	step("airlock combine: one holder alone is refused")
	_, _, err = release("2.0.0", "1.3.0", "bob")
	var te *tuf.ThresholdError
	if !errors.As(err, &te) {
		return fmt.Errorf("a release signed by one holder was not refused as it must be: %v", err)
	}
	fmt.Fprintf(out, "    refused: %v\n", err)
	res, _, err := release("2.0.0", "1.3.0", "alice", "bob")
	if err != nil {
		return err
	}
	step("airlock combine: sigstore version %d written with %d distinct signatures; snapshot and timestamp refreshed", res.Version, len(res.Signers))

	root, err := os.ReadFile(filepath.Join(repoDir, "metadata", "1.root.json"))
	if err != nil {
		return err
	}
	target := "sigstore/sigstore-2.0.0.tgz"
	want, _ := Data.ReadFile("data/sigstore-2.0.0.tgz")
	c := &tuf.Client{Fetch: tuf.DirFetcher(repoDir), RefTime: now}
	rep, got, err := c.Verify(ctx, root, target)
	if err != nil {
		return err
	}
	if !bytes.Equal(got, want) {
		return errors.New("airlock verify returned other bytes than the release")
	}
	step("airlock verify: root v%d, %d roles verified, %s signed by role %s, %d bytes match", rep.RootVersion, len(rep.Roles), target, rep.TargetRole, len(got))

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: http.FileServer(http.Dir(repoDir)), ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln)
	defer srv.Close()
	base := "http://" + ln.Addr().String()
	got, err = gotuf.Fetch(base, root, target)
	if err != nil {
		return fmt.Errorf("independent client: %w", err)
	}
	if !bytes.Equal(got, want) {
		return errors.New("go-tuf returned other bytes than the release")
	}
	step("go-tuf's updater (an independent TUF client) fetched %s from %s: %d bytes, identical", target, base, len(got))
	fmt.Fprintf(out, "\ndemo finished; everything is in %s\n", dir)
	return nil
}
