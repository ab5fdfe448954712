package appliance

import (
	"context"
	"crypto/sha256"
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
	// MetadataOnly says the transfer carries no artifact or previous
	// release bytes by design (QR). Otherwise every file request.json names
	// must be in Files, as combine demands of the same bundle.
	MetadataOnly bool
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
	textRisks(r, v)
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
	// A previous release is expected when the role already had targets.
	hadTargets := current != nil && len(current.Signed.Targets) > 0
	var missing []content.Signal
	// At most one artifact is open at a time.
	var open *bundleFile
	closeOpen := func() {
		if open != nil {
			open.Close()
			open = nil
		}
	}
	defer closeOpen()
	for _, path := range paths {
		tf := p.Targets.Signed.Targets[path]
		a := ArtifactReview{Target: path, Length: tf.Length}
		if h, ok := tf.Hashes["sha256"]; ok {
			a.SHA256 = hex.EncodeToString(h)
		}
		bf, hasBytes := byTarget[path]
		// The artifact is streamed: its size is checked against the
		// metadata before any byte is read, hashed in one pass and then
		// read at offsets by the archive reader, never loaded whole.
		var file *bundleFile
		var art provenance.Artifact
		if hasBytes && !b.MetadataOnly && b.Files != nil {
			var err error
			file, err = openCapped(b.Files, bf.File, content.DefaultLimits().MaxArchiveBytes)
			if errors.Is(err, fs.ErrNotExist) {
				return refuse(RuleBundle, "bundle file %s backs target %s but is not in the bundle: the bundle is incomplete (combine refuses it too); ask CI to rebuild it", content.Visible(bf.File), content.Visible(path))
			} else if err != nil {
				return refuse(RuleBundle, "target %s: %v", content.Visible(path), err)
			}
			closeOpen()
			open = file
		} else {
			hasBytes = false
		}
		if hasBytes {
			present++
			a.File = bf.File
			var err error
			if art, err = checkTargetFile(path, tf, file); err != nil {
				return refuse(RuleTargets, "target %s: the bundle file %s %v: the artifact was changed after the metadata was built; do not sign, ask CI for a new bundle", content.Visible(path), content.Visible(bf.File), err)
			}
			a.BytesVerified = true
		} else {
			absent++
		}
		// Provenance.
		if verifier != nil {
			if !hasBytes {
				var err error
				if art, err = artifactFromDigest(path, tf); err != nil {
					return refuse(RuleProvenance, "target %s: %v", content.Visible(path), err)
				}
			}
			var ev provenance.Evidence
			var err error
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
			if f := prev[path]; f != "" {
				if _, err := fs.Stat(b.Files, f); errors.Is(err, fs.ErrNotExist) {
					return refuse(RuleBundle, "bundle file %s holds the previous release of %s but is not in the bundle: the bundle is incomplete; ask CI to rebuild it", content.Visible(f), content.Visible(path))
				}
			}
			var prevMissing bool
			a.Content, a.ContentNote, prevMissing = diffContent(b.Files, path, file, prev[path])
			a.Previous = prev[path]
			if prevMissing && hadTargets {
				missing = append(missing, content.MissingContent(path, true))
			}
		} else {
			a.ContentNote = "the bundle carries no bytes for this target: content diffs were not available; only metadata and provenance were reviewed"
			missing = append(missing, content.MissingContent(path, false))
		}
		r.Artifacts = append(r.Artifacts, a)
	}
	r.Risks = append(r.Risks, missing...)
	if err := content.RequireContent(v.policy.RequireContentReview, missing); err != nil {
		return refuse(RulePolicy, "%v", err)
	}
	r.ContentAvailable = absent == 0
	if absent > 0 {
		r.ContentNote = fmt.Sprintf("content diffs were not available for %d of %d new or changed targets (the bundle carried no artifact bytes, for example over QR): only metadata and provenance were reviewed", absent, present+absent)
	}
	return nil
}

// checkTargetFile compares a bundle file with the target's signed length
// (before reading it) and every signed hash (in one streaming pass), and
// returns the artifact's digests for the provenance check.
func checkTargetFile(path string, tf *metadata.TargetFiles, f *bundleFile) (provenance.Artifact, error) {
	var art provenance.Artifact
	if f.size != tf.Length {
		return art, fmt.Errorf("is %d bytes, the metadata says %d", f.size, tf.Length)
	}
	if len(tf.Hashes) == 0 {
		return art, errors.New("has no hashes in the metadata")
	}
	for alg := range tf.Hashes {
		if alg != "sha256" && alg != "sha512" {
			return art, fmt.Errorf("has hash algorithm %q, which the appliance cannot check", alg)
		}
	}
	art, err := provenance.ArtifactFromReader(path[strings.LastIndex(path, "/")+1:], io.NewSectionReader(f.r, 0, f.size))
	if err != nil {
		return art, err
	}
	for alg, want := range tf.Hashes {
		got := art.SHA256
		if alg == "sha512" {
			got = art.SHA512
		}
		if !slices.Equal(got, []byte(want)) {
			return art, fmt.Errorf("does not match its %s in the metadata", alg)
		}
	}
	return art, nil
}

// artifactFromDigest is the artifact of a target whose bytes did not
// travel, known by its signed digest.
func artifactFromDigest(path string, tf *metadata.TargetFiles) (provenance.Artifact, error) {
	name := path[strings.LastIndex(path, "/")+1:]
	for _, alg := range []string{"sha512", "sha256"} {
		if h, ok := tf.Hashes[alg]; ok {
			return provenance.ArtifactFromDigest(name, alg, hex.EncodeToString(h))
		}
	}
	return provenance.Artifact{}, errors.New("no sha512 or sha256 hash to match provenance against")
}

// diffContent diffs a target's bytes against its previous release; missing
// reports that there was no readable previous release to compare with.
func diffContent(files fs.FS, path string, f *bundleFile, prevFile string) (d *content.Diff, note string, missing bool) {
	lim := content.DefaultLimits()
	name := path[strings.LastIndex(path, "/")+1:]
	cur := content.Artifact{Name: name, R: f.r, Size: f.size}
	var prev *content.Artifact
	if prevFile != "" {
		pf, err := openCapped(files, prevFile, lim.MaxArchiveBytes)
		if err != nil {
			note, missing = "previous release could not be read: "+err.Error()+"; every file is shown as added", true
		} else {
			defer pf.Close()
			prev = &content.Artifact{Name: prevFile[strings.LastIndex(prevFile, "/")+1:], R: pf.r, Size: pf.size}
		}
	} else {
		note, missing = "no previous release in the bundle: every file is shown as added", true
	}
	d, err := content.CompareArtifacts(prev, cur, lim)
	var ae *content.ArtifactError
	if errors.As(err, &ae) && ae.Previous {
		note, missing = "previous release could not be read: "+err.Error()+"; every file is shown as added", true
		d, err = content.CompareArtifacts(nil, cur, lim)
	}
	if err != nil {
		return nil, "content could not be read: " + err.Error(), false
	}
	return d, note, missing
}

// bundleFile is a regular bundle file open for reading at offsets.
type bundleFile struct {
	f    fs.File
	r    io.ReaderAt
	size int64
}

func (b *bundleFile) Close() error { return b.f.Close() }

// openCapped opens a regular bundle file of at most limit bytes, refusing
// a larger one from its size before reading it.
func openCapped(fsys fs.FS, name string, limit int64) (*bundleFile, error) {
	f, err := fsys.Open(name)
	if err != nil {
		return nil, err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		f.Close()
		return nil, fmt.Errorf("%s is not a regular file", content.Visible(name))
	}
	if fi.Size() > limit {
		f.Close()
		return nil, fmt.Errorf("%s is %d bytes, over the %d-byte cap", content.Visible(name), fi.Size(), limit)
	}
	if ra, ok := f.(io.ReaderAt); ok {
		return &bundleFile{f: f, r: ra, size: fi.Size()}, nil
	}
	// A file system without ReadAt: read it, within the cap.
	b, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		f.Close()
		return nil, err
	}
	if int64(len(b)) > limit {
		f.Close()
		return nil, fmt.Errorf("%s is over the %d-byte cap", content.Visible(name), limit)
	}
	return &bundleFile{f: f, r: bytesReaderAt(b), size: int64(len(b))}, nil
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
