package appliance

import (
	"context"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/theupdateframework/go-tuf/v2/metadata"

	"airlock.dev/airlock/appliance/content"
	"airlock.dev/airlock/appliance/provenance"
	"airlock.dev/airlock/transfer/ur"
	"airlock.dev/airlock/tuf"
)

// MaxProvenanceBytes caps one provenance bundle read from a release bundle.
const MaxProvenanceBytes = provenance.MaxBundleBytes

// Bundle is a release bundle as the ceremony reads it.
type Bundle struct {
	// Source describes where it came from, e.g. a folder or "qr".
	Source string
	// Request is request.json.
	Request []byte
	// Files holds the bundle's other files by bundle path
	// (artifacts/…, previous/…, provenance/…). Over QR it holds only
	// provenance; it may be nil.
	Files fs.FS
}

// BundleSource delivers the bundle of a ceremony, already read within the
// transfer layer's caps (transfer/bundle, transfer/qr).
type BundleSource interface {
	Load(ctx context.Context) (*Bundle, error)
}

// refusal is a verification failure with the rule it broke.
type refusal struct {
	rule   Rule
	reason string
}

func (r *refusal) Error() string { return r.reason }

func refuse(rule Rule, format string, args ...any) error {
	return &refusal{rule: rule, reason: fmt.Sprintf(format, args...)}
}

// verified is what the verify step establishes about a request.
type verified struct {
	req     *tuf.Request
	payload *tuf.Payload
	policy  RolePolicy
	// deleg is who may sign (for a root rotation: the current root's keys).
	deleg *tuf.Delegation
	// newDeleg is, for a root rotation, the new root's root role.
	newDeleg *tuf.Delegation
	// delegators are the versions of the verified chain's delegating roles.
	delegators map[string]int64
	review     *Review
}

// delegations returns the delegations whose thresholds a ceremony must meet.
func (v *verified) delegations() []*tuf.Delegation {
	if v.newDeleg != nil {
		return []*tuf.Delegation{v.deleg, v.newDeleg}
	}
	return []*tuf.Delegation{v.deleg}
}

// verifyBundle is the verify step: everything is checked before anyone is
// asked to sign. It returns the review model or a refusal.
func verifyBundle(st *StateDir, b *Bundle, date time.Time, dev bool) (*verified, error) {
	req, err := tuf.ParseRequest(b.Request)
	if err != nil {
		return nil, refuse(RuleBundle, "%v; ask CI to rebuild the bundle with airlock bundle create", err)
	}
	v := &verified{req: req}
	pol, ok := st.Policy.Roles[req.Role]
	if !ok {
		return nil, refuse(RulePolicy, "role %s is not in this appliance's policy: the security officer must add it to %s before it can be signed here", content.Visible(req.Role), PolicyFile)
	}
	if !pol.ceremonyAllowed(req.Kind) {
		return nil, refuse(RulePolicy, "the policy does not allow %s ceremonies for role %s (allowed: %s)", content.Visible(req.Kind), req.Role, strings.Join(pol.Kinds, ", "))
	}
	v.policy = pol
	if err := checkKind(req); err != nil {
		return nil, err
	}
	p, err := req.Payload()
	if err != nil {
		return nil, refuse(RuleMetadata, "%v", err)
	}
	v.payload = p

	// 1. Chain of trust from the pinned root.
	if err := req.CheckUniqueKeys(); err != nil {
		return nil, refuse(RuleMetadata, "%v: do not sign; ask CI to list each public key once", err)
	}
	vc, err := req.DelegationChain(st.Root, date)
	if err != nil {
		return nil, refuse(RuleChain, "chain of trust from the pinned root: %v", err)
	}
	d, newestRoot := vc.Delegation, vc.Root
	v.deleg = d
	// Delegator freshness: never older than what this appliance signed or
	// accepted before.
	v.delegators = map[string]int64{}
	for _, nt := range vc.Delegators {
		have := nt.Metadata.Signed.Version
		if newest := st.Ledger.Delegator(nt.Name); have < newest {
			return nil, refuse(RuleChain, "the bundle's chain of trust carries %s version %d, but this appliance has signed or accepted %s version %d: the chain is stale (a later version may revoke keys); ask CI for a bundle built from the published repository", nt.Name, have, nt.Name, newest)
		}
		v.delegators[nt.Name] = have
	}
	// Targets must lie within the paths the delegator grants the role.
	if p.Targets != nil {
		names := make([]string, 0, len(p.Targets.Signed.Targets))
		for name := range p.Targets.Signed.Targets {
			names = append(names, name)
		}
		if err := tuf.CheckDelegatedPaths(vc.Parent(), req.Delegator, req.Role, names); err != nil {
			return nil, refuse(RuleTargets, "%v: do not sign; a client would not find these targets through %s", err, req.Role)
		}
	}

	// 2. Version, expiry, ledger.
	var current int64
	var currentTargets *metadata.Metadata[metadata.TargetsType]
	var oldRoot *metadata.Metadata[metadata.RootType]
	r := &Review{Kind: req.Kind, Role: req.Role, Delegator: req.Delegator, NewVersion: p.Version, NewExpires: p.Expires,
		SHA256: p.SHA256, Fingerprint: ur.Fingerprint(p.Canonical), Bytes: len(p.Canonical), Date: date, Dev: dev, Note: req.Note}
	if p.Root != nil {
		oldRoot = newestRoot
		current = newestRoot.Signed.Version
		r.OldExpires = newestRoot.Signed.Expires
		if p.Version != current+1 {
			return nil, refuse(RuleVersion, "new root version %d must directly follow the current root version %d", p.Version, current)
		}
		if v.newDeleg, err = tuf.DelegationFromRoot(p.Root, metadata.ROOT); err != nil {
			return nil, refuse(RuleMetadata, "new root: %v", err)
		}
	} else if len(req.Current) > 0 {
		currentTargets, err = tuf.ParseStrict[metadata.TargetsType](req.Current)
		if err != nil {
			return nil, refuse(RuleMetadata, "current metadata of %s: %v", req.Role, err)
		}
		// The current version is what rollback and the review compare
		// against: it must be the one its delegation signed.
		if _, _, err := tuf.VerifyTargets(req.Current, d, tuf.RoleCheck{}); err != nil {
			return nil, refuse(RuleChain, "the current metadata of %s in the bundle does not verify under its delegation (%v): do not sign; ask CI for a bundle built from the published repository", req.Role, err)
		}
		current = currentTargets.Signed.Version
		r.OldExpires = currentTargets.Signed.Expires
	}
	r.OldVersion = current
	if p.Version <= current {
		return nil, refuse(RuleVersion, "version %d of %s is not above the current version %d: rebuild the bundle with version %d or higher", p.Version, req.Role, current, current+1)
	}
	if err := st.Ledger.Check(req.Role, p.Version, sha(p.Canonical)); err != nil {
		return nil, refuse(RuleLedger, "%v", err)
	}
	if !p.Expires.After(date) {
		return nil, refuse(RuleExpiry, "%s version %d expires %s, not after the confirmed date %s: rebuild it with a later expiry", req.Role, p.Version, p.Expires.UTC().Format(time.RFC3339), date.Format("2006-01-02"))
	}
	if max := pol.maxExpiry(); p.Expires.Sub(date) > max {
		return nil, refuse(RuleExpiry, "%s version %d expires %s, more than the policy's %d days after %s: rebuild it with an earlier expiry", req.Role, p.Version, p.Expires.UTC().Format("2006-01-02"), int(max.Hours()/24), date.Format("2006-01-02"))
	}

	// 3. Metadata changes.
	if p.Targets != nil {
		r.Targets = tuf.DiffTargets(currentTargets, p.Targets)
		if req.Kind == tuf.KindResign && len(r.Targets) > 0 {
			return nil, refuse(RuleMetadata, "a re-sign must not change targets, this one changes %d", len(r.Targets))
		}
		var oldDg *metadata.Delegations
		if currentTargets != nil {
			oldDg = currentTargets.Signed.Delegations
		}
		r.Roles = diffDelegations(oldDg, p.Targets.Signed.Delegations)
	} else {
		r.Roles = diffRoots(oldRoot, p.Root)
	}

	// 4. Target bytes, provenance and content.
	if err := reviewArtifacts(st, b, v, r, currentTargets); err != nil {
		return nil, err
	}

	r.Signers = need(v, pol)
	v.review = r
	return v, nil
}

func sha(b []byte) [32]byte { return sha256.Sum256(b) }

// checkKind refuses a request whose kind does not fit its role.
func checkKind(req *tuf.Request) error {
	isRoot := req.Role == metadata.ROOT
	switch req.Kind {
	case tuf.KindRootRotate:
		if !isRoot {
			return refuse(RuleMetadata, "a root rotation must sign role root, not %s", content.Visible(req.Role))
		}
	case tuf.KindRelease, tuf.KindResign, tuf.KindDelegation:
		if isRoot {
			return refuse(RuleMetadata, "role root is changed only by a root rotation, not a %s", req.Kind)
		}
	case tuf.KindEnrolment:
	default:
		return refuse(RuleMetadata, "unknown ceremony kind %s", content.Visible(req.Kind))
	}
	return nil
}

// reviewArtifacts checks every target's bytes against the new metadata, the
// provenance of added or changed targets, and diffs content.
func reviewArtifacts(st *StateDir, b *Bundle, v *verified, r *Review, current *metadata.Metadata[metadata.TargetsType]) error {
	req, p := v.req, v.payload
	if p.Targets == nil {
		r.ContentAvailable = true
		return nil
	}
	byTarget := map[string]tuf.TargetFile{}
	for _, t := range req.Targets {
		byTarget[t.Path] = t
	}
	prov := map[string]string{}
	for _, f := range req.Provenance {
		prov[f.Target] = f.File
	}
	prev := map[string]string{}
	for _, f := range req.Previous {
		prev[f.Target] = f.File
	}
	var verifier *provenance.Verifier
	var ppol provenance.Policy
	if v.policy.Provenance != nil {
		ppol = v.policy.Provenance.Provenance()
	}
	needVerifier := v.policy.Provenance != nil || len(req.Provenance) > 0
	if needVerifier {
		if len(st.TrustedRoot) == 0 {
			return refuse(RuleProvenance, "provenance must be checked but no sigstore trusted root is pinned in %s: provision %s", st.Path(), TrustedRootFile)
		}
		var err error
		if verifier, err = provenance.New(provenance.Config{TrustedRoot: st.TrustedRoot, NPMKeys: st.NPMKeys}); err != nil {
			return refuse(RuleProvenance, "%v", err)
		}
	}
	changed := map[string]bool{}
	for _, c := range r.Targets {
		if c.Change != "removed" {
			changed[c.Path] = true
		}
	}
	for path := range byTarget {
		if _, ok := p.Targets.Signed.Targets[path]; !ok {
			return refuse(RuleTargets, "the bundle carries bytes for %s, which is not a target of the new metadata", content.Visible(path))
		}
	}
	paths := make([]string, 0, len(changed))
	for path := range changed {
		paths = append(paths, path)
	}
	sort.Strings(paths)
	present, absent := 0, 0
	for _, path := range paths {
		tf := p.Targets.Signed.Targets[path]
		a := ArtifactReview{Target: path, Length: tf.Length}
		if h, ok := tf.Hashes["sha256"]; ok {
			a.SHA256 = hex.EncodeToString(h)
		}
		bf, hasBytes := byTarget[path]
		var data []byte
		if hasBytes && b.Files != nil {
			var err error
			data, err = readCapped(b.Files, bf.File, content.DefaultLimits().MaxArchiveBytes)
			if errors.Is(err, fs.ErrNotExist) {
				hasBytes = false
			} else if err != nil {
				return refuse(RuleBundle, "target %s: %v", content.Visible(path), err)
			}
		} else {
			hasBytes = false
		}
		if hasBytes {
			present++
			a.File = bf.File
			if err := checkTargetBytes(tf, data); err != nil {
				return refuse(RuleTargets, "target %s: the bundle file %s %v: the artifact was changed after the metadata was built; do not sign, ask CI for a new bundle", content.Visible(path), content.Visible(bf.File), err)
			}
			a.BytesVerified = true
		} else {
			absent++
		}
		// Provenance.
		if verifier != nil {
			art, err := artifactFor(path, tf, data, hasBytes)
			if err != nil {
				return refuse(RuleProvenance, "target %s: %v", content.Visible(path), err)
			}
			var ev provenance.Evidence
			if f, ok := prov[path]; ok && b.Files != nil {
				if ev.Provenance, err = readCapped(b.Files, f, MaxProvenanceBytes); err != nil {
					return refuse(RuleProvenance, "target %s: provenance file %s: %v", content.Visible(path), content.Visible(f), err)
				}
			}
			pp := ppol
			if v.policy.Provenance == nil {
				pp = provenance.Policy{Package: req.Role}
			}
			facts, err := verifier.Review(art, ev, pp)
			a.Provenance = facts
			if err != nil {
				return refuse(RuleProvenance, "%v; do not sign: the release did not come from the trusted publisher", err)
			}
		}
		// Content.
		if hasBytes {
			a.Content, a.ContentNote = diffContent(b.Files, path, data, prev[path])
			a.Previous = prev[path]
		} else {
			a.ContentNote = "the bundle carries no bytes for this target: content diffs were not available; only metadata and provenance were reviewed"
		}
		r.Artifacts = append(r.Artifacts, a)
	}
	r.ContentAvailable = absent == 0
	if absent > 0 {
		r.ContentNote = fmt.Sprintf("content diffs were not available for %d of %d new or changed targets (the bundle carried no artifact bytes, for example over QR): only metadata and provenance were reviewed", absent, present+absent)
	}
	return nil
}

func checkTargetBytes(tf *metadata.TargetFiles, data []byte) error {
	if int64(len(data)) != tf.Length {
		return fmt.Errorf("is %d bytes, the metadata says %d", len(data), tf.Length)
	}
	if len(tf.Hashes) == 0 {
		return errors.New("has no hashes in the metadata")
	}
	for alg, want := range tf.Hashes {
		var got []byte
		switch alg {
		case "sha256":
			s := sha256.Sum256(data)
			got = s[:]
		case "sha512":
			s := sha512.Sum512(data)
			got = s[:]
		default:
			return fmt.Errorf("has hash algorithm %q, which the appliance cannot check", alg)
		}
		if !slices.Equal(got, []byte(want)) {
			return fmt.Errorf("does not match its %s in the metadata", alg)
		}
	}
	return nil
}

func artifactFor(path string, tf *metadata.TargetFiles, data []byte, hasBytes bool) (provenance.Artifact, error) {
	name := path[strings.LastIndex(path, "/")+1:]
	if hasBytes {
		return provenance.ArtifactFromBytes(name, data), nil
	}
	for _, alg := range []string{"sha512", "sha256"} {
		if h, ok := tf.Hashes[alg]; ok {
			return provenance.ArtifactFromDigest(name, alg, hex.EncodeToString(h))
		}
	}
	return provenance.Artifact{}, errors.New("no sha512 or sha256 hash to match provenance against")
}

func diffContent(files fs.FS, path string, data []byte, prevFile string) (*content.Diff, string) {
	lim := content.DefaultLimits()
	name := path[strings.LastIndex(path, "/")+1:]
	nt, err := content.Read(name, bytesReaderAt(data), int64(len(data)), lim)
	if err != nil {
		return nil, "content could not be read: " + err.Error()
	}
	var ot *content.Tree
	note := ""
	if prevFile != "" {
		pb, err := readCapped(files, prevFile, lim.MaxArchiveBytes)
		if err == nil {
			pname := prevFile[strings.LastIndex(prevFile, "/")+1:]
			ot, err = content.Read(pname, bytesReaderAt(pb), int64(len(pb)), lim)
		}
		if err != nil {
			note = "previous release could not be read: " + err.Error() + "; every file is shown as added"
			ot = nil
		}
	} else {
		note = "no previous release in the bundle: every file is shown as added"
	}
	return content.Compare(ot, nt, lim), note
}

type bytesReaderAt []byte

func (b bytesReaderAt) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 || off > int64(len(b)) {
		return 0, errors.New("read at invalid offset")
	}
	n := copy(p, b[off:])
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

// readCapped reads a bundle file of at most limit bytes.
func readCapped(fsys fs.FS, name string, limit int64) ([]byte, error) {
	f, err := fsys.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%s is not a regular file", content.Visible(name))
	}
	if fi.Size() > limit {
		return nil, fmt.Errorf("%s is %d bytes, over the %d-byte cap", content.Visible(name), fi.Size(), limit)
	}
	b, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("%s is over the %d-byte cap", content.Visible(name), limit)
	}
	return b, nil
}
