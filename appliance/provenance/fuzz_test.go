package provenance

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

func allBundles(t testing.TB) [][]byte {
	var out [][]byte
	for _, r := range releases {
		out = append(out, readTestdata(t, r.provenance))
		if r.publish != "" {
			out = append(out, readTestdata(t, r.publish))
		}
	}
	return out
}

func payloadOf(t testing.TB, bundle []byte) []byte {
	var b struct {
		DSSE struct {
			Payload string `json:"payload"`
		} `json:"dsseEnvelope"`
	}
	if err := json.Unmarshal(bundle, &b); err != nil {
		t.Fatal(err)
	}
	p, err := base64.StdEncoding.DecodeString(b.DSSE.Payload)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// checkOutcome holds for every input: a refusal is a one-line *Refusal, and
// acceptance means verified facts with a log entry and an identity.
func checkOutcome(t *testing.T, verified bool, err error) {
	if err != nil {
		var r *Refusal
		if !errors.As(err, &r) {
			t.Fatalf("error %T is not a *Refusal: %v", err, err)
		}
		if strings.ContainsAny(err.Error(), "\n\r\x1b") {
			t.Fatalf("refusal is not one clean line: %q", err)
		}
		if verified {
			t.Fatalf("refused (%v) but Verified is true", err)
		}
	}
}

// FuzzVerifyBundle feeds arbitrary bytes through the whole bundle path:
// size cap, JSON checks, sigstore-go bundle parsing, statement and
// predicate parsing, and the cryptographic checks.
func FuzzVerifyBundle(f *testing.F) {
	for _, b := range allBundles(f) {
		f.Add(b)
	}
	f.Add([]byte(`{}`))
	f.Add([]byte(`{"mediaType":"application/vnd.dev.sigstore.bundle+json;version=0.1","dsseEnvelope":{"payload":"e30=","payloadType":"application/vnd.in-toto+json","signatures":[{"sig":"AA=="}]},"verificationMaterial":{"publicKey":{"hint":"x"}}}`))
	f.Add([]byte(`[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]`))
	v := newTestVerifier(f)
	r := releases[2]
	a := r.artifact(f)
	pubArt := releases[0].artifact(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		facts, err := v.Verify(data, a)
		if facts == nil {
			t.Fatal("Verify returned nil facts")
		}
		checkOutcome(t, facts.Verified, err)
		if err == nil && (facts.LogIndex <= 0 || facts.Repository == "" || facts.SubjectDigest.Hex == "") {
			t.Fatalf("accepted without log entry, repository or subject digest: %+v", facts)
		}
		pf, err := v.VerifyPublish(data, pubArt)
		if pf == nil {
			t.Fatal("VerifyPublish returned nil facts")
		}
		checkOutcome(t, pf.Verified, err)
	})
}

// FuzzStatement exercises the in-toto statement and SLSA predicate parsers
// directly, which sit behind signature checks in FuzzVerifyBundle.
func FuzzStatement(f *testing.F) {
	for _, b := range allBundles(f) {
		f.Add(payloadOf(f, b))
	}
	f.Add([]byte(`{"_type":"https://in-toto.io/Statement/v1","subject":[{"name":"x","digest":{"sha512":"00"}}],"predicateType":"https://slsa.dev/provenance/v1","predicate":{"buildDefinition":{"externalParameters":{"workflow":7}}}}`))
	f.Add([]byte(`{"_type":"https://in-toto.io/Statement/v0.1","subject":[{"name":"x","digest":{"sha256":"ab"}}],"predicateType":"https://slsa.dev/provenance/v0.2","predicate":{"invocation":{"environment":{"GITHUB_REPOSITORY":1}}}}`))
	a := Artifact{Name: "x.tgz", SHA256: make([]byte, 32)}
	f.Fuzz(func(t *testing.T, data []byte) {
		st, err := parseStatement(data)
		if err != nil {
			return
		}
		if len(st.Subject) == 0 || len(st.Subject) > MaxSubjects {
			t.Fatalf("accepted %d subjects", len(st.Subject))
		}
		if _, _, err := st.matchSubject(a, "provenance"); err != nil && strings.ContainsAny(err.Error(), "\n\r\x1b") {
			t.Fatalf("mismatch message not one line: %q", err)
		}
		bf, err := predicateFacts(st.PredicateType, st.Predicate)
		if err == nil {
			for _, s := range []string{bf.Builder, bf.BuildType, bf.Repository, bf.Commit, bf.Ref, bf.Workflow, bf.Trigger, bf.RunURL} {
				if len(s) > MaxFactBytes {
					t.Fatalf("fact of %d bytes accepted", len(s))
				}
			}
		}
	})
}
