// Package appdemo builds the appliance's embedded demo: a real npm release
// pair (sigstore 1.3.0 -> 2.0.0) with its real Sigstore provenance, a TUF
// repository delegating role "sigstore" 2-of-2 to two demo holders whose
// software keys are labelled DEMO, an appliance state directory with a
// demo policy, and the bundle to sign. Everything lives in one folder; the
// keys are development keys and the appliance runs in development mode.
package appdemo

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"airlock.dev/airlock/appliance"
	"airlock.dev/airlock/appliance/provenance"
	"airlock.dev/airlock/hsm"
	"airlock.dev/airlock/internal/demo"
	"airlock.dev/airlock/internal/online"
	"airlock.dev/airlock/tuf"
)

// Holders are the demo's two key holders.
var Holders = []string{"alice (DEMO)", "bob (DEMO)"}

// Role is the delegated role the demo releases.
const Role = "sigstore"

// Demo is a prepared demo.
type Demo struct {
	Dir        string   // everything below lives here
	RepoDir    string   // the online TUF repository
	StateDir   string   // the appliance state (pinned root, policy, ledger, audit)
	Bundle     string   // the release bundle folder to sign
	Keys       []string // key URIs of the demo holders (file: development keys)
	KeyHolders []string
	Out        string // where the signature response is exported
	Root       []byte // the repository's 1.root.json
	Now        time.Time
}

// Prepare builds the demo in dir, which must be empty or absent.
func Prepare(dir string, now time.Time) (*Demo, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	d := &Demo{Dir: dir, RepoDir: filepath.Join(dir, "repo"), StateDir: filepath.Join(dir, "state"),
		Out: filepath.Join(dir, "signatures"), Now: now}
	keysDir := filepath.Join(dir, "keys")
	if err := os.Mkdir(keysDir, 0o700); err != nil {
		return nil, fmt.Errorf("demo folder %s is not empty: %w", dir, err)
	}
	keys := map[string]hsm.Signer{}
	holderOf := map[string]string{"alice": Holders[0], "bob": Holders[1]}
	for _, who := range []string{"root-demo", "targets-demo", "online-demo", "alice", "bob"} {
		holder := holderOf[who]
		if holder == "" {
			holder = who
		}
		p := filepath.Join(keysDir, who+"-DEMO.pem")
		s, err := hsm.GenerateFileKey(p, hsm.ECDSAP256, holder, nil)
		if err != nil {
			return nil, fmt.Errorf("demo key %s: %w", who, err)
		}
		keys[who] = s
		if holderOf[who] != "" {
			d.Keys = append(d.Keys, "file:"+p)
			d.KeyHolders = append(d.KeyHolders, holder)
		}
	}
	repo, err := tuf.Init(d.RepoDir, tuf.InitOptions{
		Root: []hsm.Signer{keys["root-demo"]}, RootThreshold: 1,
		Targets: []hsm.Signer{keys["targets-demo"]}, TargetsThreshold: 1,
		Online: keys["online-demo"], Now: now,
	})
	if err != nil {
		return nil, fmt.Errorf("demo repository: %w", err)
	}
	next, err := repo.NextTargets("targets", now.Add(90*24*time.Hour))
	if err != nil {
		return nil, err
	}
	spec := tuf.DelegationSpec{Name: Role, Threshold: 2, Paths: []string{Role + "/*"}, Terminating: true}
	for _, who := range []string{"alice", "bob"} {
		k, err := tuf.KeyFromSigner(keys[who])
		if err != nil {
			return nil, err
		}
		spec.Keys = append(spec.Keys, k)
	}
	if err := tuf.SetDelegation(next, spec); err != nil {
		return nil, err
	}
	dl, err := repo.Delegation("targets")
	if err != nil {
		return nil, err
	}
	if err := tuf.SignAll(next, dl, []hsm.Signer{keys["targets-demo"]}); err != nil {
		return nil, err
	}
	if err := repo.CommitTargets("targets", next, keys["online-demo"], now); err != nil {
		return nil, err
	}

	ci := filepath.Join(dir, "ci")
	if err := os.Mkdir(ci, 0o755); err != nil {
		return nil, err
	}
	for _, name := range []string{"sigstore-1.3.0.tgz", "sigstore-2.0.0.tgz", "sigstore@2.0.0.provenance.sigstore.json"} {
		b, err := demo.Data.ReadFile("data/" + name)
		if err != nil {
			return nil, err
		}
		if err := os.WriteFile(filepath.Join(ci, name), b, 0o644); err != nil {
			return nil, err
		}
	}
	b, err := online.CreateBundle(repo, online.BundleOptions{
		Role: Role, Now: now, Note: "release 2.0.0 from CI (demo)",
		Add:        []online.FileArg{{File: filepath.Join(ci, "sigstore-2.0.0.tgz"), Target: Role + "/sigstore-2.0.0.tgz"}},
		Previous:   []online.FileArg{{File: filepath.Join(ci, "sigstore-1.3.0.tgz")}},
		Provenance: []online.FileArg{{File: filepath.Join(ci, "sigstore@2.0.0.provenance.sigstore.json")}},
	})
	if err != nil {
		return nil, fmt.Errorf("demo bundle: %w", err)
	}
	d.Bundle = filepath.Join(dir, "bundle")
	if err := b.WriteDir(d.Bundle); err != nil {
		return nil, err
	}

	d.Root, err = os.ReadFile(filepath.Join(d.RepoDir, "metadata", "1.root.json"))
	if err != nil {
		return nil, err
	}
	pol, err := json.Marshal(Policy())
	if err != nil {
		return nil, err
	}
	tr, err := demo.Data.ReadFile("data/trusted_root.json")
	if err != nil {
		return nil, err
	}
	clock := appliance.ClockFunc(func() time.Time { return now })
	if err := appliance.InitState(d.StateDir, appliance.Provision{Root: d.Root, Policy: pol, TrustedRoot: tr}, clock); err != nil {
		return nil, fmt.Errorf("demo appliance state: %w", err)
	}
	return d, nil
}

// Policy is the demo's appliance policy: role sigstore, two distinct
// holders, provenance required from sigstore/sigstore-js's release
// workflow on main.
func Policy() appliance.Policy {
	return appliance.Policy{Format: appliance.PolicyFormat, Roles: map[string]appliance.RolePolicy{
		Role: {
			MinHolders: 2,
			Provenance: &appliance.ProvenancePolicy{Package: "sigstore", Require: true, Publishers: []appliance.Publisher{{
				Issuer: provenance.GitHubActionsIssuer, Repository: "https://github.com/sigstore/sigstore-js",
				WorkflowPath: ".github/workflows/release.yml", Refs: []string{"refs/heads/main"},
			}}},
		},
	}}
}
