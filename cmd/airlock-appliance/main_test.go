package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"airlock.dev/airlock/appliance"
	"airlock.dev/airlock/hsm"
	"airlock.dev/airlock/internal/online"
	"airlock.dev/airlock/transfer/usb"
	"airlock.dev/airlock/tuf"
)

// TestReviewAndSignFixtureRelease builds a bundle of the real sigstore
// 2.0.0 release, reviews it as json (verified provenance facts), and signs
// it non-interactively.
func TestReviewAndSignFixtureRelease(t *testing.T) {
	dir := t.TempDir()
	now := time.Now()
	keys := map[string]hsm.Signer{}
	for _, who := range []string{"root", "targets", "online", "alice", "bob"} {
		k, err := hsm.GenerateFileKey(filepath.Join(dir, who+".pem"), hsm.ECDSAP256, who, nil)
		if err != nil {
			t.Fatal(err)
		}
		keys[who] = k
	}
	repo, err := tuf.Init(filepath.Join(dir, "repo"), tuf.InitOptions{Root: []hsm.Signer{keys["root"]}, RootThreshold: 1,
		Targets: []hsm.Signer{keys["targets"]}, TargetsThreshold: 1, Online: keys["online"], Now: now})
	if err != nil {
		t.Fatal(err)
	}
	next, _ := repo.NextTargets("targets", now.Add(90*24*time.Hour))
	spec := tuf.DelegationSpec{Name: "sigstore", Threshold: 2, Paths: []string{"sigstore/*"}}
	for _, who := range []string{"alice", "bob"} {
		k, _ := tuf.KeyFromSigner(keys[who])
		spec.Keys = append(spec.Keys, k)
	}
	if err := tuf.SetDelegation(next, spec); err != nil {
		t.Fatal(err)
	}
	d, _ := repo.Delegation("targets")
	payload, _ := tuf.Canonical(next)
	sig, err := tuf.SignPayload(d, keys["targets"], payload)
	if err != nil {
		t.Fatal(err)
	}
	next.Signatures = append(next.Signatures, sig)
	if err := repo.CommitTargets("targets", next, keys["online"], now); err != nil {
		t.Fatal(err)
	}
	b, err := online.CreateBundle(repo, online.BundleOptions{Role: "sigstore", Now: now,
		Add:        []online.FileArg{{File: "testdata/sigstore-2.0.0.tgz", Target: "sigstore/sigstore-2.0.0.tgz"}},
		Provenance: []online.FileArg{{File: "testdata/sigstore@2.0.0.provenance.sigstore.json"}},
		Previous:   []online.FileArg{{File: "testdata/sigstore-1.3.0.tgz"}}})
	if err != nil {
		t.Fatal(err)
	}
	bdir := filepath.Join(dir, "bundle")
	if err := b.WriteDir(bdir); err != nil {
		t.Fatal(err)
	}
	pol := appliance.Policy{Format: appliance.PolicyFormat, Roles: map[string]appliance.RolePolicy{"sigstore": {
		Provenance: &appliance.ProvenancePolicy{Package: "sigstore", Require: true, Publishers: []appliance.Publisher{{
			Issuer: "https://token.actions.githubusercontent.com", Repository: "https://github.com/sigstore/sigstore-js",
			WorkflowPath: ".github/workflows/release.yml", Refs: []string{"refs/heads/main"}}}}}}}
	pb, _ := json.Marshal(pol)
	os.WriteFile(filepath.Join(dir, "policy.json"), pb, 0o644)
	state := filepath.Join(dir, "state")
	var out, errb bytes.Buffer
	ctx := context.Background()
	if code := run(ctx, []string{"init-state", "--state", state, "--root", filepath.Join(dir, "repo", "metadata", "1.root.json"),
		"--policy", filepath.Join(dir, "policy.json"), "--trusted-root", "testdata/trusted_root.json"}, &out, &errb); code != 0 {
		t.Fatalf("init-state: %d %s", code, errb.String())
	}
	date := now.Format("2006-01-02")
	out.Reset()
	if code := run(ctx, []string{"review", "--state", state, bdir, "--json", "--date", date}, &out, &errb); code != 0 {
		t.Fatalf("review: %d %s", code, errb.String())
	}
	var r appliance.Review
	if err := json.Unmarshal(out.Bytes(), &r); err != nil {
		t.Fatal(err)
	}
	if len(r.Artifacts) != 1 || r.Artifacts[0].Provenance == nil || !r.Artifacts[0].Provenance.Verified ||
		r.Artifacts[0].Provenance.Repository != "https://github.com/sigstore/sigstore-js" ||
		r.Artifacts[0].Provenance.Commit != "f0b49a04e5a62250e0f60fb128004a73110fe311" {
		t.Fatalf("review json lacks verified provenance: %s", out.String())
	}
	// A wrong fingerprint is refused; software keys need --dev.
	keyArgs := []string{"--key", "file:" + filepath.Join(dir, "alice.pem"), "--key", "file:" + filepath.Join(dir, "bob.pem")}
	errb.Reset()
	if code := run(ctx, append([]string{"sign", "--state", state, bdir, "--out", filepath.Join(dir, "resp0"), "--date", date,
		"--confirm-fingerprint", r.SHA256}, keyArgs...), &out, &errb); code != 2 || !strings.Contains(errb.String(), "--dev") {
		t.Fatalf("software keys without --dev: %d %s", code, errb.String())
	}
	errb.Reset()
	if code := run(ctx, append([]string{"sign", "--dev", "--state", state, bdir, "--out", filepath.Join(dir, "resp1"), "--date", date,
		"--confirm-fingerprint", strings.Repeat("0", 64)}, keyArgs...), &out, &errb); code != 1 || !strings.Contains(errb.String(), "confirm") {
		t.Fatalf("wrong fingerprint: %d %s", code, errb.String())
	}
	errb.Reset()
	if code := run(ctx, append([]string{"sign", "--dev", "--state", state, bdir, "--out", filepath.Join(dir, "resp2"), "--date", date,
		"--confirm-fingerprint", r.SHA256}, keyArgs...), &out, &errb); code != 0 {
		t.Fatalf("sign: %d %s", code, errb.String())
	}
	rb, err := os.ReadFile(filepath.Join(dir, "resp2", "response.json"))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := tuf.ParseResponse(rb)
	if err != nil || len(resp.Signatures) != 2 || !resp.Dev || resp.SignedSHA256 != r.SHA256 {
		t.Fatalf("response %+v %v", resp, err)
	}
	// --out and --export-usb are exclusive; --export-usb writes the
	// response to a FAT32 stick image, re-signing the same bytes (the
	// ledger allows it). --usb names an input and is refused with a hint.
	errb.Reset()
	if code := run(ctx, append([]string{"sign", "--dev", "--state", state, bdir, "--out", filepath.Join(dir, "resp3"), "--export-usb", "x", "--date", date,
		"--confirm-fingerprint", r.SHA256}, keyArgs...), &out, &errb); code != 2 {
		t.Fatalf("--out with --export-usb: %d %s", code, errb.String())
	}
	errb.Reset()
	if code := run(ctx, append([]string{"sign", "--dev", "--state", state, bdir, "--usb", "x", "--date", date,
		"--confirm-fingerprint", r.SHA256}, keyArgs...), &out, &errb); code != 2 || !strings.Contains(errb.String(), "--export-usb DEVICE") {
		t.Fatalf("sign --usb: %d %s", code, errb.String())
	}
	if _, err := exec.LookPath("mkfs.vfat"); err != nil {
		t.Skip("mkfs.vfat (dosfstools) is not installed")
	}
	img := filepath.Join(dir, "stick.img")
	os.WriteFile(img, nil, 0o644)
	os.Truncate(img, 64<<20)
	if o, err := exec.Command("mkfs.vfat", "-F", "32", img).CombinedOutput(); err != nil {
		t.Fatalf("mkfs.vfat: %v %s", err, o)
	}
	errb.Reset()
	out.Reset()
	if code := run(ctx, append([]string{"sign", "--dev", "--state", state, bdir, "--export-usb", img, "--date", date,
		"--confirm-fingerprint", r.SHA256}, keyArgs...), &out, &errb); code != 0 || !strings.Contains(out.String(), img+":/sigstore-v") {
		t.Fatalf("sign --export-usb: %d %s %s", code, out.String(), errb.String())
	}
	v, err := usb.Open(img)
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	ents, err := fs.ReadDir(v.FS, ".")
	if err != nil || len(ents) != 1 {
		t.Fatalf("stick holds %v %v", ents, err)
	}
	rb, err = fs.ReadFile(v.FS, ents[0].Name()+"/response.json")
	if err != nil {
		t.Fatal(err)
	}
	if resp, err := tuf.ParseResponse(rb); err != nil || resp.SignedSHA256 != r.SHA256 {
		t.Fatalf("response on the stick %+v %v", resp, err)
	}
}
