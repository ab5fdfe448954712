package provenance

import (
	"bytes"
	"crypto"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/sigstore/sigstore-go/pkg/root"
	"github.com/sigstore/sigstore-go/pkg/verify"
	"github.com/sigstore/sigstore/pkg/signature"
)

// npmAttestationsUsage is the key usage of registry keys that sign publish attestations.
const npmAttestationsUsage = "npm:attestations"

// maxNPMKeys caps the number of keys in npm-keys.json.
const maxNPMKeys = 64

// parseNPMKeys reads npm-keys.json and keeps the keys whose usage is
// npm:attestations, each with its validity window. A key is only accepted
// for a signature whose proven (logged) time lies inside its window.
func parseNPMKeys(data []byte) (*root.TrustedPublicKeyMaterial, []string, error) {
	if len(data) > MaxNPMKeysBytes {
		return nil, nil, fmt.Errorf("npm keys file is %d bytes, the limit is %d", len(data), MaxNPMKeysBytes)
	}
	var file struct {
		Keys []struct {
			KeyID     string `json:"keyId"`
			KeyUsage  string `json:"keyUsage"`
			PublicKey struct {
				RawBytes   string `json:"rawBytes"`
				KeyDetails string `json:"keyDetails"`
				ValidFor   struct {
					Start string `json:"start"`
					End   string `json:"end"`
				} `json:"validFor"`
			} `json:"publicKey"`
		} `json:"keys"`
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&file); err != nil {
		return nil, nil, fmt.Errorf("npm keys file is not valid json: %v", err)
	}
	if len(file.Keys) > maxNPMKeys {
		return nil, nil, fmt.Errorf("npm keys file has %d keys, the limit is %d", len(file.Keys), maxNPMKeys)
	}
	keys := map[string]*root.ExpiringKey{}
	var ids []string
	for i, k := range file.Keys {
		if k.KeyUsage != npmAttestationsUsage {
			continue
		}
		if k.KeyID == "" {
			return nil, nil, fmt.Errorf("npm key[%d] has no keyId", i)
		}
		if _, dup := keys[k.KeyID]; dup {
			return nil, nil, fmt.Errorf("npm key[%d]: key id %s is listed twice for %s", i, oneLine(k.KeyID), npmAttestationsUsage)
		}
		if k.PublicKey.KeyDetails != "PKIX_ECDSA_P256_SHA_256" {
			return nil, nil, fmt.Errorf("npm key[%d]: key details %s are not supported (only PKIX_ECDSA_P256_SHA_256)", i, oneLine(k.PublicKey.KeyDetails))
		}
		der, err := base64.StdEncoding.DecodeString(k.PublicKey.RawBytes)
		if err != nil {
			return nil, nil, fmt.Errorf("npm key[%d]: rawBytes is not base64: %v", i, err)
		}
		pub, err := x509.ParsePKIXPublicKey(der)
		if err != nil {
			return nil, nil, fmt.Errorf("npm key[%d]: not a pkix public key: %v", i, err)
		}
		sv, err := signature.LoadVerifier(pub, crypto.SHA256)
		if err != nil {
			return nil, nil, fmt.Errorf("npm key[%d]: %v", i, err)
		}
		var start, end time.Time
		if s := k.PublicKey.ValidFor.Start; s != "" {
			if start, err = time.Parse(time.RFC3339, s); err != nil {
				return nil, nil, fmt.Errorf("npm key[%d]: validFor.start is not an rfc 3339 time", i)
			}
		}
		if s := k.PublicKey.ValidFor.End; s != "" {
			if end, err = time.Parse(time.RFC3339, s); err != nil {
				return nil, nil, fmt.Errorf("npm key[%d]: validFor.end is not an rfc 3339 time", i)
			}
		}
		keys[k.KeyID] = root.NewExpiringKey(sv, start, end)
		ids = append(ids, k.KeyID)
	}
	if len(keys) == 0 {
		return nil, nil, errors.New("npm keys file has no key for " + npmAttestationsUsage)
	}
	return root.NewTrustedPublicKeyMaterialFromMapping(keys), ids, nil
}

// VerifyPublish verifies an npm registry "publish" attestation bundle for
// the artifact: a DSSE in-toto statement signed with a registry key from the
// pinned npm keys (no certificate), logged in Rekor within the key's validity
// window, whose subject is the artifact and whose predicate names the same
// package and version as the subject. It returns the facts found so far even
// when it refuses; the error is then a *Refusal.
func (v *Verifier) VerifyPublish(bundleJSON []byte, a Artifact) (*PublishFacts, error) {
	pf := &PublishFacts{}
	const what = "publish attestation"
	refuse := func(kind error, step string, cause error, format string, args ...any) (*PublishFacts, error) {
		reason := fmt.Sprintf(format, args...)
		pf.fail(step, reason)
		return pf, &Refusal{What: what, Artifact: a.name(), Kind: kind, Cause: cause, Reason: reason}
	}
	if v.npm == nil {
		return refuse(ErrConfig, "registry key", nil, "no npm registry keys are pinned: add npm-keys.json to the appliance's trust")
	}
	p, r := parseBundle(bundleJSON, a, what)
	if p != nil {
		pf.PredicateType = p.st.PredicateType
		pf.SubjectName = p.st.Subject[0].Name
	}
	if r != nil {
		pf.fail(stepFor(r.Kind), r.Reason)
		return pf, r
	}
	pf.SubjectName, pf.SubjectDigest = p.subject.Name, p.digest
	pf.pass("artifact digest", fmt.Sprintf("%s of %s equals the digest of subject %s", p.digest.Algorithm, a.name(), oneLine(p.subject.Name)))
	if p.st.PredicateType != NPMPublishPredicate {
		return refuse(ErrMalformed, "statement", nil, "predicate type %s is not the npm publish attestation %s", oneLine(p.st.PredicateType), NPMPublishPredicate)
	}
	var pred struct {
		Name     string `json:"name"`
		Version  string `json:"version"`
		Registry string `json:"registry"`
	}
	if err := lenientUnmarshal(p.st.Predicate, &pred); err != nil {
		return refuse(ErrMalformed, "statement", err, "%v", err)
	}
	if len(pred.Name) > MaxFactBytes || len(pred.Version) > MaxFactBytes || len(pred.Registry) > MaxFactBytes {
		return refuse(ErrMalformed, "statement", nil, "a predicate field is longer than %d bytes", MaxFactBytes)
	}
	pf.Name, pf.Version, pf.Registry = pred.Name, pred.Version, pred.Registry
	if want := NPMSubject(pred.Name, pred.Version); want != p.subject.Name {
		return refuse(ErrUnverified, "statement", nil, "predicate names %s but the subject is %s", oneLine(want), oneLine(p.subject.Name))
	}
	vc, err := p.b.VerificationContent()
	if err != nil || vc.PublicKey() == nil {
		return refuse(ErrUnverified, "registry key", err, "bundle is not signed with a registry key")
	}
	pf.KeyID = vc.PublicKey().Hint()
	if !slices.Contains(v.npmKeyIDs, pf.KeyID) {
		return refuse(ErrUnverified, "registry key", nil, "signed with key %s, which is not a pinned npm registry key", oneLine(pf.KeyID))
	}
	digest, _ := hex.DecodeString(p.digest.Hex)
	res, err := v.npm.Verify(p.b, verify.NewPolicy(verify.WithArtifactDigest(p.digest.Algorithm, digest), verify.WithKey()))
	if err != nil {
		step, hint := classify(err)
		if strings.Contains(err.Error(), "public key validity") || strings.Contains(err.Error(), "outside certificate validity") {
			step = "registry key"
			hint = ": the registry key was not valid when the attestation was logged"
		}
		return refuse(ErrUnverified, step, err, "%s check failed: %s%s", step, oneLineLong(err.Error()), hint)
	}
	entries, _ := p.b.TlogEntries()
	logs := v.trusted.RekorLogs()
	for _, e := range entries {
		if _, ok := logs[hex.EncodeToString([]byte(e.LogKeyID()))]; ok {
			pf.LogIndex, pf.IntegratedTime = e.LogIndex(), e.IntegratedTime().UTC()
			pf.pass("transparency log", fmt.Sprintf("rekor entry %d verified", pf.LogIndex))
			break
		}
	}
	for _, ts := range res.VerifiedTimestamps {
		pf.pass("timestamp", "time "+ts.Timestamp.UTC().Format("2006-01-02T15:04:05Z"))
	}
	pf.pass("signature", "dsse signature verified with registry key "+oneLine(pf.KeyID)+", valid at the logged time")
	pf.pass("statement", fmt.Sprintf("registry %s published %s", oneLine(pf.Registry), oneLine(pf.SubjectName)))
	pf.Verified = true
	return pf, nil
}
