package registry

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"sync"
	"time"

	"github.com/theupdateframework/go-tuf/v2/metadata"

	"airlock.dev/airlock/transfer/bundle"
	"airlock.dev/airlock/tuf"
)

// bundleExpiry is how long the new version of a role a gate bundle asks
// to sign stays valid (online.CreateBundle's default).
const bundleExpiry = 90 * 24 * time.Hour

// targetsParsed caches tuf.ParseTargets by the SHA-256 of the bytes: the
// delegating roles (targets lists every package's delegation) are read at
// every stage and bundle and change only when a delegation changes. A
// *tuf.Targets is not modified after parsing.
var targetsParsed = struct {
	sync.Mutex
	m map[[32]byte]*parsedTargets
}{m: map[[32]byte]*parsedTargets{}}

// parsedTargets is one entry: concurrent readers of the same new bytes
// wait for one parse.
type parsedTargets struct {
	once sync.Once
	t    *tuf.Targets
	err  error
}

func parseTargetsCached(raw []byte) (*tuf.Targets, error) {
	key := sha256.Sum256(raw)
	targetsParsed.Lock()
	e, ok := targetsParsed.m[key]
	if !ok {
		if len(targetsParsed.m) >= maxCached {
			clear(targetsParsed.m)
		}
		e = &parsedTargets{}
		targetsParsed.m[key] = e
	}
	targetsParsed.Unlock()
	e.once.Do(func() { e.t, e.err = tuf.ParseTargets(raw) })
	return e.t, e.err
}

// uniqueKeysChecked holds the SHA-256 of chain entries (roots and
// delegators, as a request carries them) whose key sets passed
// tuf.CheckUniqueKeys: the same bytes pass again.
var uniqueKeysChecked = struct {
	sync.Mutex
	m map[[32]byte]bool
}{m: map[[32]byte]bool{}}

func checkUniqueCached(raw []byte, check func() error) error {
	key := sha256.Sum256(raw)
	uniqueKeysChecked.Lock()
	ok := uniqueKeysChecked.m[key]
	uniqueKeysChecked.Unlock()
	if ok {
		return nil
	}
	if err := check(); err != nil {
		return err
	}
	uniqueKeysChecked.Lock()
	if len(uniqueKeysChecked.m) >= maxCached {
		clear(uniqueKeysChecked.m)
	}
	uniqueKeysChecked.m[key] = true
	uniqueKeysChecked.Unlock()
	return nil
}

// delegatorPath returns the targets roles from targets down to the role
// that delegates role (empty for top-level roles), searched breadth first
// over the newest metadata as tuf.Repository.DelegatorPath does.
func (v metaView) delegatorPath(role string) ([]string, error) {
	return tuf.FindDelegatorPath(role, func(name string) (*metadata.Delegations, error) {
		_, raw := v.role(name)
		if raw == nil {
			return nil, nil
		}
		t, err := parseTargetsCached(raw)
		if err != nil {
			return nil, err
		}
		return t.Delegations, nil
	})
}

// Bundle builds the bundle that adds target to role from the repository
// files as they are, reading only what the role needs: its current
// metadata, the chain of trust (every root, the delegators from targets
// down) and the role's delegation, each parsed and verified once per
// content (cached by hash). The result is what online.CreateBundle builds
// on a checkout of the repository (TestBundleMatchesCheckout), written
// and read back with transfer/bundle's rules so that the appliance
// accepts it.
func (rel TUFReleaser) Bundle(repo map[string][]byte, role, target string, tarball, provenance []byte, now time.Time) (map[string][]byte, error) {
	if role == metadata.ROOT {
		return nil, errors.New("root changes are built with airlock root, not bundle create")
	}
	v := metaView(repo)
	// Who may sign role, as a client establishes it: the role must be
	// delegated by verified metadata.
	if _, err := v.trustedDelegation(rel.Record, role); err != nil {
		return nil, err
	}
	dpath, err := v.delegatorPath(role)
	if err != nil {
		return nil, err
	}
	_, curRaw := v.role(role)
	var cur, next *metadata.Metadata[metadata.TargetsType]
	expires := tuf.SpecDate(now.Add(bundleExpiry))
	if curRaw == nil {
		next = metadata.Targets(expires)
	} else {
		if cur, err = tuf.ParseStrict[metadata.TargetsType](curRaw); err != nil {
			return nil, fmt.Errorf("role %s: %w", role, err)
		}
		if next, err = tuf.ParseStrict[metadata.TargetsType](curRaw); err != nil {
			return nil, fmt.Errorf("role %s: %w", role, err)
		}
		next.Signatures = []metadata.Signature{}
		next.Signed.Version++
		next.Signed.Expires = expires
		if next.Signed.Targets == nil {
			next.Signed.Targets = map[string]*metadata.TargetFiles{}
		}
	}
	tf, err := tuf.HashReader(bytes.NewReader(tarball))
	if err != nil {
		return nil, err
	}
	if err := tuf.SetTarget(next, target, tf, nil); err != nil {
		return nil, err
	}
	// The paths rule of tuf.Repository.CheckPaths: new or changed targets
	// must be granted by the delegator.
	delegator := metadata.ROOT
	if len(dpath) > 0 {
		delegator = dpath[len(dpath)-1]
		_, praw := v.role(delegator)
		if praw == nil {
			return nil, fmt.Errorf("role %s: delegator %s has no metadata", role, delegator)
		}
		pt, err := parseTargetsCached(praw)
		if err != nil {
			return nil, fmt.Errorf("role %s: %w", delegator, err)
		}
		var names []string
		for name, t := range next.Signed.Targets {
			if cur != nil {
				if old, ok := cur.Signed.Targets[name]; ok && old.Equal(*t) {
					continue
				}
			}
			names = append(names, name)
		}
		if err := tuf.CheckDelegationPaths(pt.Delegations, delegator, role, names); err != nil {
			return nil, fmt.Errorf("%w: name the target under the role's paths (airlock delegate --paths sets them)", err)
		}
	}
	kind, _ := tuf.DeriveTargetsKind(cur, next)
	raw, err := next.ToBytes(false)
	if err != nil {
		return nil, err
	}
	// The request as tuf.Repository.BuildRequest assembles it.
	req := &tuf.Request{Format: tuf.RequestFormat, Kind: kind, Role: role, Delegator: delegator, Metadata: raw, Created: now.UTC().Truncate(time.Second)}
	roots, err := v.roots()
	if err != nil {
		return nil, err
	}
	for _, b := range roots {
		req.Chain.Root = append(req.Chain.Root, json.RawMessage(compactJSON(b)))
	}
	for _, name := range dpath {
		_, b := v.role(name)
		if b == nil {
			return nil, fmt.Errorf("role %s: delegator %s has no metadata", role, name)
		}
		req.Chain.Delegators = append(req.Chain.Delegators, json.RawMessage(compactJSON(b)))
	}
	if curRaw != nil {
		req.Current = json.RawMessage(compactJSON(curRaw))
	}
	if err := req.Validate(); err != nil {
		return nil, err
	}
	base := path.Base(target)
	req.Targets = []tuf.TargetFile{{Path: target, Length: tf.Length, Hashes: hexHashes(tf.Hashes), File: "artifacts/" + base}}
	req.Note = "staged at the registry gate: " + target
	if provenance != nil {
		req.Provenance = []tuf.FileRef{{Target: target, File: "provenance/" + base + ".sigstore.json"}}
	}
	p, err := req.Payload()
	if err != nil {
		return nil, err
	}
	if err := checkRequestKeys(req, p); err != nil {
		return nil, err
	}
	files, err := writeBundle(req, base, tarball, provenance)
	if err != nil {
		return nil, err
	}
	// The submissions verify against this request: keep it parsed.
	cacheRequest(files["request.json"], &parsedRequest{req: req, p: p})
	return files, nil
}

func hexHashes(h metadata.Hashes) map[string]string {
	out := map[string]string{}
	for k, v := range h {
		out[k] = hex.EncodeToString(v)
	}
	return out
}

// checkRequestKeys is tuf.Request.CheckUniqueKeys with the chain's
// entries checked once per content.
func checkRequestKeys(req *tuf.Request, p *tuf.Payload) error {
	for i, raw := range req.Chain.Root {
		err := checkUniqueCached(raw, func() error {
			r, err := tuf.ParseStrict[metadata.RootType](raw)
			if err != nil {
				return fmt.Errorf("chain root %d: %w", i, err)
			}
			if err := tuf.CheckUniqueKeysRoot(r); err != nil {
				return fmt.Errorf("chain: %w", err)
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	for i, raw := range req.Chain.Delegators {
		err := checkUniqueCached(raw, func() error {
			t, err := tuf.ParseStrict[metadata.TargetsType](raw)
			if err != nil {
				return fmt.Errorf("chain delegator %d: %w", i, err)
			}
			if err := tuf.CheckUniqueKeysTargets(fmt.Sprintf("chain delegator %d", i), t); err != nil {
				return fmt.Errorf("chain: %w", err)
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	if err := tuf.CheckUniqueKeysTargets(req.Role, p.Targets); err != nil {
		return fmt.Errorf("new metadata: %w", err)
	}
	if len(req.Current) > 0 {
		cur, err := tuf.ParseStrict[metadata.TargetsType](req.Current)
		if err != nil {
			return fmt.Errorf("current metadata: %w", err)
		}
		if err := tuf.CheckUniqueKeysTargets(req.Role, cur); err != nil {
			return fmt.Errorf("current metadata: %w", err)
		}
	}
	return nil
}

// writeBundle lays the bundle out as online.Bundle.WriteDir does
// (request.json, artifacts/BASE, provenance/BASE.sigstore.json) and checks
// it with transfer/bundle's rules, as the appliance will, in a scratch
// folder holding only the bundle.
func writeBundle(req *tuf.Request, base string, tarball, provenance []byte) (map[string][]byte, error) {
	raw, err := req.Marshal()
	if err != nil {
		return nil, err
	}
	files := map[string][]byte{"request.json": append(raw, '\n'), req.Targets[0].File: tarball}
	if provenance != nil {
		files[req.Provenance[0].File] = provenance
	}
	dir, err := os.MkdirTemp(scratchDir(), "airlock-bundle-*")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	for p, b := range files {
		f := filepath.Join(dir, filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(f), 0o755); err != nil {
			return nil, err
		}
		if err := os.WriteFile(f, b, 0o644); err != nil {
			return nil, err
		}
	}
	if _, err := bundle.Open(dir, bundle.Options{}); err != nil {
		return nil, err
	}
	return files, nil
}
