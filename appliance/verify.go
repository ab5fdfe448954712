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

// verifyBundle is the verify step: trust verification (verifyTrust), then
// the review model (buildReview). Everything is checked before anyone is
// asked to sign.
func verifyBundle(st *StateDir, b *Bundle, date time.Time, dev bool) (*verified, error) {
	v, err := verifyTrust(st, b.Request, date)
	if err != nil {
		return nil, err
	}
	if v.review, err = buildReview(st, b, v, date, dev); err != nil {
		return nil, err
	}
	return v, nil
}

// buildReview is the review half of the verify step, on a request that
// verifyTrust accepted: what changes (targets, delegations, root keys), the
// target bytes checked against the metadata, provenance, content diffs,
// and who must approve.
func buildReview(st *StateDir, b *Bundle, v *verified, date time.Time, dev bool) (*Review, error) {
	req, p := v.req, v.payload
	r := &Review{Kind: v.kind, Role: req.Role, Delegator: req.Delegator, NewVersion: p.Version, NewExpires: p.Expires,
		OldVersion: v.oldVersion, OldExpires: v.oldExpires,
		SHA256: p.SHA256, Fingerprint: ur.Fingerprint(p.Canonical), Bytes: len(p.Canonical), Date: date, Dev: dev, Note: req.Note}

	// Metadata changes.
	if p.Targets != nil {
		r.Targets = tuf.DiffTargets(v.current, p.Targets)
		var oldDg *metadata.Delegations
		if v.current != nil {
			oldDg = v.current.Signed.Delegations
		}
		r.Roles = diffDelegations(oldDg, p.Targets.Signed.Delegations)
	} else {
		r.Roles = diffRoots(v.oldRoot, p.Root)
	}

	// Target bytes, provenance and content.
	if err := reviewArtifacts(st, b, v, r, v.current); err != nil {
		return nil, err
	}
	// A transparency log's verified time is a date the confirmed date
	// cannot precede.
	for _, a := range r.Artifacts {
		if f := a.Provenance; f != nil && f.Verified && !f.IntegratedTime.IsZero() {
			logged := f.IntegratedTime.UTC()
			if day := time.Date(logged.Year(), logged.Month(), logged.Day(), 0, 0, 0, 0, time.UTC); date.Before(day) {
				return nil, refuse(RuleDate, "the confirmed date %s is earlier than %s, when the transparency log recorded the provenance of %s: the date is wrong; check the calendar and start again", date.Format(time.DateOnly), logged.Format(time.RFC3339), content.Visible(a.Target))
			}
		}
	}
	r.Signers = need(v, v.policy)
	return r, nil
}

func sha(b []byte) [32]byte { return sha256.Sum256(b) }

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
