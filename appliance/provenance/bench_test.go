package provenance

import "testing"

// BenchmarkVerify verifies one real provenance bundle (sigstore@2.0.0, SLSA
// v1, inclusion promise and proof) against a digest, as the appliance does
// per artifact.
func BenchmarkVerify(b *testing.B) {
	v := newTestVerifier(b)
	r := releases[2]
	bundle := readTestdata(b, r.provenance)
	a := r.artifact(b)
	b.SetBytes(int64(len(bundle)))
	b.ReportAllocs()
	for b.Loop() {
		f, err := v.Verify(bundle, a)
		if err != nil || !f.Verified {
			b.Fatal(err)
		}
	}
}

// BenchmarkReview is the full per-artifact step: provenance, publish
// attestation and policy (sigstore@1.0.0).
func BenchmarkReview(b *testing.B) {
	v := newTestVerifier(b)
	r := releases[0]
	e := Evidence{Provenance: readTestdata(b, r.provenance), Publish: readTestdata(b, r.publish)}
	a := r.artifact(b)
	p := ghPolicy("sigstore", "https://github.com/sigstore/sigstore-js", ".github/workflows/publish.yml", "refs/tags/v*")
	b.ReportAllocs()
	for b.Loop() {
		if _, err := v.Review(a, e, p); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkNew measures loading the pinned trusted root and npm keys.
func BenchmarkNew(b *testing.B) {
	cfg := Config{TrustedRoot: readTestdata(b, "trusted_root.json"), NPMKeys: readTestdata(b, "npm-keys.json")}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := New(cfg); err != nil {
			b.Fatal(err)
		}
	}
}
