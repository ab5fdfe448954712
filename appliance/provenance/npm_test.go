package provenance

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

const npmKeyID = "SHA256:jl3bwswu80PjjokCgh0o2w5c2U4LhQAE57gj9cz1kzA"

func TestVerifyPublishRealReleases(t *testing.T) {
	v := newTestVerifier(t)
	want := map[string]*PublishFacts{
		"sigstore@1.0.0": {LogIndex: 12988399, IntegratedTime: utc("2023-02-09T17:56:02Z")},
		"sigstore@1.3.0": {LogIndex: 18300940, IntegratedTime: utc("2023-04-18T17:45:16Z")},
		"tuf-js@1.0.0":   {LogIndex: 12987349, IntegratedTime: utc("2023-02-09T17:38:27Z")},
	}
	for _, r := range releases {
		if r.publish == "" {
			continue
		}
		id := r.name + "@" + r.version
		t.Run(id, func(t *testing.T) {
			pf, err := v.VerifyPublish(readTestdata(t, r.publish), r.artifact(t))
			if err != nil {
				t.Fatalf("VerifyPublish: %v", err)
			}
			w := want[id]
			w.Verified = true
			w.PredicateType = NPMPublishPredicate
			w.SubjectName = NPMSubject(r.name, r.version)
			w.SubjectDigest = wantFacts(r).SubjectDigest
			w.Name, w.Version, w.Registry = r.name, r.version, "https://registry.npmjs.org"
			w.KeyID = npmKeyID
			if diff := cmp.Diff(w, pf, cmpopts.IgnoreFields(PublishFacts{}, "Checks")); diff != "" {
				t.Errorf("publish facts (-want, +got):\n%s", diff)
			}
			for _, c := range pf.Checks {
				if !c.OK {
					t.Errorf("check %q failed: %s", c.Name, c.Detail)
				}
			}
		})
	}
}

// npmKeysWith returns the pinned npm keys file with fn applied to each key.
func npmKeysWith(t *testing.T, fn func(k map[string]any)) []byte {
	t.Helper()
	return mutateBundle(t, readTestdata(t, "npm-keys.json"), func(f map[string]any) {
		for _, k := range f["keys"].([]any) {
			fn(k.(map[string]any))
		}
	})
}

func TestVerifyPublishRefusals(t *testing.T) {
	r := releases[0] // sigstore@1.0.0, logged 2023-02-09
	pub := readTestdata(t, r.publish)
	tr := readTestdata(t, "trusted_root.json")
	v := newTestVerifier(t)

	t.Run("wrong tarball", func(t *testing.T) {
		_, err := v.VerifyPublish(pub, releases[3].artifact(t))
		refusal(t, err, ErrMismatch, "publish attestation for tuf-js-1.0.0.tgz: sha512 of tuf-js-1.0.0.tgz is d5dc6c4301120f30…")
	})
	t.Run("no npm keys pinned", func(t *testing.T) {
		v, err := New(Config{TrustedRoot: tr})
		if err != nil {
			t.Fatal(err)
		}
		_, err = v.VerifyPublish(pub, r.artifact(t))
		refusal(t, err, ErrConfig, "no npm registry keys are pinned")
	})
	t.Run("key not valid at the logged time", func(t *testing.T) {
		keys := npmKeysWith(t, func(k map[string]any) {
			k["publicKey"].(map[string]any)["validFor"] = map[string]any{"start": "2024-01-01T00:00:00.000Z"}
		})
		v, err := New(Config{TrustedRoot: tr, NPMKeys: keys})
		if err != nil {
			t.Fatal(err)
		}
		_, err = v.VerifyPublish(pub, r.artifact(t))
		refusal(t, err, ErrUnverified, "the registry key was not valid when the attestation was logged")
	})
	t.Run("unknown key", func(t *testing.T) {
		keys := npmKeysWith(t, func(k map[string]any) { k["keyId"] = k["keyId"].(string) + "x" })
		v, err := New(Config{TrustedRoot: tr, NPMKeys: keys})
		if err != nil {
			t.Fatal(err)
		}
		_, err = v.VerifyPublish(pub, r.artifact(t))
		refusal(t, err, ErrUnverified, "signed with key "+npmKeyID+", which is not a pinned npm registry key")
	})
	t.Run("other key under the pinned id", func(t *testing.T) {
		// The second key in the file (valid from 2025) under the first key's id.
		keys := mutateBundle(t, readTestdata(t, "npm-keys.json"), func(f map[string]any) {
			ks := f["keys"].([]any)
			other := ks[3].(map[string]any)["publicKey"].(map[string]any)["rawBytes"]
			ks[1].(map[string]any)["publicKey"].(map[string]any)["rawBytes"] = other
			f["keys"] = ks[:2]
		})
		v, err := New(Config{TrustedRoot: tr, NPMKeys: keys})
		if err != nil {
			t.Fatal(err)
		}
		_, err = v.VerifyPublish(pub, r.artifact(t))
		refusal(t, err, ErrUnverified, "publish attestation for sigstore-1.0.0.tgz: ")
	})
	t.Run("provenance given as publish attestation", func(t *testing.T) {
		_, err := v.VerifyPublish(readTestdata(t, r.provenance), r.artifact(t))
		refusal(t, err, ErrMalformed, "is not the npm publish attestation")
	})
	t.Run("review refuses a bad publish attestation", func(t *testing.T) {
		p := ghPolicy("sigstore", "https://github.com/sigstore/sigstore-js", ".github/workflows/publish.yml", "refs/tags/v*")
		f, err := v.Review(r.artifact(t), Evidence{Provenance: readTestdata(t, r.provenance), Publish: readTestdata(t, releases[1].publish)}, p)
		refusal(t, err, ErrMismatch, "publish attestation for sigstore-1.0.0.tgz: ")
		if f.Publish == nil || f.Publish.Verified {
			t.Errorf("publish facts = %+v, want present and unverified", f.Publish)
		}
	})
}

func TestNPMKeysFileRefusals(t *testing.T) {
	tr := readTestdata(t, "trusted_root.json")
	for name, keys := range map[string]string{
		"not json":        `{"keys": [`,
		"unknown field":   `{"keys": [], "extra": 1}`,
		"no attestations": `{"keys": [{"keyId": "a", "keyUsage": "npm:signatures", "publicKey": {}}]}`,
		"bad base64":      `{"keys": [{"keyId": "a", "keyUsage": "npm:attestations", "publicKey": {"rawBytes": "!!", "keyDetails": "PKIX_ECDSA_P256_SHA_256"}}]}`,
		"bad key type":    `{"keys": [{"keyId": "a", "keyUsage": "npm:attestations", "publicKey": {"rawBytes": "", "keyDetails": "PKIX_RSA"}}]}`,
		"too big":         `{"keys": [` + strings.Repeat(" ", MaxNPMKeysBytes) + `]}`,
	} {
		_, err := New(Config{TrustedRoot: tr, NPMKeys: []byte(keys)})
		t.Run(name, func(t *testing.T) { refusal(t, err, ErrConfig, "npm registry keys: ") })
	}
}
