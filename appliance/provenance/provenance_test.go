package provenance

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// release is one real npm release from the shared fixtures.
type release struct {
	name, version, tgz string
	provenance         string
	publish            string // empty when the registry has none for it
}

var releases = []release{
	{"sigstore", "1.0.0", "sigstore-1.0.0.tgz", "sigstore@1.0.0.provenance.sigstore.json", "sigstore@1.0.0.publish.sigstore.json"},
	{"sigstore", "1.3.0", "sigstore-1.3.0.tgz", "sigstore@1.3.0.provenance.sigstore.json", "sigstore@1.3.0.publish.sigstore.json"},
	{"sigstore", "2.0.0", "sigstore-2.0.0.tgz", "sigstore@2.0.0.provenance.sigstore.json", ""},
	{"tuf-js", "1.0.0", "tuf-js-1.0.0.tgz", "tuf-js@1.0.0.provenance.sigstore.json", "tuf-js@1.0.0.publish.sigstore.json"},
}

func readTestdata(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func newTestVerifier(t testing.TB) *Verifier {
	t.Helper()
	v, err := New(Config{TrustedRoot: readTestdata(t, "trusted_root.json"), NPMKeys: readTestdata(t, "npm-keys.json")})
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func (r release) artifact(t testing.TB) Artifact {
	a := ArtifactFromBytes(r.tgz, readTestdata(t, r.tgz))
	a.Subject = NPMSubject(r.name, r.version)
	return a
}

func ghPolicy(pkg, repo, workflow string, refs ...string) Policy {
	return Policy{Package: pkg, RequireProvenance: true, Publishers: []Publisher{{
		Issuer: GitHubActionsIssuer, Repository: repo, WorkflowPath: workflow, Refs: refs,
	}}}
}

func utc(s string) time.Time {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return t
}

// The facts the fixtures README records for each release, plus the ones the
// bundles themselves state.
func wantFacts(r release) *Facts {
	base := &Facts{
		Artifact: r.tgz, Present: true, Verified: true,
		BundleMediaType:   "application/vnd.dev.sigstore.bundle+json;version=0.1",
		SubjectName:       NPMSubject(r.name, r.version),
		Issuer:            GitHubActionsIssuer,
		CertificateIssuer: "CN=sigstore-intermediate,O=sigstore.dev",
		LogID:             "c0d23d6ad406973f9559f3ba2d1ca01f84147d8ffc5b8445c224f98b9591801d",
	}
	switch r.name + "@" + r.version {
	case "sigstore@2.0.0":
		base.PredicateType = SLSAProvenanceV1
		base.SubjectDigest = Digest{"sha512", "46d4e2f74c4877316640000a6fdf8a8b59f1e0847667973e9859f774dd31b8f1e0937813b777fb66a2ac67d50540fe34640966eee9fc2ccca387082b4c85cd3c"}
		base.SAN = "https://github.com/sigstore/sigstore-js/.github/workflows/release.yml@refs/heads/main"
		base.Repository = "https://github.com/sigstore/sigstore-js"
		base.Commit = "f0b49a04e5a62250e0f60fb128004a73110fe311"
		base.Ref = "refs/heads/main"
		base.Workflow = ".github/workflows/release.yml"
		base.Trigger = "push"
		base.RunnerEnvironment = "github-hosted"
		base.RunURL = "https://github.com/sigstore/sigstore-js/actions/runs/5904696764/attempts/1"
		base.Builder = "https://github.com/actions/runner/github-hosted"
		base.BuildType = "https://slsa-framework.github.io/github-actions-buildtypes/workflow/v1"
		base.LogIndex = 31821305
		base.IntegratedTime = utc("2023-08-18T16:05:35Z")
	case "sigstore@1.0.0":
		base.PredicateType = SLSAProvenanceV02
		base.SubjectDigest = Digest{"sha512", "7bea9f6e7ff37f5fab0b36bf061200fff03099fd2fd696b91d04bc5e4f225eb9fd6e0cadcad54ba980f43fb352a99e8810b4e0abeb5c0ef2cf9108cd1f258b36"}
		base.SAN = "https://github.com/sigstore/sigstore-js/.github/workflows/publish.yml@refs/tags/v1.0.0"
		base.Repository = "https://github.com/sigstore/sigstore-js"
		base.Commit = "06528997c3c8ab9f864fad9a3658446aca7fd86d"
		base.Ref = "refs/tags/v1.0.0"
		base.Workflow = ".github/workflows/publish.yml"
		base.Trigger = "release"
		base.RunURL = "https://github.com/sigstore/sigstore-js/actions/runs/4137028816/attempts/1"
		base.RunURLFromStatement = true
		base.Builder = "https://github.com/npm/cli@9.4.2"
		base.BuildType = "https://github.com/npm/cli/gha@v0"
		base.LogIndex = 12988397
		base.IntegratedTime = utc("2023-02-09T17:56:00Z")
	case "sigstore@1.3.0":
		base.PredicateType = SLSAProvenanceV02
		base.SubjectDigest = Digest{"sha512", "76176ffa33808b54602c7c35de5c6e9a4deb96066dba6533f50ac234f4f1f4c6b3527515dc17c06fbe2860030f410eee69ea20079bd3a2c6f3dcf3b329b10751"}
		base.SAN = "https://github.com/sigstore/sigstore-js/.github/workflows/release.yml@refs/heads/main"
		base.Repository = "https://github.com/sigstore/sigstore-js"
		base.Commit = "dae8bd8eb433a4147b4655c00fe73e0f22bc0fb1"
		base.Ref = "refs/heads/main"
		base.Workflow = ".github/workflows/release.yml"
		base.Trigger = "push"
		base.RunnerEnvironment = "github-hosted"
		base.RunURL = "https://github.com/sigstore/sigstore-js/actions/runs/4735384265/attempts/1"
		base.Builder = "https://github.com/actions/runner"
		base.BuildType = "https://github.com/npm/cli/gha/v2"
		base.LogIndex = 18300934
		base.IntegratedTime = utc("2023-04-18T17:45:12Z")
	case "tuf-js@1.0.0":
		base.PredicateType = SLSAProvenanceV02
		base.SubjectDigest = Digest{"sha512", "d5dc6c4301120f30022634dd607438c09d5ffe87fb8c02d629f2441d205651007fe544c9531f525ba1875e9e266752af7414490a91a3b2ca0f1468b886fc3cfc"}
		base.SAN = "https://github.com/theupdateframework/tuf-js/.github/workflows/publish.yml@refs/tags/v1.0.0"
		base.Repository = "https://github.com/theupdateframework/tuf-js"
		base.Commit = "99624cc7ce39872e6bd08a0df59229a48562dbca"
		base.Ref = "refs/tags/v1.0.0"
		base.Workflow = ".github/workflows/publish.yml"
		base.Trigger = "release"
		base.RunURL = "https://github.com/theupdateframework/tuf-js/actions/runs/4136902918/attempts/1"
		base.RunURLFromStatement = true
		base.Builder = "https://github.com/npm/cli@9.4.2"
		base.BuildType = "https://github.com/npm/cli/gha@v0"
		base.LogIndex = 12987347
		base.IntegratedTime = utc("2023-02-09T17:38:25Z")
	}
	base.Timestamps = []Timestamp{{Kind: "transparency log", URI: "https://rekor.sigstore.dev", Time: base.IntegratedTime}}
	return base
}

func TestVerifyRealReleases(t *testing.T) {
	v := newTestVerifier(t)
	for _, r := range releases {
		t.Run(r.name+"@"+r.version, func(t *testing.T) {
			f, err := v.Verify(readTestdata(t, r.provenance), r.artifact(t))
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			want := wantFacts(r)
			if diff := cmp.Diff(want, f, cmpopts.IgnoreFields(Facts{}, "Checks")); diff != "" {
				t.Errorf("facts (-want, +got):\n%s", diff)
			}
			how := "inclusion promise"
			if r.name == "sigstore" && r.version == "2.0.0" {
				how = "inclusion promise, inclusion proof"
			}
			wantLog := fmt.Sprintf("rekor entry %d verified (%s)", want.LogIndex, how)
			for _, c := range f.Checks {
				if c.Name == "transparency log" && c.Detail != wantLog {
					t.Errorf("transparency log check = %q, want %q", c.Detail, wantLog)
				}
			}
			// Every check that ran passed, and the essential ones ran.
			ran := map[string]bool{}
			for _, c := range f.Checks {
				if !c.OK {
					t.Errorf("check %q failed on a valid bundle: %s", c.Name, c.Detail)
				}
				ran[c.Name] = true
			}
			for _, name := range []string{"bundle", "artifact digest", "subject name", "transparency log", "timestamp",
				"certificate chain", "certificate transparency", "signature", "certificate identity", "statement vs certificate"} {
				if !ran[name] {
					t.Errorf("check %q missing from %v", name, f.Checks)
				}
			}
		})
	}
}

func TestReviewWithPolicy(t *testing.T) {
	v := newTestVerifier(t)
	policies := map[string]Policy{
		"sigstore@1.0.0": ghPolicy("sigstore", "https://github.com/sigstore/sigstore-js", ".github/workflows/publish.yml", "refs/tags/v*"),
		"sigstore@1.3.0": ghPolicy("sigstore", "https://github.com/sigstore/sigstore-js", ".github/workflows/release.yml", "refs/heads/main"),
		"sigstore@2.0.0": ghPolicy("sigstore", "https://github.com/sigstore/sigstore-js", ".github/workflows/release.yml", "refs/heads/main"),
		"tuf-js@1.0.0":   ghPolicy("tuf-js", "https://github.com/theupdateframework/tuf-js", ".github/workflows/publish.yml", "refs/tags/v*"),
	}
	for _, r := range releases {
		t.Run(r.name+"@"+r.version, func(t *testing.T) {
			e := Evidence{Provenance: readTestdata(t, r.provenance)}
			if r.publish != "" {
				e.Publish = readTestdata(t, r.publish)
			}
			f, err := v.Review(r.artifact(t), e, policies[r.name+"@"+r.version])
			if err != nil {
				t.Fatalf("Review: %v", err)
			}
			if !f.Verified {
				t.Fatal("Verified is false after a successful review")
			}
			var policyChecks []string
			for _, c := range f.Checks {
				if strings.HasPrefix(c.Name, "policy: ") && c.OK {
					policyChecks = append(policyChecks, c.Name)
				}
			}
			want := []string{"policy: issuer", "policy: repository", "policy: workflow", "policy: ref", "policy: builder"}
			if diff := cmp.Diff(want, policyChecks); diff != "" {
				t.Errorf("policy checks (-want, +got):\n%s", diff)
			}
			if (r.publish != "") != (f.Publish != nil) {
				t.Fatalf("Publish facts = %v, publish bundle supplied = %v", f.Publish, r.publish != "")
			}
			if f.Publish != nil && !f.Publish.Verified {
				t.Error("publish attestation not verified")
			}
		})
	}
}

// refusal asserts err is a *Refusal of the given kind whose text contains want.
func refusal(t *testing.T, err error, kind error, want string) {
	t.Helper()
	if err == nil {
		t.Fatalf("accepted; want refusal %q", want)
	}
	t.Logf("refused: %v", err)
	var r *Refusal
	if !errors.As(err, &r) {
		t.Fatalf("error %T %v is not a *Refusal", err, err)
	}
	if !errors.Is(err, kind) {
		t.Errorf("error %q is not %v", err, kind)
	}
	if !strings.Contains(err.Error(), want) {
		t.Errorf("error %q does not contain %q", err, want)
	}
	if strings.ContainsAny(err.Error(), "\n\r") {
		t.Errorf("error is not one line: %q", err)
	}
}

func TestPolicyRefusesRealProvenance(t *testing.T) {
	v := newTestVerifier(t)
	r2 := releases[2] // sigstore@2.0.0, release.yml on refs/heads/main
	tuf := releases[3]
	sigstoreRepo := "https://github.com/sigstore/sigstore-js"
	tests := []struct {
		name   string
		rel    release
		policy Policy
		want   string
	}{
		{"wrong repository", tuf, ghPolicy("tuf-js", sigstoreRepo, ".github/workflows/publish.yml", "refs/tags/v*"),
			"provenance for tuf-js-1.0.0.tgz: source repository is https://github.com/theupdateframework/tuf-js, policy allows only https://github.com/sigstore/sigstore-js"},
		{"wrong workflow", r2, ghPolicy("sigstore", sigstoreRepo, ".github/workflows/publish.yml", "refs/heads/main"),
			"provenance for sigstore-2.0.0.tgz: workflow is .github/workflows/release.yml, policy allows only .github/workflows/publish.yml"},
		{"wrong ref", r2, ghPolicy("sigstore", sigstoreRepo, ".github/workflows/release.yml", "refs/tags/v*"),
			"provenance for sigstore-2.0.0.tgz: source ref is refs/heads/main, policy allows only refs/tags/v*"},
		{"wrong issuer", r2, Policy{Package: "sigstore", Publishers: []Publisher{{Issuer: "https://gitlab.com", Repository: sigstoreRepo,
			WorkflowPath: ".github/workflows/release.yml", Refs: []string{"refs/heads/main"}}}},
			"oidc issuer is https://token.actions.githubusercontent.com, policy allows only https://gitlab.com"},
		{"wrong builder", r2, Policy{Package: "sigstore", Publishers: []Publisher{{Issuer: GitHubActionsIssuer, Repository: sigstoreRepo,
			WorkflowPath: ".github/workflows/release.yml", Refs: []string{"refs/heads/main"}, Builder: "https://github.com/actions/runner/self-hosted"}}},
			"builder is https://github.com/actions/runner/github-hosted, policy allows only https://github.com/actions/runner/self-hosted"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := v.Review(tt.rel.artifact(t), Evidence{Provenance: readTestdata(t, tt.rel.provenance)}, tt.policy)
			refusal(t, err, ErrPolicy, tt.want)
			if f == nil || !f.Verified {
				t.Fatal("the provenance itself verified; the facts must say so")
			}
			if last := f.Checks[len(f.Checks)-1]; last.OK || last.Name != "policy" {
				t.Errorf("last check = %+v, want the failed policy check", last)
			}
		})
	}
}

func TestPolicyWithSeveralPublishers(t *testing.T) {
	v := newTestVerifier(t)
	r := releases[2]
	p := Policy{Package: "sigstore", RequireProvenance: true, Publishers: []Publisher{
		{Issuer: GitHubActionsIssuer, Repository: "https://github.com/sigstore/sigstore-js", WorkflowPath: ".github/workflows/publish.yml", Refs: []string{"refs/tags/v*"}},
		{Issuer: GitHubActionsIssuer, Repository: "https://github.com/sigstore/sigstore-js", WorkflowPath: ".github/workflows/release.yml", Refs: []string{"refs/heads/main"}},
	}}
	if _, err := v.Review(r.artifact(t), Evidence{Provenance: readTestdata(t, r.provenance)}, p); err != nil {
		t.Fatalf("second publisher matches, got %v", err)
	}
	p.Publishers[1].Refs = []string{"refs/heads/release"}
	_, err := v.Review(r.artifact(t), Evidence{Provenance: readTestdata(t, r.provenance)}, p)
	refusal(t, err, ErrPolicy, "source ref is refs/heads/main, policy allows only refs/heads/release")
}

func TestPolicyMessageForFork(t *testing.T) {
	// The policy step on its own, for provenance from a fork (which no
	// fixture has): the reason must name both repositories.
	f := &Facts{Artifact: "sigstore-2.0.0.tgz", Present: true, Verified: true, Issuer: GitHubActionsIssuer,
		Repository: "https://github.com/evil/fork", Workflow: ".github/workflows/release.yml", Ref: "refs/heads/main"}
	err := ghPolicy("sigstore", "https://github.com/sigstore/sigstore-js", ".github/workflows/release.yml", "refs/heads/main").Evaluate(f.Artifact, f)
	refusal(t, err, ErrPolicy, "provenance for sigstore-2.0.0.tgz: source repository is https://github.com/evil/fork, policy allows only https://github.com/sigstore/sigstore-js")
}

func TestMissingProvenance(t *testing.T) {
	v := newTestVerifier(t)
	r := releases[2]
	p := ghPolicy("sigstore", "https://github.com/sigstore/sigstore-js", ".github/workflows/release.yml", "refs/heads/main")
	f, err := v.Review(r.artifact(t), Evidence{}, p)
	refusal(t, err, ErrMissing, "provenance for sigstore-2.0.0.tgz: missing, and the policy of package sigstore requires provenance from https://github.com/sigstore/sigstore-js")
	if f == nil || f.Present || f.Verified {
		t.Fatalf("facts = %+v, want present=false verified=false", f)
	}
	// Not required: accepted, and the facts say there is none.
	p.RequireProvenance = false
	f, err = v.Review(r.artifact(t), Evidence{}, p)
	if err != nil {
		t.Fatalf("provenance not required, got %v", err)
	}
	if f.Present || f.Verified {
		t.Errorf("facts = %+v, want present=false verified=false", f)
	}
}

// mutateBundle decodes a bundle, lets fn change it, and re-encodes it.
func mutateBundle(t *testing.T, raw []byte, fn func(b map[string]any)) []byte {
	t.Helper()
	var b map[string]any
	if err := json.Unmarshal(raw, &b); err != nil {
		t.Fatal(err)
	}
	fn(b)
	out, err := json.Marshal(b)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func envelope(b map[string]any) map[string]any { return b["dsseEnvelope"].(map[string]any) }

func TestVerifyRefusesTampering(t *testing.T) {
	v := newTestVerifier(t)
	r := releases[2]
	prov := readTestdata(t, r.provenance)
	tgz := readTestdata(t, r.tgz)

	t.Run("tampered tarball", func(t *testing.T) {
		bad := bytes.Clone(tgz)
		bad[len(bad)/2] ^= 1
		a := ArtifactFromBytes(r.tgz, bad)
		a.Subject = NPMSubject(r.name, r.version)
		f, err := v.Verify(prov, a)
		refusal(t, err, ErrMismatch, "provenance for sigstore-2.0.0.tgz: sha512 of sigstore-2.0.0.tgz is ")
		refusal(t, err, ErrMismatch, "the provenance subject pkg:npm/sigstore@2.0.0 has 46d4e2f74c487731…: the artifact was altered")
		if f.Verified {
			t.Error("Verified after a digest mismatch")
		}
	})
	t.Run("altered dsse payload", func(t *testing.T) {
		bad := mutateBundle(t, prov, func(b map[string]any) {
			env := envelope(b)
			p, _ := base64.StdEncoding.DecodeString(env["payload"].(string))
			p = bytes.ReplaceAll(p, []byte("refs/heads/main"), []byte("refs/tags/v2.0.0"))
			env["payload"] = base64.StdEncoding.EncodeToString(p)
		})
		_, err := v.Verify(bad, r.artifact(t))
		refusal(t, err, ErrUnverified, "transparency log check failed")
		refusal(t, err, ErrUnverified, "does not match envelope payload hash")
	})
	t.Run("altered dsse signature", func(t *testing.T) {
		bad := mutateBundle(t, prov, func(b map[string]any) {
			sig := envelope(b)["signatures"].([]any)[0].(map[string]any)
			s, _ := base64.StdEncoding.DecodeString(sig["sig"].(string))
			s[10] ^= 1
			sig["sig"] = base64.StdEncoding.EncodeToString(s)
		})
		_, err := v.Verify(bad, r.artifact(t))
		refusal(t, err, ErrUnverified, "transparency log check failed")
	})
	t.Run("no transparency log entry", func(t *testing.T) {
		bad := mutateBundle(t, prov, func(b map[string]any) {
			delete(b["verificationMaterial"].(map[string]any), "tlogEntries")
		})
		_, err := v.Verify(bad, r.artifact(t))
		refusal(t, err, ErrUnverified, "bundle has no transparency log entry")
	})
	t.Run("bundle for a different package", func(t *testing.T) {
		f, err := v.Verify(readTestdata(t, releases[3].provenance), r.artifact(t))
		refusal(t, err, ErrMismatch, "the provenance subject pkg:npm/tuf-js@1.0.0 has ")
		if f.SubjectName != "pkg:npm/tuf-js@1.0.0" {
			t.Errorf("SubjectName = %q, want the bundle's subject", f.SubjectName)
		}
	})
	t.Run("right bytes, wrong expected package", func(t *testing.T) {
		a := releases[3].artifact(t)
		a.Subject = NPMSubject("sigstore", "2.0.0")
		_, err := v.Verify(readTestdata(t, releases[3].provenance), a)
		refusal(t, err, ErrMismatch, "bundle is for pkg:npm/tuf-js@1.0.0, expected pkg:npm/sigstore@2.0.0")
	})
	t.Run("publish attestation given as provenance", func(t *testing.T) {
		a := releases[0].artifact(t)
		_, err := v.Verify(readTestdata(t, releases[0].publish), a)
		refusal(t, err, ErrUnverified, "no fulcio certificate")
	})
	t.Run("oversized bundle", func(t *testing.T) {
		big := append(bytes.Clone(prov), bytes.Repeat([]byte(" "), MaxBundleBytes)...)
		_, err := v.Verify(big, r.artifact(t))
		refusal(t, err, ErrMalformed, "the limit is 1048576")
	})
	t.Run("duplicate key in statement", func(t *testing.T) {
		bad := mutateBundle(t, prov, func(b map[string]any) {
			env := envelope(b)
			p, _ := base64.StdEncoding.DecodeString(env["payload"].(string))
			p = append([]byte(`{"predicateType":"x",`), p[1:]...)
			env["payload"] = base64.StdEncoding.EncodeToString(p)
		})
		_, err := v.Verify(bad, r.artifact(t))
		refusal(t, err, ErrMalformed, "repeats the key predicateType")
	})
	t.Run("not json", func(t *testing.T) {
		_, err := v.Verify([]byte("\x1b[2J not a bundle"), r.artifact(t))
		refusal(t, err, ErrMalformed, "provenance for sigstore-2.0.0.tgz: bundle is not valid json")
	})
}

// trustedRootWith returns the pinned trusted root with fn applied.
func trustedRootWith(t *testing.T, fn func(tr map[string]any)) []byte {
	t.Helper()
	return mutateBundle(t, readTestdata(t, "trusted_root.json"), fn)
}

func TestVerifyRefusesWrongTrustedRoot(t *testing.T) {
	r := releases[2]
	t.Run("no fulcio ca", func(t *testing.T) {
		// Replace the Fulcio CAs with the timestamp authority's chain: a
		// well-formed root that does not include the CA that issued the leaf.
		tr := trustedRootWith(t, func(tr map[string]any) {
			tr["certificateAuthorities"] = tr["timestampAuthorities"]
		})
		v, err := New(Config{TrustedRoot: tr})
		if err != nil {
			t.Fatal(err)
		}
		f, err := v.Verify(readTestdata(t, r.provenance), r.artifact(t))
		refusal(t, err, ErrUnverified, "certificate chain check failed")
		refusal(t, err, ErrUnverified, "not issued by a fulcio ca of the pinned trusted root")
		if f.Verified {
			t.Error("Verified with the wrong fulcio ca")
		}
	})
	t.Run("no rekor log", func(t *testing.T) {
		tr := trustedRootWith(t, func(tr map[string]any) {
			tr["tlogs"] = tr["tlogs"].([]any)[1:] // keep only the rekor v2 log
		})
		v, err := New(Config{TrustedRoot: tr})
		if err != nil {
			t.Fatal(err)
		}
		_, err = v.Verify(readTestdata(t, r.provenance), r.artifact(t))
		refusal(t, err, ErrUnverified, "transparency log check failed")
	})
	t.Run("no ct log", func(t *testing.T) {
		tr := trustedRootWith(t, func(tr map[string]any) { tr["ctlogs"] = []any{} })
		v, err := New(Config{TrustedRoot: tr})
		if err != nil {
			t.Fatal(err)
		}
		_, err = v.Verify(readTestdata(t, r.provenance), r.artifact(t))
		refusal(t, err, ErrUnverified, "certificate transparency check failed")
	})
	t.Run("not a trusted root", func(t *testing.T) {
		_, err := New(Config{TrustedRoot: []byte(`{"mediaType": 7}`)})
		refusal(t, err, ErrConfig, "trusted root: not a valid sigstore trusted_root.json")
		_, err = New(Config{})
		refusal(t, err, ErrConfig, "trusted root: none given")
	})
}

func TestArtifactForms(t *testing.T) {
	v := newTestVerifier(t)
	r := releases[2]
	tgz := readTestdata(t, r.tgz)
	fromBytes := ArtifactFromBytes(r.tgz, tgz)
	fromReader, err := ArtifactFromReader(r.tgz, bytes.NewReader(tgz))
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(fromBytes, fromReader); diff != "" {
		t.Errorf("reader vs bytes (-bytes, +reader):\n%s", diff)
	}
	want := wantFacts(r)
	for _, d := range fromBytes.digests() {
		a, err := ArtifactFromDigest(r.tgz, d.Algorithm, d.Hex)
		if err != nil {
			t.Fatal(err)
		}
		f, err := v.Verify(readTestdata(t, r.provenance), a)
		if d.Algorithm == "sha256" {
			// The npm subject carries only sha512: a sha256 alone cannot match.
			refusal(t, err, ErrMismatch, "has only sha512 digests and the sha256 of sigstore-2.0.0.tgz was given")
			continue
		}
		if err != nil {
			t.Fatalf("%s digest: %v", d.Algorithm, err)
		}
		if f.LogIndex != want.LogIndex || f.SubjectDigest != want.SubjectDigest {
			t.Errorf("%s digest: log %d subject %v, want %d %v", d.Algorithm, f.LogIndex, f.SubjectDigest, want.LogIndex, want.SubjectDigest)
		}
	}
	for _, bad := range []struct{ alg, hex string }{
		{"sha512", "00"}, {"md5", strings.Repeat("0", 32)}, {"sha256", strings.Repeat("G", 64)}, {"sha256", strings.Repeat("A", 64)},
	} {
		if _, err := ArtifactFromDigest("x.tgz", bad.alg, bad.hex); err == nil {
			t.Errorf("ArtifactFromDigest(%q, %q) accepted", bad.alg, bad.hex)
		}
	}
	if got := NPMSubject("@sigstore/cli", "0.1.0"); got != "pkg:npm/%40sigstore/cli@0.1.0" {
		t.Errorf("NPMSubject scoped = %q", got)
	}
}

func TestPolicyValidate(t *testing.T) {
	good := ghPolicy("p", "https://github.com/o/r", ".github/workflows/w.yml", "refs/tags/v*")
	if err := good.Validate(); err != nil {
		t.Fatal(err)
	}
	for name, p := range map[string]Policy{
		"required, nobody":  {Package: "p", RequireProvenance: true},
		"no issuer":         {Package: "p", Publishers: []Publisher{{Repository: "r", WorkflowPath: "w", Refs: []string{"x"}}}},
		"no repository":     {Package: "p", Publishers: []Publisher{{Issuer: "i", WorkflowPath: "w", Refs: []string{"x"}}}},
		"no workflow":       {Package: "p", Publishers: []Publisher{{Issuer: "i", Repository: "r", Refs: []string{"x"}}}},
		"no refs":           {Package: "p", Publishers: []Publisher{{Issuer: "i", Repository: "r", WorkflowPath: "w"}}},
		"bad ref pattern":   {Package: "p", Publishers: []Publisher{{Issuer: "i", Repository: "r", WorkflowPath: "w", Refs: []string{"refs/[tags"}}}},
		"empty ref pattern": {Package: "p", Publishers: []Publisher{{Issuer: "i", Repository: "r", WorkflowPath: "w", Refs: []string{""}}}},
	} {
		err := p.Validate()
		if !errors.Is(err, ErrConfig) {
			t.Errorf("%s: Validate = %v, want ErrConfig", name, err)
		}
	}
}

func TestUntrustedTextStaysOnOneLine(t *testing.T) {
	f := &Facts{Present: true, Verified: true, Issuer: GitHubActionsIssuer,
		Repository: "https://github.com/evil/fork\n\x1b[32mOK\u202e", Workflow: "w", Ref: "refs/heads/main"}
	err := ghPolicy("p", "https://github.com/o/r", "w", "refs/heads/main").Evaluate("a\r.tgz", f)
	msg := err.Error()
	if strings.ContainsAny(msg, "\n\r\x1b\u202e") {
		t.Errorf("control characters leaked into %q", msg)
	}
	if !strings.Contains(msg, `\x1b[32mOK\u202e`) {
		t.Errorf("escaped text missing from %q", msg)
	}
}
