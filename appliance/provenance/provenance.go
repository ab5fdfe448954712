// Package provenance verifies, fully offline, the Sigstore provenance of a
// release artifact and checks it against the package's trusted-publisher
// policy, producing the facts the review screen shows.
//
// Verification uses sigstore-go against a Sigstore trusted root that the
// caller passes as bytes (the appliance pins trusted_root.json in its state).
// Nothing here fetches anything: the trusted material is built only with
// root.NewTrustedRootFromJSON, there is no TUF client and no network code, and
// a test checks the package's imports to keep it so.
//
// Nothing depends on the wall clock either. A bundle's certificate chain is
// validated at the times the bundle proves — Rekor integrated times under
// signed entry timestamps, or RFC 3161 signed timestamps — and at least one
// such time and at least one verified transparency-log entry are required.
// The validity windows of the trusted root's CAs, logs and keys are compared
// with those proven times, never with "now"; so a bundle that verifies today
// verifies on any later day with the same pinned root.
//
// What is checked, in order: the bundle parses within caps; it carries a DSSE
// envelope with an in-toto statement signed by a Fulcio certificate; the
// artifact's digest (sha512, as npm uses, or sha256) equals a subject digest,
// and the subject name is the expected one when the caller names it; the
// Rekor entry (inclusion promise and/or proof) matches the envelope; the
// certificate chains to a Fulcio CA of the trusted root at the proven time and
// carries a valid embedded SCT; the DSSE signature verifies; the SLSA
// statement's repository, commit, ref, workflow and trigger agree with the
// certificate. Policy.Evaluate then checks who published it.
//
// A Verifier is immutable after New and safe for concurrent use.
package provenance

import (
	"crypto/sha256"
	"crypto/sha512"
	"encoding/hex"
	"fmt"
	"io"
	"strings"
	"unicode"

	"github.com/sigstore/sigstore-go/pkg/bundle"
	"github.com/sigstore/sigstore-go/pkg/root"
	"github.com/sigstore/sigstore-go/pkg/tlog"
	"github.com/sigstore/sigstore-go/pkg/verify"
)

// Caps on inputs.
const (
	MaxBundleBytes      = 1 << 20  // one Sigstore bundle (real ones are 2–12 KB)
	MaxTrustedRootBytes = 1 << 20  // trusted_root.json (the public-good one is ~7 KB)
	MaxNPMKeysBytes     = 64 << 10 // npm-keys.json (~2 KB)
)

// Config is the pinned trust the Verifier uses. Both fields are bytes the
// appliance keeps in its state; nothing is ever fetched.
type Config struct {
	// TrustedRoot is a Sigstore trusted_root.json (Fulcio CAs, Rekor logs,
	// CT logs, timestamp authorities). Required.
	TrustedRoot []byte
	// NPMKeys is the npm registry's keys file (npm-keys.json, as shipped in
	// @sigstore/tuf). Optional; without it VerifyPublish refuses.
	NPMKeys []byte
}

// Verifier checks provenance bundles against pinned trust.
type Verifier struct {
	trusted   *root.TrustedRoot
	sigstore  *verify.Verifier
	npm       *verify.Verifier // nil without npm keys
	npmKeyIDs []string
}

// New builds a Verifier from pinned trust.
func New(cfg Config) (*Verifier, error) {
	if len(cfg.TrustedRoot) == 0 {
		return nil, &Refusal{What: "trusted root", Reason: "none given: pin a sigstore trusted_root.json", Kind: ErrConfig}
	}
	if len(cfg.TrustedRoot) > MaxTrustedRootBytes {
		return nil, &Refusal{What: "trusted root", Kind: ErrConfig,
			Reason: fmt.Sprintf("%d bytes, the limit is %d", len(cfg.TrustedRoot), MaxTrustedRootBytes)}
	}
	tr, err := root.NewTrustedRootFromJSON(cfg.TrustedRoot)
	if err != nil {
		return nil, &Refusal{What: "trusted root", Kind: ErrConfig, Cause: err,
			Reason: "not a valid sigstore trusted_root.json: " + oneLineLong(err.Error())}
	}
	sv, err := verify.NewVerifier(tr,
		verify.WithTransparencyLog(1),
		verify.WithObserverTimestamps(1),
		verify.WithSignedCertificateTimestamps(1),
		verify.WithoutStatementPredicate())
	if err != nil {
		return nil, fmt.Errorf("provenance: configure verifier: %w", err)
	}
	v := &Verifier{trusted: tr, sigstore: sv}
	if len(cfg.NPMKeys) > 0 {
		keys, ids, err := parseNPMKeys(cfg.NPMKeys)
		if err != nil {
			return nil, &Refusal{What: "npm registry keys", Kind: ErrConfig, Cause: err, Reason: err.Error()}
		}
		v.npm, err = verify.NewVerifier(root.TrustedMaterialCollection{tr, keys},
			verify.WithTransparencyLog(1),
			verify.WithObserverTimestamps(1),
			verify.WithoutStatementPredicate())
		if err != nil {
			return nil, fmt.Errorf("provenance: configure npm verifier: %w", err)
		}
		v.npmKeyIDs = ids
	}
	return v, nil
}

// Artifact identifies the bytes a bundle must be about. Build it with
// ArtifactFromBytes, ArtifactFromReader or ArtifactFromDigest.
type Artifact struct {
	// Name is the artifact's file name, used in messages (e.g. "sigstore-2.0.0.tgz").
	Name string
	// SHA512 and SHA256 are raw digests; at least one is set.
	SHA512, SHA256 []byte
	// Subject, when set, is the in-toto subject name the provenance must
	// carry, e.g. NPMSubject("sigstore", "2.0.0"). Leave it empty only when
	// the digest alone identifies the release.
	Subject string
}

// ArtifactFromBytes hashes the artifact's bytes.
func ArtifactFromBytes(name string, b []byte) Artifact {
	s512 := sha512.Sum512(b)
	s256 := sha256.Sum256(b)
	return Artifact{Name: name, SHA512: s512[:], SHA256: s256[:]}
}

// ArtifactFromReader hashes the artifact as it streams from r.
func ArtifactFromReader(name string, r io.Reader) (Artifact, error) {
	h512, h256 := sha512.New(), sha256.New()
	if _, err := io.Copy(io.MultiWriter(h512, h256), r); err != nil {
		return Artifact{}, fmt.Errorf("provenance: hash %s: %w", oneLine(name), err)
	}
	return Artifact{Name: name, SHA512: h512.Sum(nil), SHA256: h256.Sum(nil)}, nil
}

// ArtifactFromDigest takes a digest as the bundle manifest lists it:
// algorithm "sha512" or "sha256" and lowercase hex.
func ArtifactFromDigest(name, algorithm, hexDigest string) (Artifact, error) {
	d, err := hex.DecodeString(hexDigest)
	a := Artifact{Name: name}
	switch {
	case err != nil || hexDigest != strings.ToLower(hexDigest):
		return a, fmt.Errorf("provenance: %s digest of %s is not lowercase hex", oneLine(algorithm), oneLine(name))
	case algorithm == "sha512" && len(d) == sha512.Size:
		a.SHA512 = d
	case algorithm == "sha256" && len(d) == sha256.Size:
		a.SHA256 = d
	default:
		return a, fmt.Errorf("provenance: digest of %s must be sha512 (128 hex digits) or sha256 (64), got %s with %d hex digits",
			oneLine(name), oneLine(algorithm), len(hexDigest))
	}
	return a, nil
}

// NPMSubject is the in-toto subject name npm gives a package version:
// pkg:npm/NAME@VERSION, with a scope's leading "@" written %40.
func NPMSubject(name, version string) string {
	if strings.HasPrefix(name, "@") {
		name = "%40" + name[1:]
	}
	return "pkg:npm/" + name + "@" + version
}

func (a Artifact) digests() []Digest {
	var ds []Digest
	if len(a.SHA512) == sha512.Size {
		ds = append(ds, Digest{"sha512", hex.EncodeToString(a.SHA512)})
	}
	if len(a.SHA256) == sha256.Size {
		ds = append(ds, Digest{"sha256", hex.EncodeToString(a.SHA256)})
	}
	return ds
}

func (a Artifact) name() string {
	if a.Name == "" {
		return "artifact"
	}
	return a.Name
}

// parsed is a bundle that passed parsing and the artifact checks but not yet
// the cryptographic ones.
type parsed struct {
	b         *bundle.Bundle
	mediaType string
	payload   []byte
	st        *statement
	subject   *subject
	digest    Digest
}

// parseBundle parses a Sigstore bundle carrying a DSSE in-toto statement and
// matches the statement's subject to the artifact. Nothing is verified yet.
func parseBundle(data []byte, a Artifact, what string) (*parsed, *Refusal) {
	refuse := func(kind error, cause error, format string, args ...any) *Refusal {
		return &Refusal{What: what, Artifact: a.name(), Kind: kind, Cause: cause, Reason: fmt.Sprintf(format, args...)}
	}
	if len(data) > MaxBundleBytes {
		return nil, refuse(ErrMalformed, nil, "bundle is %d bytes, the limit is %d", len(data), MaxBundleBytes)
	}
	if err := checkJSON(data, "bundle"); err != nil {
		return nil, refuse(ErrMalformed, err, "%v", err)
	}
	var b bundle.Bundle
	if err := b.UnmarshalJSON(data); err != nil {
		return nil, refuse(ErrMalformed, err, "not a valid sigstore bundle: %s", oneLine(err.Error()))
	}
	p := &parsed{b: &b, mediaType: b.GetMediaType()}
	env := b.GetDsseEnvelope()
	if env == nil {
		return nil, refuse(ErrMalformed, nil, "bundle carries no dsse envelope (a message signature is not an attestation)")
	}
	if env.GetPayloadType() != InTotoPayloadType {
		return nil, refuse(ErrMalformed, nil, "dsse payload type is %s, expected %s", oneLine(env.GetPayloadType()), InTotoPayloadType)
	}
	if len(env.GetSignatures()) != 1 {
		return nil, refuse(ErrMalformed, nil, "dsse envelope has %d signatures, expected exactly 1", len(env.GetSignatures()))
	}
	p.payload = env.GetPayload()
	st, err := parseStatement(p.payload)
	if err != nil {
		return nil, refuse(ErrMalformed, err, "%v", err)
	}
	p.st = st
	sub, d, err := st.matchSubject(a, what)
	if err != nil {
		return p, refuse(ErrMismatch, err, "%v", err)
	}
	p.subject, p.digest = sub, d
	if a.Subject != "" && sub.Name != a.Subject {
		return p, refuse(ErrMismatch, nil, "bundle is for %s, expected %s: use the bundle published with this release", oneLine(sub.Name), oneLine(a.Subject))
	}
	return p, nil
}

// Verify verifies one provenance bundle (Sigstore bundle JSON) for the
// artifact. It returns the facts found so far even when it refuses, with
// Verified false and the failed check last; the error is then a *Refusal.
// Verify does not apply a publisher policy: see Policy.Evaluate and Review.
func (v *Verifier) Verify(bundleJSON []byte, a Artifact) (*Facts, error) {
	f := &Facts{Artifact: a.name(), Present: true}
	p, r := parseBundle(bundleJSON, a, "provenance")
	if p != nil {
		f.BundleMediaType = p.mediaType
		f.PredicateType = p.st.PredicateType
		f.SubjectName = p.st.Subject[0].Name
	}
	if r != nil {
		f.fail(stepFor(r.Kind), r.Reason)
		return f, r
	}
	refuse := func(kind error, step string, cause error, format string, args ...any) (*Facts, error) {
		reason := fmt.Sprintf(format, args...)
		f.fail(step, reason)
		return f, &Refusal{What: "provenance", Artifact: f.Artifact, Kind: kind, Cause: cause, Reason: reason}
	}
	f.pass("bundle", fmt.Sprintf("%s with a dsse envelope of an in-toto statement", oneLine(p.mediaType)))
	f.SubjectName, f.SubjectDigest = p.subject.Name, p.digest
	f.pass("artifact digest", fmt.Sprintf("%s of %s equals the digest of subject %s", p.digest.Algorithm, f.Artifact, oneLine(p.subject.Name)))
	if a.Subject != "" {
		f.pass("subject name", "subject is "+oneLine(a.Subject)+" as expected")
	}
	vc, err := p.b.VerificationContent()
	if err != nil || vc.Certificate() == nil {
		return refuse(ErrUnverified, "certificate", err, "bundle has no fulcio certificate: provenance must be signed by a ci identity, not a key")
	}
	if entries, _ := p.b.TlogEntries(); len(entries) == 0 {
		return refuse(ErrUnverified, "transparency log", nil, "bundle has no transparency log entry: provenance must be logged in rekor to be verified offline")
	}
	if p.st.PredicateType != SLSAProvenanceV02 && p.st.PredicateType != SLSAProvenanceV1 {
		return refuse(ErrMalformed, "statement", nil, "predicate type %s is not SLSA provenance v0.2 or v1", oneLine(p.st.PredicateType))
	}
	bf, err := predicateFacts(p.st.PredicateType, p.st.Predicate)
	if err != nil {
		return refuse(ErrMalformed, "statement", err, "%v", err)
	}
	f.Builder, f.BuildType = bf.Builder, bf.BuildType

	digest, _ := hex.DecodeString(p.digest.Hex)
	res, err := v.sigstore.Verify(p.b, verify.NewPolicy(verify.WithArtifactDigest(p.digest.Algorithm, digest), verify.WithoutIdentitiesUnsafe()))
	if err != nil {
		step, hint := classify(err)
		return refuse(ErrUnverified, step, err, "%s check failed: %s%s", step, oneLineLong(err.Error()), hint)
	}
	v.recordLog(f, p.b, res)
	if res.Signature == nil || res.Signature.Certificate == nil {
		return refuse(ErrUnverified, "certificate", nil, "verified bundle has no certificate summary")
	}
	f.pass("certificate chain", "leaf chains to a fulcio ca of the pinned trusted root at the verified time")
	f.pass("certificate transparency", "embedded signed certificate timestamp verified against a pinned ct log")
	f.pass("signature", "dsse signature verified with the certificate's key")

	id, err := certIdentity(*res.Signature.Certificate)
	if err != nil {
		return refuse(ErrUnverified, "certificate identity", err, "%v", err)
	}
	f.Issuer, f.SAN, f.CertificateIssuer = id.Issuer, id.SAN, id.CAName
	f.Repository, f.Commit, f.Ref, f.Workflow, f.Trigger = id.Repository, id.Commit, id.Ref, id.Workflow, id.Trigger
	f.RunnerEnvironment, f.RunURL = id.RunnerEnvironment, id.RunURL
	if f.RunURL == "" && bf.RunURL != "" {
		f.RunURL, f.RunURLFromStatement = bf.RunURL, true
	}
	if f.Issuer == "" || f.Repository == "" || f.Commit == "" {
		return refuse(ErrUnverified, "certificate identity", nil,
			"certificate names no ci issuer, repository or commit: only ci-built provenance (e.g. github actions) can be checked against a publisher")
	}
	f.pass("certificate identity", fmt.Sprintf("issuer %s, repository %s, commit %s", oneLine(f.Issuer), oneLine(f.Repository), oneLine(f.Commit)))

	for _, c := range []struct{ name, stmt, cert string }{
		{"source repository", bf.Repository, f.Repository},
		{"commit", bf.Commit, f.Commit},
		{"source ref", bf.Ref, f.Ref},
		{"workflow", bf.Workflow, f.Workflow},
		{"trigger", bf.Trigger, f.Trigger},
		{"run", bf.RunURL, f.RunURL},
	} {
		if c.stmt != "" && c.cert != "" && c.stmt != c.cert {
			return refuse(ErrUnverified, "statement vs certificate", nil,
				"the statement says the %s is %s but the signing certificate says %s: the provenance was not produced by the build it claims",
				c.name, oneLine(c.stmt), oneLine(c.cert))
		}
	}
	f.pass("statement vs certificate", "statement's repository, commit, ref, workflow, trigger and run agree with the certificate")
	f.Verified = true
	return f, nil
}

// recordLog fills the log and timestamp facts from a verified result.
func (v *Verifier) recordLog(f *Facts, b *bundle.Bundle, res *verify.VerificationResult) {
	for _, ts := range res.VerifiedTimestamps {
		kind := "transparency log"
		if ts.Type == "TimestampAuthority" {
			kind = "timestamp authority"
		}
		f.Timestamps = append(f.Timestamps, Timestamp{Kind: kind, URI: ts.URI, Time: ts.Timestamp.UTC()})
	}
	// Report the entry whose integrated time was verified (sigstore-go
	// skips entries the pinned root cannot verify); without one (an entry
	// with only an inclusion proof, timed by a timestamp authority), the
	// first entry of a pinned log, which sigstore-go then required to verify.
	entries, _ := b.TlogEntries()
	logs := v.trusted.RekorLogs()
	var chosen *tlog.Entry
	for pass := 0; pass < 2 && chosen == nil; pass++ {
		for _, e := range entries {
			if _, ok := logs[hex.EncodeToString([]byte(e.LogKeyID()))]; !ok {
				continue
			}
			timed := false
			for _, ts := range f.Timestamps {
				timed = timed || (ts.Kind == "transparency log" && ts.Time.Equal(e.IntegratedTime()))
			}
			if timed || pass == 1 {
				chosen = e
				break
			}
		}
	}
	if chosen != nil {
		f.LogIndex = chosen.LogIndex()
		f.LogID = hex.EncodeToString([]byte(chosen.LogKeyID()))
		f.IntegratedTime = chosen.IntegratedTime().UTC()
		var how []string
		if chosen.HasInclusionPromise() {
			how = append(how, "inclusion promise")
		}
		if chosen.HasInclusionProof() {
			how = append(how, "inclusion proof")
		}
		f.pass("transparency log", fmt.Sprintf("rekor entry %d verified (%s)", f.LogIndex, strings.Join(how, ", ")))
	}
	for _, ts := range f.Timestamps {
		f.pass("timestamp", fmt.Sprintf("%s time %s", ts.Kind, ts.Time.Format("2006-01-02T15:04:05Z")))
	}
}

// classify names the step of a sigstore-go error and adds a hint.
func classify(err error) (step, hint string) {
	s := err.Error()
	switch {
	case strings.Contains(s, "failed to verify log inclusion"):
		return "transparency log", ": the bundle was altered after it was logged, or its log is not in the pinned trusted root"
	case strings.Contains(s, "failed to verify timestamps"):
		return "timestamp", ": the bundle proves no time from a trusted log or timestamp authority"
	case strings.Contains(s, "failed to verify leaf certificate"):
		return "certificate chain", ": the certificate was not issued by a fulcio ca of the pinned trusted root"
	case strings.Contains(s, "failed to verify signed certificate timestamp"):
		return "certificate transparency", ": the certificate's sct is not from a ct log of the pinned trusted root"
	case strings.Contains(s, "does not match"):
		return "artifact digest", ": the artifact was altered or the bundle belongs to another release"
	case strings.Contains(s, "failed to verify signature"):
		return "signature", ": the envelope was altered"
	}
	return "sigstore verification", ""
}

func stepFor(kind error) string {
	switch kind {
	case ErrMismatch:
		return "artifact digest"
	case ErrMalformed:
		return "bundle"
	}
	return "verification"
}

// oneLineLong renders a library's error message on one line: whitespace
// runs become one space, other unprintable characters become '?', and the
// text is capped.
func oneLineLong(s string) string {
	s = strings.Join(strings.Fields(strings.ToValidUTF8(s, "?")), " ")
	s = strings.Map(func(r rune) rune {
		if r > unicode.MaxASCII || !unicode.IsPrint(r) {
			return '?'
		}
		return r
	}, s)
	if len(s) > 2*maxShown {
		s = s[:2*maxShown] + "…"
	}
	return s
}
