package tuf

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"path"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/theupdateframework/go-tuf/v2/metadata"
)

// Format versions of the wire formats. A reader refuses versions it does
// not know rather than guessing.
const (
	RequestFormat  = 1
	ResponseFormat = 1
)

// Ceremony kinds a request can ask for.
const (
	KindRelease    = "release"    // new version of a delegated role with new targets
	KindResign     = "resign"     // same content, later expiry
	KindDelegation = "delegation" // change of a delegating role's delegations
	KindRootRotate = "root"       // new root version
	KindEnrolment  = "enrolment"  // a new holder's key added to a role
)

// Caps on request content beyond the metadata caps.
const (
	MaxNoteBytes    = 16 << 10
	MaxBundlePath   = 512
	MaxRequestFiles = 10_000
)

// Request is request.json: everything the appliance needs to check and show
// what it is asked to sign. Every field is untrusted input.
type Request struct {
	Format int    `json:"airlock_request"`
	Kind   string `json:"kind"`
	Role   string `json:"role"`
	// Delegator is the role that lists Role's keys and threshold: "root"
	// for top-level roles, else the delegating targets role.
	Delegator string `json:"delegator"`
	// Metadata is the full unsigned new metadata of Role.
	Metadata json.RawMessage `json:"metadata"`
	// Current is Role's current signed metadata (absent for a new role).
	Current json.RawMessage `json:"current,omitempty"`
	// Chain is the chain of trust from root to Delegator.
	Chain Chain `json:"chain"`
	// Targets lists every target of the new metadata that the bundle
	// carries bytes for.
	Targets []TargetFile `json:"targets,omitempty"`
	// Previous maps targets to the previous release's files, for diffs.
	Previous []FileRef `json:"previous,omitempty"`
	// Provenance maps targets to their Sigstore bundles.
	Provenance []FileRef `json:"provenance,omitempty"`
	// Note is free text from CI, shown as untrusted.
	Note    string    `json:"note,omitempty"`
	Created time.Time `json:"created"`
}

// Chain is the chain of trust a request carries.
type Chain struct {
	// Root holds signed root versions in order, from the first the
	// appliance may not have to the newest.
	Root []json.RawMessage `json:"root"`
	// Delegators holds signed targets metadata from "targets" down to the
	// request's delegator (empty when the delegator is root).
	Delegators []json.RawMessage `json:"delegators,omitempty"`
}

// TargetFile describes one target and the bundle file that backs it.
type TargetFile struct {
	Path   string            `json:"path"`
	Length int64             `json:"length"`
	Hashes map[string]string `json:"hashes"`
	// File is the path inside the bundle (artifacts/...).
	File string `json:"file"`
}

// FileRef links a target path to a file in the bundle.
type FileRef struct {
	Target string `json:"target"`
	File   string `json:"file"`
}

// ParseRequest parses request.json strictly.
func ParseRequest(data []byte) (*Request, error) {
	if err := checkStrictJSON(data, MaxRequestBytes); err != nil {
		return nil, fmt.Errorf("request.json: %w", err)
	}
	var r Request
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&r); err != nil {
		return nil, fmt.Errorf("request.json: %w", err)
	}
	if err := r.validate(); err != nil {
		return nil, fmt.Errorf("request.json: %w", err)
	}
	return &r, nil
}

// Validate applies the checks ParseRequest makes to a request built in
// memory (Repository.BuildRequest makes them too).
func (r *Request) Validate() error { return r.validate() }

func (r *Request) validate() error {
	if r.Format != RequestFormat {
		return fmt.Errorf("format version %d is not supported (this appliance reads version %d); rebuild the bundle with a matching airlock", r.Format, RequestFormat)
	}
	switch r.Kind {
	case KindRelease, KindResign, KindDelegation, KindRootRotate, KindEnrolment:
	default:
		return fmt.Errorf("kind %q is not one of release, resign, delegation, root, enrolment", r.Kind)
	}
	if err := checkRoleName(r.Role); err != nil {
		return err
	}
	if err := checkRoleName(r.Delegator); err != nil {
		return fmt.Errorf("delegator: %w", err)
	}
	if len(r.Metadata) == 0 {
		return fmt.Errorf("no metadata to sign")
	}
	if len(r.Chain.Root) == 0 {
		return fmt.Errorf("chain of trust has no root")
	}
	if len(r.Chain.Root) > MaxRootChain {
		return fmt.Errorf("chain of trust has %d root versions, over the %d cap", len(r.Chain.Root), MaxRootChain)
	}
	if len(r.Targets)+len(r.Previous)+len(r.Provenance) > MaxRequestFiles {
		return fmt.Errorf("request names more than %d files", MaxRequestFiles)
	}
	if len(r.Note) > MaxNoteBytes || !utf8.ValidString(r.Note) {
		return fmt.Errorf("note is over %d bytes or not utf-8", MaxNoteBytes)
	}
	for i, t := range r.Targets {
		if err := checkTargetPath(t.Path); err != nil {
			return fmt.Errorf("targets[%d]: %w", i, err)
		}
		if err := checkBundlePath(t.File, "artifacts/"); err != nil {
			return fmt.Errorf("targets[%d] %q: %w", i, t.Path, err)
		}
		if t.Length < 0 {
			return fmt.Errorf("targets[%d] %q: negative length", i, t.Path)
		}
	}
	for i, f := range r.Previous {
		if err := checkBundlePath(f.File, "previous/"); err != nil {
			return fmt.Errorf("previous[%d]: %w", i, err)
		}
	}
	for i, f := range r.Provenance {
		if err := checkBundlePath(f.File, "provenance/"); err != nil {
			return fmt.Errorf("provenance[%d]: %w", i, err)
		}
	}
	return nil
}

func checkRoleName(name string) error {
	if name == "" || len(name) > 255 {
		return fmt.Errorf("role name %q is empty or over 255 bytes", name)
	}
	for _, r := range name {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-_.@", r)) {
			return fmt.Errorf("role name %q: only letters, digits and - _ . @ are allowed", name)
		}
	}
	if name == "." || name == ".." {
		return fmt.Errorf("role name %q is not allowed", name)
	}
	return nil
}

// checkTargetPath refuses target paths that could escape a target folder
// or that clients treat differently.
func checkTargetPath(p string) error {
	if p == "" || len(p) > MaxBundlePath {
		return fmt.Errorf("target path %q is empty or over %d bytes", p, MaxBundlePath)
	}
	if !utf8.ValidString(p) || strings.ContainsAny(p, "\\\x00") || strings.HasPrefix(p, "/") {
		return fmt.Errorf("target path %q: absolute, backslash, nul or invalid utf-8", p)
	}
	for _, r := range p {
		if r < 0x20 || r == 0x7f {
			return fmt.Errorf("target path %q: control character", p)
		}
	}
	for _, seg := range strings.Split(p, "/") {
		if seg == "" || seg == "." || seg == ".." {
			return fmt.Errorf("target path %q: empty, . or .. segment", p)
		}
	}
	return nil
}

func checkBundlePath(p, prefix string) error {
	if !strings.HasPrefix(p, prefix) {
		return fmt.Errorf("bundle file %q is not under %s", p, prefix)
	}
	if err := checkTargetPath(p); err != nil {
		return fmt.Errorf("bundle file: %w", err)
	}
	if path.Clean(p) != p {
		return fmt.Errorf("bundle file %q is not a clean path", p)
	}
	return nil
}

// Marshal encodes the request as indented JSON.
func (r *Request) Marshal() ([]byte, error) {
	return json.MarshalIndent(r, "", "  ")
}

// Payload is the metadata a request asks to sign, parsed, with the exact
// canonical bytes a signature covers and their SHA-256.
type Payload struct {
	Type      string
	Version   int64
	Expires   time.Time
	Canonical []byte
	SHA256    string
	Targets   *metadata.Metadata[metadata.TargetsType] // set for targets roles
	Root      *metadata.Metadata[metadata.RootType]    // set for root
}

// Payload parses the request's metadata and computes its canonical bytes.
func (r *Request) Payload() (*Payload, error) {
	var probe struct {
		Signed struct {
			Type string `json:"_type"`
		} `json:"signed"`
	}
	if err := json.Unmarshal(r.Metadata, &probe); err != nil {
		return nil, fmt.Errorf("metadata: %w", err)
	}
	p := &Payload{Type: probe.Signed.Type}
	var err error
	switch probe.Signed.Type {
	case metadata.TARGETS:
		p.Targets, err = ParseStrict[metadata.TargetsType](r.Metadata)
		if err == nil {
			p.Canonical, err = Canonical(p.Targets)
			h := header(p.Targets)
			p.Version, p.Expires = h.Version, h.Expires
			if len(p.Targets.Signed.Targets) > MaxTargets {
				err = fmt.Errorf("%d targets, over the %d cap", len(p.Targets.Signed.Targets), MaxTargets)
			}
			for name := range p.Targets.Signed.Targets {
				if err == nil {
					err = checkTargetPath(name)
				}
			}
		}
	case metadata.ROOT:
		p.Root, err = ParseStrict[metadata.RootType](r.Metadata)
		if err == nil {
			p.Canonical, err = Canonical(p.Root)
			h := header(p.Root)
			p.Version, p.Expires = h.Version, h.Expires
		}
	default:
		return nil, fmt.Errorf("metadata: the appliance signs root and targets roles, not %q", probe.Signed.Type)
	}
	if err != nil {
		return nil, fmt.Errorf("metadata: %w", err)
	}
	if (r.Role == metadata.ROOT) != (p.Type == metadata.ROOT) {
		return nil, fmt.Errorf("metadata: role %q with metadata of type %q", r.Role, p.Type)
	}
	p.SHA256 = SHA256Hex(p.Canonical)
	return p, nil
}

// SHA256Hex is the lowercase hex SHA-256 of b.
func SHA256Hex(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// Response is the signature response that leaves the appliance: small
// enough for one QR code.
type Response struct {
	Format       int         `json:"airlock_response"`
	Role         string      `json:"role"`
	Version      int64       `json:"version"`
	SignedSHA256 string      `json:"signed_sha256"`
	Signatures   []Signature `json:"signatures"`
	Holders      []string    `json:"holders"`
	CeremonyID   string      `json:"ceremony_id"`
	RecordSHA256 string      `json:"record_sha256,omitempty"`
	Dev          bool        `json:"development_keys,omitempty"`
}

// Signature is one signature in a response.
type Signature struct {
	KeyID string `json:"keyid"`
	Sig   string `json:"sig"`
}

// MaxResponseSignatures caps the signatures in one response.
const MaxResponseSignatures = 64

// ParseResponse parses a signature response strictly.
func ParseResponse(data []byte) (*Response, error) {
	if err := checkStrictJSON(data, MaxResponseBytes); err != nil {
		return nil, fmt.Errorf("response: %w", err)
	}
	var r Response
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&r); err != nil {
		return nil, fmt.Errorf("response: %w", err)
	}
	if r.Format != ResponseFormat {
		return nil, fmt.Errorf("response: format version %d is not supported (want %d)", r.Format, ResponseFormat)
	}
	if err := checkRoleName(r.Role); err != nil {
		return nil, fmt.Errorf("response: %w", err)
	}
	if r.Version < 1 {
		return nil, fmt.Errorf("response: version %d is below 1", r.Version)
	}
	if !isHex(r.SignedSHA256, 64) {
		return nil, fmt.Errorf("response: signed_sha256 is not 64 hex digits")
	}
	if r.RecordSHA256 != "" && !isHex(r.RecordSHA256, 64) {
		return nil, fmt.Errorf("response: record_sha256 is not 64 hex digits")
	}
	if len(r.Signatures) == 0 || len(r.Signatures) > MaxResponseSignatures {
		return nil, fmt.Errorf("response: %d signatures (want 1 to %d)", len(r.Signatures), MaxResponseSignatures)
	}
	for i, s := range r.Signatures {
		if !isHex(s.KeyID, 64) {
			return nil, fmt.Errorf("response: signatures[%d]: keyid is not 64 hex digits", i)
		}
		if len(s.Sig) == 0 || len(s.Sig)%2 != 0 || !isHex(s.Sig, len(s.Sig)) || len(s.Sig) > 2048 {
			return nil, fmt.Errorf("response: signatures[%d]: sig is not hex", i)
		}
	}
	for i, h := range r.Holders {
		if len(h) > 128 || !utf8.ValidString(h) {
			return nil, fmt.Errorf("response: holders[%d] is over 128 bytes or not utf-8", i)
		}
	}
	if len(r.CeremonyID) > 128 {
		return nil, fmt.Errorf("response: ceremony_id over 128 bytes")
	}
	return &r, nil
}

// Marshal encodes the response compactly.
func (r *Response) Marshal() ([]byte, error) { return json.Marshal(r) }

func isHex(s string, n int) bool {
	if len(s) != n {
		return false
	}
	for _, c := range s {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}
