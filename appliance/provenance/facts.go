package provenance

import "time"

// Digest is one hash of an artifact, as named in an in-toto subject.
type Digest struct {
	Algorithm string // "sha512" or "sha256"
	Hex       string // lowercase hex
}

// Check is one verification step and its outcome, in the order it was done.
type Check struct {
	Name   string // short step name, e.g. "transparency log", "policy: repository"
	OK     bool
	Detail string // what was checked against what; untrusted text is included verbatim
}

// Timestamp is one verified time at which the signature existed.
type Timestamp struct {
	Kind string // "transparency log" or "timestamp authority"
	URI  string // the log or authority from the trusted root
	Time time.Time
}

// Facts is what the review screen shows about one artifact's provenance. Every
// string in it came from the bundle (attacker-chosen until Verified, and even
// then chosen by whoever controlled the signing workflow): show it escaped.
//
// Identity fields (Issuer through RunURL) come from the Fulcio certificate,
// which Fulcio issued from the CI's OIDC token; where a 2023 certificate lacks
// the newer extensions they come from the older ones, and RunURL may come from
// the statement (RunURLFromStatement says so). The statement's own claims
// about repository, commit, ref, workflow and trigger must agree with the
// certificate or verification fails.
type Facts struct {
	Artifact string // the caller's name for the artifact, e.g. "sigstore-2.0.0.tgz"
	Present  bool   // a provenance bundle was supplied
	Verified bool   // every cryptographic and consistency check passed

	BundleMediaType string
	PredicateType   string // https://slsa.dev/provenance/v0.2 or /v1
	SubjectName     string // e.g. pkg:npm/sigstore@2.0.0
	SubjectDigest   Digest // the subject digest that matched the artifact

	Issuer            string // OIDC issuer, e.g. https://token.actions.githubusercontent.com
	SAN               string // certificate subject alternative name (the signing workflow)
	CertificateIssuer string // the Fulcio CA that issued the leaf, as an X.509 name
	Repository        string // e.g. https://github.com/sigstore/sigstore-js
	Commit            string // source commit
	Ref               string // e.g. refs/heads/main, refs/tags/v1.0.0
	Workflow          string // top-level workflow path in Repository, e.g. .github/workflows/release.yml
	Trigger           string // e.g. push, release, workflow_dispatch
	RunnerEnvironment string // github-hosted or self-hosted, when the certificate says
	RunURL            string // the CI run, e.g. https://github.com/…/actions/runs/N/attempts/1

	RunURLFromStatement bool // RunURL was taken from the statement, the certificate has none

	Builder   string // SLSA builder id from the statement
	BuildType string // SLSA build type from the statement

	LogIndex       int64     // Rekor log index of the verified entry
	LogID          string    // hex key id of that log
	IntegratedTime time.Time // Rekor integrated time of that entry (UTC)
	Timestamps     []Timestamp

	Checks []Check

	// Publish holds the registry's publish attestation when one was supplied.
	Publish *PublishFacts
}

// PublishFacts is what the npm registry's "publish" attestation says: the
// registry, with its own key (no certificate), attests that it published this
// tarball under this name and version.
type PublishFacts struct {
	Verified       bool
	PredicateType  string
	SubjectName    string
	SubjectDigest  Digest
	Name           string
	Version        string
	Registry       string
	KeyID          string
	LogIndex       int64
	IntegratedTime time.Time
	Checks         []Check
}

func (f *Facts) pass(name, detail string) { f.Checks = append(f.Checks, Check{name, true, detail}) }
func (f *Facts) fail(name, detail string) { f.Checks = append(f.Checks, Check{name, false, detail}) }

func (p *PublishFacts) pass(name, detail string) {
	p.Checks = append(p.Checks, Check{name, true, detail})
}
func (p *PublishFacts) fail(name, detail string) {
	p.Checks = append(p.Checks, Check{name, false, detail})
}
