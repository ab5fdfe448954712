package tuf

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/secure-systems-lab/go-securesystemslib/cjson"
	"github.com/theupdateframework/go-tuf/v2/metadata"
)

// compareFastSlow parses raw on both paths and fails when the fast path
// accepts what the slow path refuses, or reads it differently. It reports
// whether the fast path took the input.
func compareFastSlow(t testing.TB, raw []byte) bool {
	t.Helper()
	fast := parseTargetsFast(raw)
	slow, serr := parseTargetsSlow(raw)
	if fast == nil {
		return false
	}
	if serr != nil {
		t.Fatalf("fast path accepts what the slow path refuses (%v):\n%.300s", serr, raw)
	}
	if !bytes.Equal(fast.payload, slow.payload) {
		t.Fatalf("fast path signs over other bytes than the canonical form:\nfast %.200s\nslow %.200s", fast.payload, slow.payload)
	}
	if !fast.Header.Expires.Equal(slow.Header.Expires) || fast.Header.Version != slow.Header.Version ||
		fast.Header.Type != slow.Header.Type || fast.Header.SpecVersion != slow.Header.SpecVersion {
		t.Fatalf("headers differ: fast %+v, slow %+v", fast.Header, slow.Header)
	}
	if len(fast.Signatures) != len(slow.Signatures) {
		t.Fatalf("signatures differ: fast %d, slow %d", len(fast.Signatures), len(slow.Signatures))
	}
	for i := range fast.Signatures {
		f, s := fast.Signatures[i], slow.Signatures[i]
		if f.KeyID != s.KeyID || !bytes.Equal(f.Signature, s.Signature) {
			t.Fatalf("signature %d differs: fast %s %x, slow %s %x", i, f.KeyID, f.Signature, s.KeyID, s.Signature)
		}
	}
	fd, _ := cjson.EncodeCanonical(fast.Delegations)
	sd, _ := cjson.EncodeCanonical(slow.Delegations)
	if !bytes.Equal(fd, sd) {
		t.Fatalf("delegations differ:\nfast %s\nslow %s", fd, sd)
	}
	fp, sp := fast.Paths(), slow.Paths()
	if !reflect.DeepEqual(fp, sp) {
		t.Fatalf("target paths differ: fast %d, slow %d", len(fp), len(sp))
	}
	for _, p := range fp {
		ft, fok := fast.Target(p)
		st, sok := slow.Target(p)
		if !fok || !sok {
			t.Fatalf("target %q: fast found %v, slow found %v", p, fok, sok)
		}
		fj, _ := cjson.EncodeCanonical(ft)
		sj, _ := cjson.EncodeCanonical(st)
		if !bytes.Equal(fj, sj) || ft.Path != st.Path {
			t.Fatalf("target %q differs:\nfast %s\nslow %s", p, fj, sj)
		}
	}
	for _, p := range []string{"", "missing", "proj/zzz", "\x00"} {
		if _, ok := fast.Target(p); ok != slowHas(slow, p) {
			t.Fatalf("lookup of %q: fast %v", p, ok)
		}
	}
	return true
}

func slowHas(t *Targets, p string) bool {
	_, ok := t.Target(p)
	return ok
}

// signedRelease returns a 2-of-3 release, signed, as Airlock writes it, and
// its delegation.
func signedRelease(t testing.TB, n int, edit func(m *metadata.Metadata[metadata.TargetsType])) ([]byte, *Delegation) {
	t.Helper()
	h := holders(t, "alice", "bob", "carol")
	_, d := delegation(t, 2, h["alice"], h["bob"], h["carol"])
	m := release(t, 3, n)
	if edit != nil {
		edit(m)
	}
	signWith(t, m, d, h["alice"], h["bob"])
	raw, err := EncodeMetadata(m)
	if err != nil {
		t.Fatal(err)
	}
	return raw, d
}

// mutations are hostile or unusual variants of canonical targets metadata:
// each must either be refused by both paths, or read the same by both.
var mutations = []struct {
	name     string
	old, new string
}{
	{"uppercase hex", `"sha256":"`, `"sha256":"AB`},
	{"odd hex", `"sha256":"`, `"sha256":"a`},
	{"escaped hex", `"sha256":"`, `"sha256":"\u0061a`},
	{"minus zero length", `"length":`, `"length":-0,"x":`},
	{"float length", `"length":1`, `"length":1.0`},
	{"exponent length", `"length":1`, `"length":1e1`},
	{"negative length", `"length":1`, `"length":-1`},
	{"huge length", `"length":1`, `"length":99999999999999999999`},
	{"string length", `"length":1`, `"length":"1"`},
	{"null custom", `"hashes"`, `"custom":null,"hashes"`},
	{"custom object", `"hashes"`, `"custom":{"a":[1,true,"x"],"b":{}},"hashes"`},
	{"custom unsorted", `"hashes"`, `"custom":{"b":1,"a":2},"hashes"`},
	{"custom float", `"hashes"`, `"custom":{"a":1.5},"hashes"`},
	{"custom big int", `"hashes"`, `"custom":{"a":9007199254740993},"hashes"`},
	{"custom escape", `"hashes"`, `"custom":"a\nb","hashes"`},
	{"custom html", `"hashes"`, `"custom":"<&>\u2028","hashes"`},
	{"custom raw unicode", `"hashes"`, `"custom":"é\u2028x","hashes"`},
	{"unknown entry field", `"hashes"`, `"extra":1,"hashes"`},
	{"unknown signed field", `"_type"`, `"_extra":9007199254740993,"_type"`},
	{"unknown envelope field", `{"signatures"`, `{"extra":1,"signatures"`},
	{"empty hashes", `"hashes":{`, `"hashes":{},"x":{`},
	{"null hashes", `"hashes":{`, `"hashes":null,"x":{`},
	{"duplicate target", `"proj/pkg-0.tgz":`, `"proj/pkg-0.tgz":{"hashes":{"sha256":"00"},"length":1},"proj/pkg-0.tgz":`},
	{"duplicate key", `"_type":"targets"`, `"_type":"targets","_type":"targets"`},
	{"unsorted targets", `"proj/pkg-0.tgz":`, `"zz":{"hashes":{"sha256":"00"},"length":1},"proj/pkg-0.tgz":`},
	{"null target", `"proj/pkg-0.tgz":`, `"a":null,"proj/pkg-0.tgz":`},
	{"escaped key", `"proj/pkg-0.tgz":`, `"a\"b\\c":{"hashes":{"sha256":"00"},"length":1},"proj/pkg-0.tgz":`},
	{"escape order", `"proj/pkg-0.tgz":`, `"proj/pkg-\"":{"hashes":{"sha256":"00"},"length":1},"proj/pkg-0.tgz":`},
	{"unicode escape key", `"proj/pkg-0.tgz":`, `"\u0041":{"hashes":{"sha256":"00"},"length":1},"proj/pkg-0.tgz":`},
	{"slash escape", `"proj/pkg-0.tgz":`, `"proj\/pkg-0.tgz":`},
	{"space in signed", `"_type":"targets"`, `"_type": "targets"`},
	{"newline in signed", `,"version"`, "\n,\"version\""},
	{"spaces in envelope", `,"signed":`, ` , "signed" : `},
	{"trailing data", `}}`, `}}}`},
	{"bad expires", `"expires":"`, `"expires":"1`},
	{"fractional expires", `Z","spec`, `.5Z","spec`},
	{"version zero", `"version":3`, `"version":0`},
	{"version minus zero", `"version":3`, `"version":-0`},
	{"spec version 2", `"spec_version":"1`, `"spec_version":"2`},
	{"wrong type", `"_type":"targets"`, `"_type":"snapshot"`},
	{"escaped type", `"_type":"targets"`, `"_type":"target\u0073"`},
	{"no targets", `"targets":{`, `"tarhets":{`},
	{"null targets", `"targets":{`, `"targets":null,"x":{`},
	{"null delegations", `"expires"`, `"delegations":null,"expires"`},
	{"empty delegations", `"expires"`, `"delegations":{},"expires"`},
	{"delegations roles", `"expires"`, `"delegations":{"keys":{},"roles":[{"keyids":[],"name":"x","paths":["a"],"terminating":false,"threshold":1}]},"expires"`},
	{"delegations unsorted", `"expires"`, `"delegations":{"roles":[],"keys":{}},"expires"`},
	{"delegations float", `"expires"`, `"delegations":{"keys":{},"roles":[],"x":1.5},"expires"`},
	{"deep custom", `"hashes"`, `"custom":` + strings.Repeat("[", 40) + strings.Repeat("]", 40) + `,"hashes"`},
	{"control char", `"proj/pkg-0.tgz"`, "\"proj/pkg-0\x01.tgz\""},
	{"invalid utf-8", `"proj/pkg-0.tgz"`, "\"proj/pkg-0\xff.tgz\""},
	{"no signatures", `"signatures":[`, `"signaturez":[`},
	{"signatures object", `"signatures":[`, `"signatures":{"a":[`},
	{"bad sig hex", `"sig":"`, `"sig":"zz`},
	{"uppercase sig hex", `"sig":"`, `"sig":"AB`},
	{"signature extra field", `{"keyid"`, `{"extra":1,"keyid"`},
	{"signature without sig", `,"sig":"`, `,"sog":"`},
	{"signature keyid number", `"keyid":"`, `"keyid":1,"x":"`},
	{"true literal", `"length":1`, `"length":true`},
}

// The fast path never accepts what the slow path refuses, and reads
// whatever it accepts exactly as the slow path does: on canonical
// metadata, on python-tuf style indented metadata, and on every mutation.
func TestFastPathAgreesWithSlowPath(t *testing.T) {
	raw, d := signedRelease(t, 20, func(m *metadata.Metadata[metadata.TargetsType]) {
		custom := json.RawMessage(`{"note":"a \"quoted\" \\ <b>&amp; é","n":[1,-2,0]}`)
		m.Signed.Targets["proj/pkg-1.tgz"].Custom = &custom
	})
	if !compareFastSlow(t, raw) {
		t.Fatalf("canonical metadata as Airlock writes it did not take the fast path:\n%.300s", raw)
	}
	tg, err := ParseTargets(raw)
	if err != nil {
		t.Fatal(err)
	}
	if tg.full != nil {
		t.Fatal("ParseTargets took the slow path on canonical metadata")
	}
	if _, err := tg.Verify(d, RoleCheck{RefTime: refTime}); err != nil {
		t.Fatalf("fast path refuses a good release: %v", err)
	}

	// Indented by go-tuf: its encoder escapes <, > and & as \u003c..., which
	// is not canonical, so this one takes the slow path, with the same
	// canonical bytes.
	m, err := ParseStrict[metadata.TargetsType](raw)
	if err != nil {
		t.Fatal(err)
	}
	indented, _ := m.ToBytes(true)
	if compareFastSlow(t, indented) {
		t.Fatal("metadata with \\u003c escapes took the fast path")
	}
	it, err := ParseTargets(indented)
	if err != nil || !bytes.Equal(it.payload, tg.payload) {
		t.Fatalf("indented metadata: %v, or other canonical bytes", err)
	}
	if _, err := it.Verify(d, RoleCheck{RefTime: refTime}); err != nil {
		t.Fatalf("slow path refuses a good release: %v", err)
	}
	// Indented without such characters (as python-tuf writes ASCII
	// metadata): compacted, then the fast path.
	plain, pd := signedRelease(t, 5, nil)
	pm, err := ParseStrict[metadata.TargetsType](plain)
	if err != nil {
		t.Fatal(err)
	}
	pind, _ := pm.ToBytes(true)
	if !compareFastSlow(t, pind) {
		t.Fatal("indented ascii metadata did not take the fast path")
	}
	if _, _, err := VerifyTargets(pind, pd, RoleCheck{RefTime: refTime}); err != nil {
		t.Fatalf("indented release refused: %v", err)
	}

	fastTaken := 0
	for _, mu := range mutations {
		t.Run(mu.name, func(t *testing.T) {
			if !bytes.Contains(raw, []byte(mu.old)) {
				t.Fatalf("mutation anchor %q not in the metadata", mu.old)
			}
			b := bytes.Replace(raw, []byte(mu.old), []byte(mu.new), 1)
			if compareFastSlow(t, b) {
				fastTaken++
				// What the fast path takes verifies exactly as the slow path.
				ft, _ := ParseTargets(b)
				st, _ := parseTargetsSlow(b)
				_, ferr := ft.Verify(d, RoleCheck{})
				_, serr := st.Verify(d, RoleCheck{})
				if (ferr == nil) != (serr == nil) {
					t.Fatalf("verification differs: fast %v, slow %v", ferr, serr)
				}
			}
		})
	}
	// The mutations that keep the form canonical must have reached the fast
	// path, or this test compares nothing.
	if fastTaken < 5 {
		t.Fatalf("only %d mutations took the fast path", fastTaken)
	}
}

// A mutation that changes the signed bytes is refused by the signature
// check on both paths, with the threshold named.
func TestFastPathRefusesAlteredSignedBytes(t *testing.T) {
	raw, d := signedRelease(t, 3, nil)
	b := bytes.Replace(raw, []byte(`"length":`), []byte(`"length":1`), 1)
	ft := parseTargetsFast(b)
	if ft == nil {
		t.Fatal("altered canonical metadata did not take the fast path")
	}
	_, err := ft.Verify(d, RoleCheck{})
	checkErr(t, err, "0 valid signature(s) from distinct keys, threshold is 2")
	st, err := parseTargetsSlow(b)
	if err != nil {
		t.Fatal(err)
	}
	_, err = st.Verify(d, RoleCheck{})
	checkErr(t, err, "threshold is 2")
}

// Every targets file of the test repositories, as written and after the
// tampering the client tests use, reads the same on both paths.
func TestFastPathAgreesOnRepositoryFiles(t *testing.T) {
	tr := newTestRepo(t)
	if err := tr.releaseFile(t, "proj/b.tgz", "second", "alice", "carol"); err != nil {
		t.Fatal(err)
	}
	files, _ := filepath.Glob(filepath.Join(tr.Dir, "metadata", "*.json"))
	fast := 0
	for _, f := range files {
		b := mustRead(t, f)
		var probe struct {
			Signed struct {
				Type string `json:"_type"`
			} `json:"signed"`
		}
		if json.Unmarshal(b, &probe) != nil || probe.Signed.Type != metadata.TARGETS {
			continue
		}
		if compareFastSlow(t, b) {
			fast++
		}
		// Truncations and single-byte edits anywhere.
		for _, i := range []int{1, len(b) / 3, len(b) / 2, len(b) - 3} {
			compareFastSlow(t, b[:i])
			for _, c := range []byte{' ', '"', '\\', '0', '}', 'A'} {
				e := bytes.Clone(b)
				e[i] = c
				compareFastSlow(t, e)
			}
		}
	}
	if fast < 3 {
		t.Fatalf("only %d repository targets files took the fast path", fast)
	}
	if err := os.RemoveAll(tr.Dir); err != nil {
		t.Fatal(err)
	}
}

func FuzzTargetsFastSlow(f *testing.F) {
	raw, _ := signedRelease(f, 3, nil)
	f.Add(raw)
	if m, err := ParseStrict[metadata.TargetsType](raw); err == nil {
		indented, _ := m.ToBytes(true)
		f.Add(indented)
	}
	for _, mu := range mutations[:12] {
		f.Add(bytes.Replace(raw, []byte(mu.old), []byte(mu.new), 1))
	}
	f.Add([]byte(`{"signatures":[],"signed":{"_type":"targets","expires":"2030-01-01T00:00:00Z","spec_version":"1.0.31","targets":{"a":{"hashes":{"x":""},"length":0}},"version":1}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		compareFastSlow(t, data)
	})
}

func TestCanonicalScanner(t *testing.T) {
	for _, c := range []struct {
		in string
		ok bool
	}{
		{`{}`, true}, {`[]`, true}, {`{"a":1,"b":[true,false,null,"x"]}`, true},
		{`{"b":1,"a":1}`, false}, {`{"a":1,"a":1}`, false}, {`{ "a":1}`, false},
		{`"\u0041"`, false}, {`"\\\""`, true}, {`-0`, false}, {`0`, true}, {`01`, false},
		{`1.0`, false}, {`9223372036854775807`, true}, {`9223372036854775808`, false},
		{`-9223372036854775808`, true}, {"\"\t\"", false}, {`{"a":1}x`, false}, {`tru`, false},
		{strings.Repeat("[", MaxJSONDepth) + strings.Repeat("]", MaxJSONDepth), false},
	} {
		if got := isCanonical([]byte(c.in)); got != c.ok {
			t.Errorf("isCanonical(%s) = %v", c.in, got)
		}
		if c.ok {
			var v any
			if err := json.Unmarshal([]byte(c.in), &v); err != nil {
				t.Errorf("%s: canonical but not json: %v", c.in, err)
			}
		}
	}
	// Everything cjson writes for these values scans as canonical.
	for _, v := range []any{map[string]any{"z": 1, "a": "\"\\<>&é", "m": []any{nil, true}}, "", []any{}} {
		b, err := cjson.EncodeCanonical(v)
		if err != nil {
			t.Fatal(err)
		}
		if !isCanonical(b) {
			t.Errorf("cjson output %s does not scan as canonical", b)
		}
	}
}
