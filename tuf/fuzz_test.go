package tuf

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/theupdateframework/go-tuf/v2/metadata"
)

func FuzzParseRequest(f *testing.F) {
	f.Add([]byte(`{"airlock_request":1,"kind":"release","role":"proj","delegator":"targets","metadata":{},"chain":{"root":[{}]},"created":"2026-11-21T00:00:00Z"}`))
	f.Add([]byte(`{"airlock_request":1,"kind":"root","role":"root","delegator":"root","metadata":{"signed":{"_type":"root"}},"chain":{"root":[]}}`))
	f.Add([]byte(`[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]`))
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := ParseRequest(data)
		if err != nil {
			return
		}
		// Whatever parses must survive computing its payload and chain.
		_, _ = r.Payload()
		_, _, _ = r.Delegation(nil, time.Date(2026, 11, 21, 0, 0, 0, 0, time.UTC))
		if _, err := r.Marshal(); err != nil {
			t.Fatalf("parsed request does not marshal: %v", err)
		}
	})
}

func FuzzParseResponse(f *testing.F) {
	f.Add([]byte(`{"airlock_response":1,"role":"proj","version":2,"signed_sha256":"` + zeros64 + `","signatures":[{"keyid":"` + zeros64 + `","sig":"3045"}],"holders":["alice"],"ceremony_id":"c1"}`))
	f.Add([]byte(`{"airlock_response":1,"role":"proj","version":-1}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := ParseResponse(data)
		if err != nil {
			return
		}
		b, err := r.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		back, err := ParseResponse(b)
		if err != nil {
			t.Fatalf("re-parsing a marshalled response: %v", err)
		}
		b2, _ := back.Marshal()
		if string(b) != string(b2) {
			t.Fatalf("response does not round-trip:\n%s\n%s", b, b2)
		}
	})
}

const zeros64 = "0000000000000000000000000000000000000000000000000000000000000000"

// FuzzVerifyRole feeds arbitrary metadata to the strict verifier under a
// fixed 2-of-3 delegation: nothing may panic, and nothing may verify that
// does not carry two valid distinct signatures.
func FuzzVerifyRole(f *testing.F) {
	h := holders(f, "alice", "bob", "carol")
	_, d := delegation(f, 2, h["alice"], h["bob"], h["carol"])
	m := release(f, 1, 2)
	signWith(f, m, d, h["alice"], h["bob"])
	good := roundTrip(f, m)
	f.Add(good)
	one := release(f, 1, 1)
	signWith(f, one, d, h["alice"])
	f.Add(roundTrip(f, one))
	f.Add([]byte(`{"signed":{"_type":"targets"},"signatures":[]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := ParseStrict[metadata.TargetsType](data)
		if err != nil {
			return
		}
		v, err := VerifyRole(m, d, RoleCheck{})
		if err != nil {
			return
		}
		seen := map[string]bool{}
		for _, s := range v.Signers {
			if seen[s.Fingerprint] {
				t.Fatalf("one key counted twice: %+v", v.Signers)
			}
			seen[s.Fingerprint] = true
		}
		if len(seen) < 2 {
			t.Fatalf("verified with %d distinct signers", len(seen))
		}
		// Anything accepted must re-encode to the same signed bytes.
		payload, _ := Canonical(m)
		var again metadata.Metadata[metadata.TargetsType]
		raw, _ := json.Marshal(m)
		if err := json.Unmarshal(raw, &again); err != nil {
			t.Fatal(err)
		}
		p2, _ := Canonical(&again)
		if string(payload) != string(p2) {
			t.Fatal("canonical bytes changed across a round trip")
		}
	})
}
