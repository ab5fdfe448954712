package registry

import (
	"bytes"
	"crypto/sha1"
	"crypto/sha512"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
)

// Caps on what a publisher may send.
const (
	MaxPublishBytes    = 48 << 20 // one publish document, attachments base64-encoded
	MaxTarballBytes    = 32 << 20 // one decoded tarball
	MaxProvenanceBytes = 1 << 20  // one Sigstore bundle
	MaxNameBytes       = 214      // npm's own limit on package names
	MaxVersionBytes    = 256
	MaxSubmissionBytes = 4 << 20 // one signature response or signed metadata
	MaxSubmissions     = 16
	MaxUpstreamJSON    = 64 << 20 // a packument read from upstream
)

// Publish is a publish document npm sends (PUT /NAME or POST
// /-/stage/package/NAME), checked and decoded.
type Publish struct {
	Name       string
	Version    string
	Tag        string
	Manifest   json.RawMessage
	Tarball    []byte
	Shasum     string
	Integrity  string
	Provenance []byte // nil without --provenance
	Predicate  string // provenance predicate type
	// Forward is the document to send upstream: the provenance
	// attachment removed (Verdaccio refuses a second attachment).
	Forward []byte
}

type attachment struct {
	ContentType string `json:"content_type"`
	Data        string `json:"data"`
	Length      int64  `json:"length"`
}

// ParsePublish checks a publish document for package name as the URL names
// it: one version, one tarball whose length, SHA-1 and SHA-512 match the
// version's dist fields, at most one Sigstore bundle about that tarball.
func ParsePublish(name string, body []byte) (*Publish, error) {
	if len(body) > MaxPublishBytes {
		return nil, fmt.Errorf("publish document is %d bytes, the limit is %d", len(body), MaxPublishBytes)
	}
	if err := CheckName(name); err != nil {
		return nil, err
	}
	var doc map[string]json.RawMessage
	if err := json.Unmarshal(body, &doc); err != nil {
		return nil, fmt.Errorf("publish document: %v", err)
	}
	var docName string
	if err := json.Unmarshal(doc["name"], &docName); err != nil || docName != name {
		return nil, fmt.Errorf("publish document names %q, the URL names %q", docName, name)
	}
	var versions map[string]json.RawMessage
	if err := json.Unmarshal(doc["versions"], &versions); err != nil || len(versions) != 1 {
		return nil, errors.New("publish document must carry exactly one version")
	}
	p := &Publish{Name: name}
	for v, m := range versions {
		p.Version, p.Manifest = v, m
	}
	if err := CheckVersion(p.Version); err != nil {
		return nil, err
	}
	var man struct {
		Name    string `json:"name"`
		Version string `json:"version"`
		Dist    struct {
			Shasum    string `json:"shasum"`
			Integrity string `json:"integrity"`
		} `json:"dist"`
	}
	if err := json.Unmarshal(p.Manifest, &man); err != nil {
		return nil, fmt.Errorf("version %s: %v", p.Version, err)
	}
	if man.Name != name || man.Version != p.Version {
		return nil, fmt.Errorf("version manifest is %s@%s, the document publishes %s@%s", man.Name, man.Version, name, p.Version)
	}
	var tags map[string]string
	if err := json.Unmarshal(doc["dist-tags"], &tags); err != nil || len(tags) != 1 {
		return nil, errors.New("publish document must carry exactly one dist-tag")
	}
	for t, v := range tags {
		if v != p.Version {
			return nil, fmt.Errorf("dist-tag %s points at %s, not the published %s", t, v, p.Version)
		}
		if t == "" || len(t) > 128 || strings.ContainsAny(t, "/ \t\r\n%") {
			return nil, fmt.Errorf("dist-tag %q is not a valid tag", t)
		}
		p.Tag = t
	}
	var atts map[string]attachment
	if err := json.Unmarshal(doc["_attachments"], &atts); err != nil || len(atts) == 0 || len(atts) > 2 {
		return nil, errors.New("publish document must carry the tarball and at most a provenance bundle in _attachments")
	}
	tgzName := UnscopedBase(name) + "-" + p.Version + ".tgz"
	provName := name + "-" + p.Version + ".sigstore" // npm sends the bundle as JSON text, not base64
	for k, a := range atts {
		switch {
		case k == tgzName || k == name+"-"+p.Version+".tgz":
			tgz, err := decodeAttachment(k, a, MaxTarballBytes)
			if err != nil {
				return nil, err
			}
			p.Tarball = tgz
		case strings.HasPrefix(a.ContentType, "application/vnd.dev.sigstore.bundle"):
			if k != provName {
				return nil, fmt.Errorf("provenance attachment %q: want %q", k, provName)
			}
			if len(a.Data) > MaxProvenanceBytes {
				return nil, fmt.Errorf("provenance attachment is %d bytes, the limit is %d", len(a.Data), MaxProvenanceBytes)
			}
			if a.Length != int64(len(a.Data)) || !json.Valid([]byte(a.Data)) {
				return nil, errors.New("provenance attachment: data must be the bundle's JSON text with its length")
			}
			p.Provenance = []byte(a.Data)
		default:
			return nil, fmt.Errorf("attachment %q is neither %s nor a Sigstore bundle", k, tgzName)
		}
	}
	if p.Tarball == nil {
		return nil, fmt.Errorf("publish document has no tarball attachment %s", tgzName)
	}
	s1 := sha1.Sum(p.Tarball)
	s512 := sha512.Sum512(p.Tarball)
	p.Shasum = hex.EncodeToString(s1[:])
	p.Integrity = "sha512-" + base64.StdEncoding.EncodeToString(s512[:])
	if man.Dist.Shasum != p.Shasum {
		return nil, fmt.Errorf("dist.shasum %q does not match the tarball (%s)", man.Dist.Shasum, p.Shasum)
	}
	if man.Dist.Integrity != "" && man.Dist.Integrity != p.Integrity {
		return nil, fmt.Errorf("dist.integrity does not match the tarball's SHA-512")
	}
	if p.Provenance != nil {
		pred, err := provenanceSubject(p.Provenance, name, p.Version, s512[:])
		if err != nil {
			return nil, fmt.Errorf("provenance bundle: %w", err)
		}
		p.Predicate = pred
		fwd := map[string]json.RawMessage{}
		for k, v := range doc {
			fwd[k] = v
		}
		keep := map[string]attachment{}
		for k, a := range atts {
			if k != provName {
				keep[k] = a
			}
		}
		one, err := json.Marshal(keep)
		if err != nil {
			return nil, err
		}
		fwd["_attachments"] = one
		var err2 error
		if p.Forward, err2 = json.Marshal(fwd); err2 != nil {
			return nil, err2
		}
	} else {
		p.Forward = body
	}
	return p, nil
}

func decodeAttachment(name string, a attachment, max int) ([]byte, error) {
	if len(a.Data) > base64.StdEncoding.EncodedLen(max) {
		return nil, fmt.Errorf("attachment %s is over the %d-byte cap", name, max)
	}
	b, err := base64.StdEncoding.DecodeString(a.Data)
	if err != nil {
		return nil, fmt.Errorf("attachment %s: data is not base64: %v", name, err)
	}
	if a.Length != int64(len(b)) {
		return nil, fmt.Errorf("attachment %s says %d bytes, its data is %d", name, a.Length, len(b))
	}
	return b, nil
}

// provenanceSubject checks that a Sigstore bundle's in-toto statement is
// about pkg:npm/NAME@VERSION with the tarball's SHA-512, and returns its
// predicate type. The signature chain is checked with --sigstore-root.
func provenanceSubject(bundle []byte, name, version string, sha512sum []byte) (string, error) {
	var b struct {
		DSSE *struct {
			Payload     string `json:"payload"`
			PayloadType string `json:"payloadType"`
		} `json:"dsseEnvelope"`
	}
	if err := json.Unmarshal(bundle, &b); err != nil {
		return "", err
	}
	if b.DSSE == nil || b.DSSE.PayloadType != "application/vnd.in-toto+json" {
		return "", errors.New("no DSSE envelope with an in-toto statement")
	}
	payload, err := base64.StdEncoding.DecodeString(b.DSSE.Payload)
	if err != nil {
		return "", fmt.Errorf("DSSE payload: %v", err)
	}
	var st struct {
		Subject []struct {
			Name   string            `json:"name"`
			Digest map[string]string `json:"digest"`
		} `json:"subject"`
		PredicateType string `json:"predicateType"`
	}
	if err := json.Unmarshal(payload, &st); err != nil {
		return "", fmt.Errorf("in-toto statement: %v", err)
	}
	want := "pkg:npm/" + strings.Replace(name, "@", "%40", 1) + "@" + version
	for _, s := range st.Subject {
		if s.Name != want && s.Name != "pkg:npm/"+name+"@"+version {
			continue
		}
		if s.Digest["sha512"] != hex.EncodeToString(sha512sum) {
			return "", fmt.Errorf("subject %s has another SHA-512 than the tarball", s.Name)
		}
		if st.PredicateType == "" || len(st.PredicateType) > 256 {
			return "", errors.New("statement has no usable predicateType")
		}
		return st.PredicateType, nil
	}
	return "", fmt.Errorf("statement has no subject %s", want)
}

// CheckName accepts npm package names: lower case, optional @scope/, URL
// safe characters, at most 214 bytes.
func CheckName(name string) error {
	if name == "" || len(name) > MaxNameBytes {
		return fmt.Errorf("package name %q: must be 1 to %d characters", clip(name), MaxNameBytes)
	}
	rest := name
	if strings.HasPrefix(name, "@") {
		scope, pkg, ok := strings.Cut(name[1:], "/")
		if !ok || scope == "" || pkg == "" {
			return fmt.Errorf("package name %q: a scoped name is @scope/name", clip(name))
		}
		if err := namePart(scope); err != nil {
			return fmt.Errorf("package name %q: %v", clip(name), err)
		}
		rest = pkg
	}
	if err := namePart(rest); err != nil {
		return fmt.Errorf("package name %q: %v", clip(name), err)
	}
	return nil
}

func namePart(s string) error {
	if s[0] == '.' || s[0] == '_' {
		return errors.New("may not start with . or _")
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || strings.ContainsRune("-._~", r)) {
			return fmt.Errorf("character %q is not allowed", r)
		}
	}
	return nil
}

// CheckVersion accepts semantic versions (digits, letters, . + -).
func CheckVersion(v string) error {
	if v == "" || len(v) > MaxVersionBytes || v[0] < '0' || v[0] > '9' {
		return fmt.Errorf("version %q is not a semantic version", clip(v))
	}
	for _, r := range v {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '-' || r == '+') {
			return fmt.Errorf("version %q: character %q is not allowed", clip(v), r)
		}
	}
	return nil
}

func clip(s string) string {
	if len(s) > 64 {
		return s[:64] + "…"
	}
	return s
}

// UnscopedBase is the name without its scope.
func UnscopedBase(name string) string {
	if i := strings.IndexByte(name, '/'); i >= 0 {
		return name[i+1:]
	}
	return name
}

// TargetPath is the TUF target of NAME@VERSION: npm's own tarball path,
// scope kept (@scope/pkg/-/pkg-1.0.0.tgz).
func TargetPath(name, version string) string {
	return name + "/-/" + UnscopedBase(name) + "-" + version + ".tgz"
}

// SignatureMessage is what npm registry signatures sign.
func SignatureMessage(name, version, integrity string) []byte {
	return []byte(name + "@" + version + ":" + integrity)
}

// compactJSON is json.Compact into a new slice.
func compactJSON(b []byte) []byte {
	var buf bytes.Buffer
	if json.Compact(&buf, b) != nil {
		return b
	}
	return buf.Bytes()
}
