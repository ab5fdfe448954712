package tuf

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/secure-systems-lab/go-securesystemslib/cjson"
	"github.com/theupdateframework/go-tuf/v2/metadata"
)

// Targets is parsed targets metadata (top-level or delegated) in the lean
// form verification and target lookup need: the header, the signatures,
// the bytes the signatures are over, the delegations, and the targets,
// looked up one at a time. It is what ParseTargets returns, on either path:
//
//   - fast: the received signed bytes are already canonical (as Airlock
//     writes them), or canonical once the whitespace between tokens is
//     removed (as python-tuf writes them). They are checked in one pass and
//     kept as they are, and each target entry is decoded only when it is
//     looked up;
//   - slow: anything else (unsorted keys, other escapes, uppercase hex,
//     unknown fields) is parsed strictly into go-tuf's types and encoded
//     canonically again.
//
// Both paths accept the same inputs with the same meaning; the fast path
// only takes what it can prove the slow path would re-encode to the same
// bytes, and leaves everything else to it (TestFastPathAgreesWithSlowPath,
// FuzzTargetsFastSlow).
type Targets struct {
	Header     Header
	Signatures []metadata.Signature
	// Delegations is nil when the role delegates nothing.
	Delegations *metadata.Delegations

	// payload is the canonical signed part: what signatures are over.
	payload []byte
	// fast path: entries sorted by key, spans into payload.
	index []targetSpan
	// slow path: the decoded targets.
	full map[string]*metadata.TargetFiles
}

// targetSpan locates one target entry in the payload: its key's contents
// and its value.
type targetSpan struct {
	ks, ke, vs, ve int32
	esc            bool
}

// Payload returns the canonical bytes the signatures are over.
func (t *Targets) Payload() []byte { return t.payload }

// Len returns the number of targets.
func (t *Targets) Len() int {
	if t.full != nil {
		return len(t.full)
	}
	return len(t.index)
}

// Target returns the signed entry of a target path.
func (t *Targets) Target(path string) (*metadata.TargetFiles, bool) {
	if t.full != nil {
		tf, ok := t.full[path]
		return tf, ok && tf != nil
	}
	i := sort.Search(len(t.index), func(i int) bool { return !t.keyLess(i, path) })
	if i == len(t.index) || t.key(i) != path {
		return nil, false
	}
	e := t.index[i]
	var tf metadata.TargetFiles
	// The entry was checked when the metadata was parsed; decoding it with
	// go-tuf's own type keeps custom fields as go-tuf keeps them.
	if err := json.Unmarshal(t.payload[e.vs:e.ve], &tf); err != nil {
		return nil, false
	}
	tf.Path = path
	return &tf, true
}

// Paths returns every target path, sorted.
func (t *Targets) Paths() []string {
	out := make([]string, 0, t.Len())
	if t.full != nil {
		for p := range t.full {
			out = append(out, p)
		}
		sort.Strings(out)
		return out
	}
	for i := range t.index {
		out = append(out, t.key(i))
	}
	return out
}

func (t *Targets) key(i int) string {
	e := t.index[i]
	return unescape(t.payload[e.ks:e.ke])
}

func (t *Targets) keyLess(i int, path string) bool {
	e := t.index[i]
	if e.esc {
		return t.key(i) < path
	}
	return string(t.payload[e.ks:e.ke]) < path
}

// ParseTargets parses targets metadata strictly (see ParseStrict), on the
// fast path when its signed part is already canonical.
func ParseTargets(raw []byte) (*Targets, error) {
	if t := parseTargetsFast(raw); t != nil {
		return t, nil
	}
	return parseTargetsSlow(raw)
}

// parseTargetsSlow is ParseStrict and a canonical re-encoding.
func parseTargetsSlow(raw []byte) (*Targets, error) {
	m, err := ParseStrict[metadata.TargetsType](raw)
	if err != nil {
		return nil, err
	}
	payload, err := Canonical(m)
	if err != nil {
		return nil, fmt.Errorf("canonical form: %w", err)
	}
	full := m.Signed.Targets
	if full == nil {
		full = map[string]*metadata.TargetFiles{}
	}
	return &Targets{Header: header(m), Signatures: m.Signatures, Delegations: m.Signed.Delegations, payload: payload, full: full}, nil
}

// parseTargetsFast returns nil whenever it cannot show that raw is strict
// JSON whose signed part go-tuf would decode and cjson encode back to the
// same bytes; the slow path then decides. Metadata that differs from that
// only by whitespace between tokens (python-tuf indents what it writes) is
// compacted first: whitespace between tokens changes no value, so the
// compacted signed part is what the slow path would encode.
func parseTargetsFast(raw []byte) *Targets {
	if t := scanTargets(raw); t != nil {
		return t
	}
	if len(raw) > MaxMetadataBytes || !bytes.ContainsAny(raw, " \t\n\r") {
		return nil
	}
	var buf bytes.Buffer
	buf.Grow(len(raw))
	if json.Compact(&buf, raw) != nil {
		return nil
	}
	return scanTargets(buf.Bytes())
}

// scanTargets is the fast path over raw as it is.
func scanTargets(raw []byte) *Targets {
	if len(raw) > MaxMetadataBytes || len(raw) > 1<<31-1 || !utf8.Valid(raw) {
		return nil
	}
	s := &cscan{b: raw, ws: true}
	t := &Targets{}
	var signedSpan [2]int
	seen := 0
	ok := s.object(0, func(ks, ke int, esc bool) bool {
		switch string(raw[ks:ke]) {
		case "signatures":
			if !t.fastSignatures(s) {
				return false
			}
			seen |= 1
		case "signed":
			s.skip()
			s.ws = false
			signedSpan[0] = s.i
			if !t.fastSigned(s) {
				return false
			}
			signedSpan[1] = s.i
			s.ws = true
			seen |= 2
		default:
			return false
		}
		return true
	})
	if !ok || seen != 3 {
		return nil
	}
	s.skip()
	if s.i != len(raw) {
		return nil
	}
	t.payload = raw[signedSpan[0]:signedSpan[1]]
	// Spans were recorded as offsets into raw; rebase them on the payload.
	off := int32(signedSpan[0])
	for i := range t.index {
		e := &t.index[i]
		e.ks, e.ke, e.vs, e.ve = e.ks-off, e.ke-off, e.vs-off, e.ve-off
	}
	return t
}

// fastSignatures scans the signatures array: objects of exactly a keyid
// and a hex sig, as go-tuf decodes them.
func (t *Targets) fastSignatures(s *cscan) bool {
	b := s.b
	if !s.expect('[') {
		return false
	}
	t.Signatures = []metadata.Signature{}
	if s.expect(']') {
		return true
	}
	for {
		if len(t.Signatures) >= MaxSignatures {
			return false
		}
		var sig metadata.Signature
		seen := 0
		if !s.object(2, func(ks, ke int, esc bool) bool {
			vs, ve, vesc, ok := s.str()
			if !ok || vesc {
				return false
			}
			switch string(b[ks:ke]) {
			case "keyid":
				sig.KeyID = string(b[vs:ve])
				seen |= 1
			case "sig":
				h := make([]byte, hex.DecodedLen(ve-vs))
				if len(h) == 0 || (ve-vs)%2 != 0 {
					return false
				}
				if _, err := hex.Decode(h, b[vs:ve]); err != nil {
					return false
				}
				sig.Signature = h
				seen |= 2
			default:
				return false
			}
			return true
		}) || seen != 3 {
			return false
		}
		t.Signatures = append(t.Signatures, sig)
		if s.expect(']') {
			return true
		}
		if !s.expect(',') {
			return false
		}
	}
}

// fastSigned scans the signed object: exactly _type, expires,
// spec_version, targets and version, and optionally delegations.
func (t *Targets) fastSigned(s *cscan) bool {
	const (
		fType = 1 << iota
		fExpires
		fSpec
		fTargets
		fVersion
	)
	seen := 0
	var delegSpan [2]int
	b := s.b
	ok := s.object(1, func(ks, ke int, esc bool) bool {
		switch string(b[ks:ke]) {
		case "_type":
			vs, ve, vesc, ok := s.str()
			if !ok || vesc || string(b[vs:ve]) != metadata.TARGETS {
				return false
			}
			t.Header.Type = metadata.TARGETS
			seen |= fType
		case "delegations":
			delegSpan[0] = s.i
			if s.peek() != '{' || !s.value(2) {
				return false
			}
			delegSpan[1] = s.i
		case "expires":
			vs, ve, vesc, ok := s.str()
			if !ok || vesc || CheckSpecDate(string(b[vs:ve])) != nil {
				return false
			}
			exp, err := time.Parse(SpecDateLayout, string(b[vs:ve]))
			if err != nil {
				return false
			}
			t.Header.Expires = exp
			seen |= fExpires
		case "spec_version":
			vs, ve, vesc, ok := s.str()
			if !ok || vesc || checkSpecVersion(string(b[vs:ve])) != nil {
				return false
			}
			t.Header.SpecVersion = string(b[vs:ve])
			seen |= fSpec
		case "targets":
			if !t.fastTargets(s) {
				return false
			}
			seen |= fTargets
		case "version":
			v, ok := s.integer()
			if !ok || v < 1 {
				return false
			}
			t.Header.Version = v
			seen |= fVersion
		default:
			// go-tuf keeps unknown fields as generic values, which do not
			// always encode back unchanged; the slow path decides.
			return false
		}
		return true
	})
	if !ok || seen != fType|fExpires|fSpec|fTargets|fVersion {
		return false
	}
	if delegSpan[1] > 0 {
		span := b[delegSpan[0]:delegSpan[1]]
		var dg metadata.Delegations
		if err := json.Unmarshal(span, &dg); err != nil {
			return false
		}
		canon, err := cjson.EncodeCanonical(&dg)
		if err != nil || !bytes.Equal(canon, span) {
			return false
		}
		t.Delegations = &dg
	}
	return true
}

// fastTargets scans the targets object, recording each entry.
func (t *Targets) fastTargets(s *cscan) bool {
	if s.peek() != '{' {
		return false
	}
	// One entry is at least `"":{"hashes":{},"length":0}` long.
	t.index = make([]targetSpan, 0, min(len(s.b)/32, MaxTargets))
	return s.object(2, func(ks, ke int, esc bool) bool {
		if len(t.index) >= MaxTargets {
			return false
		}
		vs := s.i
		if !fastTargetEntry(s) {
			return false
		}
		t.index = append(t.index, targetSpan{ks: int32(ks), ke: int32(ke), vs: int32(vs), ve: int32(s.i), esc: esc})
		return true
	})
}

// fastTargetEntry scans one target entry: hashes (non-empty, lowercase hex
// values) and length, and optionally a non-null custom value; nothing else.
func fastTargetEntry(s *cscan) bool {
	b := s.b
	seen := 0
	return s.object(3, func(ks, ke int, esc bool) bool {
		switch string(b[ks:ke]) {
		case "custom":
			if s.peek() == 'n' || !s.value(4) {
				return false
			}
		case "hashes":
			n := 0
			if !s.object(4, func(int, int, bool) bool {
				vs, ve, vesc, ok := s.str()
				n++
				return ok && !vesc && isLowerHex(b[vs:ve])
			}) || n == 0 {
				return false
			}
			seen |= 1
		case "length":
			if _, ok := s.integer(); !ok {
				return false
			}
			seen |= 2
		default:
			return false
		}
		return true
	}) && seen == 3
}

// errNullTarget is refused before go-tuf's decoder sees it: go-tuf
// dereferences every target entry while decoding.
var errNullTarget = errors.New("a target entry is null; each target needs a length and hashes")

// checkNullTargets refuses targets metadata with a null target entry.
func checkNullTargets(data []byte) error {
	if !bytes.Contains(data, []byte("null")) {
		return nil
	}
	var doc struct {
		Signed struct {
			Targets map[string]json.RawMessage `json:"targets"`
		} `json:"signed"`
	}
	if err := json.Unmarshal(data, &doc); err != nil {
		return err
	}
	for p, v := range doc.Signed.Targets {
		if strings.TrimSpace(string(v)) == "null" {
			return fmt.Errorf("target %q: %w", p, errNullTarget)
		}
	}
	return nil
}
