package registry

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/theupdateframework/go-tuf/v2/metadata"

	"airlock.dev/airlock/hsm"
	"airlock.dev/airlock/internal/online"
	"airlock.dev/airlock/tuf"
)

// Approval is a verified submission: the role's new metadata with the
// threshold of signatures combined onto it, ready for the writer.
type Approval struct {
	Role    string
	Version int64
	Signed  []byte // the signed metadata as it is written
}

// Queued is an approved stage the writer puts into the repository.
type Queued struct {
	Role    string // Approval.Role
	Target  string
	Tarball []byte
	Signed  []byte // Approval.Signed
}

// maxCached caps each verification cache; past it the cache starts over.
const maxCached = 4096

// parsedRequest is what verification reads of a stored request.json:
// the role and the metadata it asks to sign, parsed and canonicalised
// once. The gate reads its own stored bundles again at every submission,
// so a request seen before (by its SHA-256) is not parsed again; the
// bundle that made it puts it here first. Nothing in it is modified after
// parsing.
type parsedRequest struct {
	req *tuf.Request
	p   *tuf.Payload
}

var requestCache = struct {
	sync.Mutex
	m map[[32]byte]*parsedRequest
}{m: map[[32]byte]*parsedRequest{}}

func cacheRequest(request []byte, pr *parsedRequest) {
	key := sha256.Sum256(request)
	requestCache.Lock()
	if len(requestCache.m) >= maxCached {
		clear(requestCache.m)
	}
	requestCache.m[key] = pr
	requestCache.Unlock()
}

func parseRequestCached(request []byte) (*parsedRequest, error) {
	key := sha256.Sum256(request)
	requestCache.Lock()
	pr, ok := requestCache.m[key]
	requestCache.Unlock()
	if ok {
		return pr, nil
	}
	pr, err := parseStoredRequest(request)
	if err != nil {
		return nil, err
	}
	cacheRequest(request, pr)
	return pr, nil
}

// parseStoredRequest reads what verification needs of a request.json the
// gate made and stored: its format, role and the metadata to sign (parsed
// strictly and canonicalised by tuf.Request.Payload). The chain of trust
// and the file lists are for the appliance; verification takes who may
// sign from the repository itself, so they are not parsed again: the
// gate writes those three fields first, and reading stops once it has
// them. The signatures must cover the canonical bytes parsed here, which
// are what the writer puts into the repository.
func parseStoredRequest(request []byte) (*parsedRequest, error) {
	if len(request) > tuf.MaxRequestBytes {
		return nil, fmt.Errorf("request.json is over %d bytes", tuf.MaxRequestBytes)
	}
	dec := json.NewDecoder(bytes.NewReader(request))
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return nil, errors.New("request.json is not a JSON object")
	}
	var format int
	var role string
	var meta json.RawMessage
	seen := map[string]bool{}
	for dec.More() && !(seen["airlock_request"] && seen["role"] && seen["metadata"]) {
		t, err := dec.Token()
		if err != nil {
			return nil, fmt.Errorf("request.json: %w", err)
		}
		k, _ := t.(string)
		if seen[k] {
			return nil, fmt.Errorf("request.json: duplicate field %q", k)
		}
		seen[k] = true
		switch k {
		case "airlock_request":
			err = dec.Decode(&format)
		case "role":
			err = dec.Decode(&role)
		case "metadata":
			err = dec.Decode(&meta)
		default:
			var skip json.RawMessage
			err = dec.Decode(&skip)
		}
		if err != nil {
			return nil, fmt.Errorf("request.json: %s: %w", k, err)
		}
	}
	if format != tuf.RequestFormat || role == "" || len(meta) == 0 {
		return nil, fmt.Errorf("request.json: want format %d with a role and metadata", tuf.RequestFormat)
	}
	req := &tuf.Request{Format: format, Role: role, Metadata: meta}
	p, err := req.Payload()
	if err != nil {
		return nil, fmt.Errorf("request.json: %w", err)
	}
	return &parsedRequest{req: req, p: p}, nil
}

// metaView reads a repository held as files (the store's newest
// metadata) without writing it out.
type metaView map[string][]byte

// roots returns every root version, oldest first.
func (v metaView) roots() ([][]byte, error) {
	var out [][]byte
	for i := 1; ; i++ {
		b, ok := v["metadata/"+strconv.Itoa(i)+".root.json"]
		if !ok {
			break
		}
		out = append(out, b)
	}
	if len(out) == 0 {
		return nil, errors.New("repository has no metadata/1.root.json")
	}
	return out, nil
}

// role returns the newest version number and bytes of a targets role.
func (v metaView) role(name string) (int64, []byte) {
	var best int64
	var b []byte
	for p, data := range v {
		rest, ok := strings.CutPrefix(p, "metadata/")
		if !ok {
			continue
		}
		num, file, ok := strings.Cut(rest, ".")
		if !ok || file != name+".json" {
			continue
		}
		n, err := strconv.ParseInt(num, 10, 64)
		if err == nil && n > best {
			best, b = n, data
		}
	}
	return best, b
}

// verified caches what a client establishes from the repository: the
// root chain and each delegating targets role verified under its
// delegator, keyed by the hash of every byte the result depends on. A
// changed root or delegator is a new key, verified again.
var verified = struct {
	sync.Mutex
	roots   map[[32]byte]*metadata.Metadata[metadata.RootType]
	targets map[[32]byte]*tuf.Targets
	// delegations holds each delegation read from a verified delegator,
	// by the delegator's key and the role; callers get a Clone.
	delegations map[delegationKey]*tuf.Delegation
	// kept holds delegations by metaView.trustKey (trustedDelegation).
	kept map[[32]byte]*tuf.Delegation
}{roots: map[[32]byte]*metadata.Metadata[metadata.RootType]{}, targets: map[[32]byte]*tuf.Targets{}, delegations: map[delegationKey]*tuf.Delegation{},
	kept: map[[32]byte]*tuf.Delegation{}}

type delegationKey struct {
	delegator [32]byte
	role      string
}

// cachedDelegation returns the delegation of role by the verified
// delegator summed up by key, making it with make the first time.
func cachedDelegation(key [32]byte, role string, make func() (*tuf.Delegation, error)) (*tuf.Delegation, error) {
	k := delegationKey{key, role}
	verified.Lock()
	d, ok := verified.delegations[k]
	verified.Unlock()
	if ok {
		return d.Clone(), nil
	}
	d, err := make()
	if err != nil {
		return nil, err
	}
	verified.Lock()
	if len(verified.delegations) >= maxCached {
		clear(verified.delegations)
	}
	verified.delegations[k] = d
	verified.Unlock()
	return d.Clone(), nil
}

func (v metaView) verifiedRoot() (*metadata.Metadata[metadata.RootType], [32]byte, error) {
	roots, err := v.roots()
	if err != nil {
		return nil, [32]byte{}, err
	}
	h := sha256.New()
	for _, b := range roots {
		h.Write([]byte(strconv.Itoa(len(b)) + ":"))
		h.Write(b)
	}
	var key [32]byte
	h.Sum(key[:0])
	verified.Lock()
	root, ok := verified.roots[key]
	verified.Unlock()
	if ok {
		return root, key, nil
	}
	first, err := tuf.ParseStrict[metadata.RootType](roots[0])
	if err != nil {
		return nil, key, fmt.Errorf("root version 1: %w", err)
	}
	if err := tuf.VerifyTrustedRoot(first); err != nil {
		return nil, key, fmt.Errorf("root version 1: %w", err)
	}
	if root, err = tuf.VerifyRootChain(first, roots[1:], time.Time{}); err != nil {
		return nil, key, err
	}
	verified.Lock()
	if len(verified.roots) >= maxCached {
		clear(verified.roots)
	}
	verified.roots[key] = root
	verified.Unlock()
	return root, key, nil
}

// verifiedTargets verifies a targets role's newest bytes under d, whose
// own trust is summed up by parent.
func (v metaView) verifiedTargets(name string, d *tuf.Delegation, parent [32]byte) (*tuf.Targets, [32]byte, error) {
	_, raw := v.role(name)
	if raw == nil {
		return nil, [32]byte{}, fmt.Errorf("role %s: %w", name, fs.ErrNotExist)
	}
	h := sha256.New()
	h.Write(parent[:])
	h.Write([]byte(name + "\x00"))
	h.Write(raw)
	var key [32]byte
	h.Sum(key[:0])
	verified.Lock()
	t, ok := verified.targets[key]
	verified.Unlock()
	if ok {
		return t, key, nil
	}
	t, _, err := tuf.VerifyTargets(raw, d, tuf.RoleCheck{})
	if err != nil {
		return nil, key, err
	}
	verified.Lock()
	if len(verified.targets) >= maxCached {
		clear(verified.targets)
	}
	verified.targets[key] = t
	verified.Unlock()
	return t, key, nil
}

// delegation returns who may sign role as a client establishes it: the
// root chain from 1.root.json, then the delegating targets roles from
// targets down (breadth first, as tuf.Repository.DelegatorPath searches),
// each verified under its delegator. Expiry is not judged (as
// tuf.Repository.Delegation).
func (v metaView) delegation(role string) (*tuf.Delegation, error) {
	root, key, err := v.verifiedRoot()
	if err != nil {
		return nil, err
	}
	td, err := cachedDelegation(key, metadata.TARGETS, func() (*tuf.Delegation, error) {
		return tuf.DelegationFromRoot(root, metadata.TARGETS)
	})
	if err != nil {
		return nil, err
	}
	if role == metadata.TARGETS {
		return td, nil
	}
	type node struct {
		name string
		d    *tuf.Delegation
		key  [32]byte
	}
	queue := []node{{metadata.TARGETS, td, key}}
	seen := map[string]bool{}
	for visited := 0; len(queue) > 0; visited++ {
		if visited > tuf.MaxDelegations {
			return nil, fmt.Errorf("more than %d delegations visited looking for role %s", tuf.MaxDelegations, role)
		}
		n := queue[0]
		queue = queue[1:]
		if seen[n.name] {
			continue
		}
		seen[n.name] = true
		t, tkey, err := v.verifiedTargets(n.name, n.d, n.key)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, err
		}
		if t.Delegations == nil {
			continue
		}
		from := func(name string) (*tuf.Delegation, error) {
			return cachedDelegation(tkey, name, func() (*tuf.Delegation, error) { return t.Delegation(n.name, name) })
		}
		for _, dr := range t.Delegations.Roles {
			if dr.Name == role {
				return from(role)
			}
		}
		if sr := t.Delegations.SuccinctRoles; sr != nil && sr.IsDelegatedRole(role) {
			return from(role)
		}
		for _, dr := range t.Delegations.Roles {
			if d, err := from(dr.Name); err == nil {
				queue = append(queue, node{dr.Name, d, tkey})
			}
		}
	}
	return nil, fmt.Errorf("no role delegates %q; add it with airlock delegate", role)
}

// Verify checks submissions (signature responses or signed metadata)
// against the stored request.json and the repository: the tarball's exact
// length and hashes against the bundle's target, the role's next version,
// the production rules (appliance ceremony, hardware keys) unless Dev, and
// the threshold and approval groups, each signature verified once. It
// returns the signed role metadata; Write puts it into the repository.
func (rel TUFReleaser) Verify(repo map[string][]byte, request []byte, submissions [][]byte, target string, tarball []byte) (*Approval, error) {
	if len(request) == 0 {
		return nil, ErrNoBundle
	}
	pr, err := parseRequestCached(request)
	if err != nil {
		return nil, fmt.Errorf("stored request: %w", err)
	}
	req, p := pr.req, pr.p
	if p.Targets == nil {
		return nil, fmt.Errorf("stored request for %s is not a targets release", req.Role)
	}
	tf, ok := p.Targets.Signed.Targets[target]
	if !ok {
		return nil, fmt.Errorf("the bundle's metadata does not list %s", target)
	}
	if err := tf.VerifyLengthHashes(tarball); err != nil {
		return nil, fmt.Errorf("the staged tarball does not match the bundle's target %s: %w", target, err)
	}
	view := metaView(repo)
	cur, _ := view.role(req.Role)
	if p.Version != cur+1 {
		return nil, fmt.Errorf("the bundle signs %s version %d, the repository holds version %d: %w", req.Role, p.Version, cur, ErrStale)
	}
	var responses []*tuf.Response
	var existing []metadata.Signature
	for i, s := range submissions {
		resp, rerr := tuf.ParseResponse(s)
		if rerr == nil {
			responses = append(responses, resp)
			continue
		}
		m, merr := tuf.ParseStrict[metadata.TargetsType](s)
		if merr != nil {
			return nil, fmt.Errorf("submission %d is neither a signature response (%v) nor signed %s metadata (%v)", i+1, rerr, req.Role, merr)
		}
		canon, err := tuf.Canonical(m)
		if err != nil {
			return nil, fmt.Errorf("submission %d: %w", i+1, err)
		}
		if !bytes.Equal(canon, p.Canonical) {
			return nil, fmt.Errorf("submission %d is signed metadata of other content than the bundle's %s version %d: %w", i+1, req.Role, p.Version, tuf.ErrOtherBytes)
		}
		existing = append(existing, m.Signatures...)
	}
	d, err := view.trustedDelegation(rel.Record, req.Role)
	if err != nil {
		return nil, err
	}
	if err := online.CheckResponsesProduction(d, responses, rel.Dev); err != nil {
		return nil, err
	}
	if !rel.Dev {
		for i, s := range existing {
			if k, ok := d.Keys[s.KeyID]; ok && !tuf.KeyKind(k).Hardware() {
				return nil, fmt.Errorf("signed metadata signature %d: key %.12s is a %s key, not a hardware key: %w", i+1, s.KeyID, tuf.KeyKind(k), online.ErrDevResponse)
			}
		}
	}
	c, err := tuf.Combine(p, req.Role, d, existing, responses)
	if err != nil {
		return nil, err
	}
	signed := *p.Targets // the cached payload stays unsigned
	signed.Signatures = c.Signatures
	b, err := tuf.EncodeMetadataCanonical(&signed, p.Canonical)
	if err != nil {
		return nil, err
	}
	return &Approval{Role: req.Role, Version: p.Version, Signed: b}, nil
}

// Write puts approved stages into the repository in one step: each role's
// new version (verified against its delegator and its paths as
// tuf.Repository.CommitTargets does) and target files, then one snapshot
// and one timestamp signed with the online key. The result must pass the
// client users run: one client session from 1.root.json fetches every
// target of the batch and compares its bytes. refused holds, per item, why
// it was left out (nil for written ones); err fails the whole batch.
func (rel TUFReleaser) Write(repo map[string][]byte, items []Queued, onlineKey hsm.Signer, now time.Time) (files map[string][]byte, refused []error, err error) {
	dir, r, err := checkout(repo)
	if err != nil {
		return nil, nil, err
	}
	defer os.RemoveAll(dir)
	refused = make([]error, len(items))
	var written []int
	view := metaView(repo)
	wrote := map[string]bool{} // roles this batch wrote
	var rec TrustRecord
	if rel.Record != nil {
		rec = loadOnly{rel.Record}
	}
	for i, it := range items {
		m, err := tuf.ParseStrict[metadata.TargetsType](it.Signed)
		if err != nil {
			refused[i] = fmt.Errorf("approved metadata: %w", err)
			continue
		}
		role := it.Role
		if _, ok := m.Signed.Targets[it.Target]; !ok {
			refused[i] = fmt.Errorf("the approved %s metadata does not list %s", role, it.Target)
			continue
		}
		cur, err := r.RoleVersion(role)
		if err != nil {
			return nil, nil, err
		}
		if m.Signed.Version != cur+1 {
			refused[i] = fmt.Errorf("the bundle signs %s version %d, the repository holds version %d: %w", role, m.Signed.Version, cur, ErrStale)
			continue
		}
		if err := writeRole(r, view, rec, wrote, role, m, now); err != nil {
			refused[i] = err
			continue
		}
		wrote[role] = true
		if err := r.AddTargetFile(it.Target, it.Tarball); err != nil {
			return nil, nil, err
		}
		written = append(written, i)
	}
	if len(written) == 0 {
		return nil, refused, nil
	}
	if err := r.Refresh(onlineKey, now); err != nil {
		return nil, nil, err
	}
	root1, ok := repo["metadata/1.root.json"]
	if !ok {
		return nil, nil, errors.New("repository has no metadata/1.root.json")
	}
	store := tuf.MemStore{}
	if err := tuf.InitStore(store, root1); err != nil {
		return nil, nil, err
	}
	fetch := tuf.DirFetcher(dir)
	u := &tuf.Updater{Store: store, Remote: tuf.PrefixFetcher{Fetcher: fetch, Prefix: "metadata/"}, Targets: tuf.PrefixFetcher{Fetcher: fetch, Prefix: "targets/"}, RefTime: now}
	ctx := context.Background()
	if err := u.Refresh(ctx); err != nil {
		return nil, nil, fmt.Errorf("the repository after publishing fails the client check: %w", err)
	}
	for _, i := range written {
		info, err := u.GetTargetInfo(ctx, items[i].Target)
		if err != nil {
			return nil, nil, fmt.Errorf("the repository after publishing fails the client check for %s: %w", items[i].Target, err)
		}
		got, err := u.FetchTarget(ctx, info)
		if err != nil {
			return nil, nil, fmt.Errorf("the repository after publishing fails the client check for %s: %w", items[i].Target, err)
		}
		if !bytes.Equal(got, items[i].Tarball) {
			return nil, nil, fmt.Errorf("the client fetched other bytes for %s than the staged tarball", items[i].Target)
		}
	}
	after, err := ReadTree(dir)
	if err != nil {
		return nil, nil, err
	}
	files = map[string][]byte{}
	for p, b := range after {
		if old, ok := repo[p]; !ok || !bytes.Equal(old, b) {
			files[p] = b
		}
	}
	return files, refused, nil
}

// writeRole verifies and writes one role's approved version into the
// checkout. Who may sign it and its delegator's paths come from the
// repository as it was before the batch, verified and cached by content
// (metaView.delegation); when the batch already wrote one of the role's
// delegators, the checkout's files are read and verified again instead
// (tuf.Repository.WriteTargets).
func writeRole(r *tuf.Repository, view metaView, rec TrustRecord, wrote map[string]bool, role string, m *metadata.Metadata[metadata.TargetsType], now time.Time) error {
	dpath, err := view.delegatorPath(role)
	if err != nil {
		return err
	}
	for _, name := range dpath {
		if wrote[name] {
			return r.WriteTargets(role, m, now)
		}
	}
	d, err := view.trustedDelegation(rec, role)
	if err != nil {
		return err
	}
	delegator, dg := metadata.ROOT, (*metadata.Delegations)(nil)
	if len(dpath) > 0 {
		delegator = dpath[len(dpath)-1]
		_, raw := view.role(delegator)
		pt, err := parseTargetsCached(raw)
		if err != nil {
			return fmt.Errorf("role %s: %w", delegator, err)
		}
		dg = pt.Delegations
	}
	return r.WriteTargetsUnder(role, m, now, d, delegator, dg)
}
