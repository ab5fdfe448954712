package attest_test

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-tpm/tpm2"
	"github.com/google/go-tpm/tpm2/transport"

	"airlock.dev/airlock/hsm"
	"airlock.dev/airlock/hsm/attest"
	"airlock.dev/airlock/hsm/tpm"
	"airlock.dev/airlock/hsm/tpm/keypolicy"
	"airlock.dev/airlock/hsm/tpm/tpmtest"
)

var updateTPMGolden = flag.Bool("update-tpm-golden", false, "rewrite testdata/tpm-*.json from the tpm simulator")

const tpmPIN = "135790"

func tpmEnroll(t *testing.T, dev string, handle uint32, pcrs []int) *tpm.Enrollment {
	t.Helper()
	e, err := tpm.Enroll(context.Background(), dev, tpm.EnrollOptions{Handle: handle, PIN: []byte(tpmPIN), PCRs: pcrs, Holder: "Grace Hopper"})
	if err != nil {
		t.Fatalf("Enroll: %v", err)
	}
	return e
}

func tpmAK(t *testing.T, dev string) crypto.PublicKey {
	t.Helper()
	ak, err := tpm.AttestationKey(context.Background(), dev)
	if err != nil {
		t.Fatalf("AttestationKey: %v", err)
	}
	return ak
}

func clone(a *hsm.Attestation) *hsm.Attestation {
	c := *a
	c.Statement = bytes.Clone(a.Statement)
	c.Signature = bytes.Clone(a.Signature)
	c.AttestationKey = bytes.Clone(a.AttestationKey)
	c.KeyPublic = bytes.Clone(a.KeyPublic)
	return &c
}

func TestTPMAttestation(t *testing.T) {
	for _, d := range []struct {
		name string
		open func(testing.TB) string
	}{{"simulator", tpmtest.Simulator}, {"swtpm", tpmtest.Swtpm}} {
		t.Run(d.name, func(t *testing.T) {
			dev := d.open(t)
			plain := tpmEnroll(t, dev, 0x81000010, nil)
			bound := tpmEnroll(t, dev, 0x81000011, []int{0, 7})
			opts := attest.Options{TPMAttestationKeys: []crypto.PublicKey{tpmAK(t, dev)}}

			f, err := attest.Verify(plain.Attestation, plain.Public, opts)
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			want := &attest.Facts{Format: hsm.AttestationTPM2Certify, Hardware: true, PINPolicy: "always", Issuer: f.Issuer}
			if diff := cmp.Diff(want, f); diff != "" {
				t.Errorf("facts (-want +got):\n%s", diff)
			}
			if fp, err := attest.TPMAttestationKeyFingerprint(opts.TPMAttestationKeys[0]); err != nil || f.Issuer != fp {
				t.Errorf("issuer %q, want the pinned attestation key's fingerprint %q (%v)", f.Issuer, fp, err)
			}
			if err := (attest.Policy{RequireHardware: true, RequirePINAlways: true}).Check(f); err != nil {
				t.Errorf("policy: %v", err)
			}

			f, err = attest.Verify(bound.Attestation, bound.Public, opts)
			if err != nil {
				t.Fatalf("Verify of a pcr-bound key: %v", err)
			}
			if diff := cmp.Diff([]int{0, 7}, f.PCRs); diff != "" {
				t.Errorf("PCRs (-want +got):\n%s", diff)
			}

			other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
			for _, tc := range []struct {
				name string
				att  func() *hsm.Attestation
				pub  crypto.PublicKey
				opts attest.Options
				want string
			}{
				{"another pinned ak", func() *hsm.Attestation { return plain.Attestation }, plain.Public,
					attest.Options{TPMAttestationKeys: []crypto.PublicKey{&other.PublicKey}}, "not trusted"},
				{"no pinned ak", func() *hsm.Attestation { return plain.Attestation }, plain.Public, attest.Options{}, "not trusted"},
				{"tampered statement", func() *hsm.Attestation {
					a := clone(plain.Attestation)
					a.Statement[len(a.Statement)-5] ^= 1
					return a
				}, plain.Public, opts, "does not verify"},
				{"tampered signature", func() *hsm.Attestation {
					a := clone(plain.Attestation)
					a.Signature[len(a.Signature)-1] ^= 1
					return a
				}, plain.Public, opts, "does not verify"},
				{"another public key", func() *hsm.Attestation { return plain.Attestation }, bound.Public, opts, "not this public key"},
				{"another key's public area", func() *hsm.Attestation {
					a := clone(plain.Attestation)
					a.KeyPublic = bound.Attestation.KeyPublic
					return a
				}, bound.Public, opts, "another key"},
				{"pcr binding stripped", func() *hsm.Attestation {
					// A statement from another key with a different policy.
					a := clone(bound.Attestation)
					a.KeyPublic = plain.Attestation.KeyPublic
					return a
				}, plain.Public, opts, "another key"},
				{"trailing bytes", func() *hsm.Attestation {
					a := clone(plain.Attestation)
					a.KeyPublic = append(a.KeyPublic, 0)
					return a
				}, plain.Public, opts, "trailing"},
				{"empty statement", func() *hsm.Attestation {
					a := clone(plain.Attestation)
					a.Statement = nil
					return a
				}, plain.Public, opts, "missing"},
			} {
				t.Run(tc.name, func(t *testing.T) {
					_, err := attest.Verify(tc.att(), tc.pub, tc.opts)
					if err == nil || !strings.Contains(err.Error(), tc.want) {
						t.Fatalf("Verify: %v, want an error saying %q", err, tc.want)
					}
				})
			}
		})
	}
}

// TestTPMAttestationRefusesWeakKey certifies, with the real attestation key,
// a key that could sign without its PIN (userWithAuth set), and a key whose
// policy is not the PIN policy; neither attestation is accepted.
func TestTPMAttestationRefusesWeakKey(t *testing.T) {
	dev := tpmtest.Simulator(t)
	ak := tpmAK(t, dev)
	policy, err := keypolicy.PolicyDigest(nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	withAuth := keypolicy.Template(policy)
	withAuth.ObjectAttributes.UserWithAuth = true
	otherPolicy := keypolicy.Template(bytes.Repeat([]byte{1}, 32))
	extra, err := keypolicy.ExtraData(nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name     string
		template tpm2.TPMTPublic
		want     string
	}{
		{"userWithAuth", withAuth, "userWithAuth"},
		{"foreign policy", otherPolicy, "policy"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var att *hsm.Attestation
			var pub crypto.PublicKey
			err := tpmtest.With(t, dev, func(tp transport.TPM) error {
				var err error
				att, pub, err = certifyTemplate(tp, tc.template, extra)
				return err
			})
			if err != nil {
				t.Fatalf("certify: %v", err)
			}
			_, err = attest.Verify(att, pub, attest.Options{TPMAttestationKeys: []crypto.PublicKey{ak}})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Verify: %v, want an error saying %q", err, tc.want)
			}
		})
	}
}

// certifyTemplate creates a primary key from template in the owner
// hierarchy and certifies it with the Airlock attestation key.
func certifyTemplate(tp transport.TPM, template tpm2.TPMTPublic, extra []byte) (*hsm.Attestation, crypto.PublicKey, error) {
	key, err := tpm2.CreatePrimary{PrimaryHandle: tpm2.TPMRHOwner, InPublic: tpm2.New2B(template)}.Execute(tp)
	if err != nil {
		return nil, nil, err
	}
	defer tpm2.FlushContext{FlushHandle: key.ObjectHandle}.Execute(tp)
	akRsp, err := tpm2.ReadPublic{ObjectHandle: tpm2.TPMHandle(tpm.AKHandle)}.Execute(tp)
	if err != nil {
		return nil, nil, err
	}
	cert, err := tpm2.Certify{
		ObjectHandle:   tpm2.AuthHandle{Handle: key.ObjectHandle, Name: key.Name, Auth: tpm2.PasswordAuth(nil)},
		SignHandle:     tpm2.AuthHandle{Handle: tpm2.TPMHandle(tpm.AKHandle), Name: akRsp.Name, Auth: tpm2.PasswordAuth(nil)},
		QualifyingData: tpm2.TPM2BData{Buffer: extra},
		InScheme:       tpm2.TPMTSigScheme{Scheme: tpm2.TPMAlgNull},
	}.Execute(tp)
	if err != nil {
		return nil, nil, err
	}
	pubArea, err := key.OutPublic.Contents()
	if err != nil {
		return nil, nil, err
	}
	pub, err := tpm2.Pub(*pubArea)
	if err != nil {
		return nil, nil, err
	}
	return &hsm.Attestation{
		Format:         hsm.AttestationTPM2Certify,
		Statement:      cert.CertifyInfo.Bytes(),
		Signature:      tpm2.Marshal(cert.Signature),
		AttestationKey: akRsp.OutPublic.Bytes(),
		KeyPublic:      key.OutPublic.Bytes(),
	}, pub, nil
}

// golden is a real attestation from the simulator, kept so that offline
// verification (and its fuzz target) run without cgo or a TPM.
type golden struct {
	Attestation    *hsm.Attestation `json:"attestation"`
	PublicKey      string           `json:"public_key"`
	AttestationKey string           `json:"attestation_key"`
	PCRs           []int            `json:"pcrs"`
}

var goldenFiles = []string{"tpm-plain.json", "tpm-pcr.json"}

func TestTPMAttestationGolden(t *testing.T) {
	if *updateTPMGolden {
		dev := tpmtest.Simulator(t)
		ak := tpmAK(t, dev)
		for i, pcrs := range [][]int{nil, {7}} {
			e := tpmEnroll(t, dev, 0x81000010+uint32(i), pcrs)
			g := golden{Attestation: e.Attestation, PublicKey: pemKey(t, e.Public), AttestationKey: pemKey(t, ak), PCRs: pcrs}
			b, err := json.MarshalIndent(g, "", "  ")
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join("testdata", goldenFiles[i]), append(b, '\n'), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	for _, name := range goldenFiles {
		t.Run(name, func(t *testing.T) {
			g, pub, ak := loadGolden(t, name)
			f, err := attest.Verify(g.Attestation, pub, attest.Options{TPMAttestationKeys: []crypto.PublicKey{ak}})
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			if diff := cmp.Diff(g.PCRs, f.PCRs); diff != "" {
				t.Errorf("PCRs (-want +got):\n%s", diff)
			}
		})
	}
}

func pemKey(t testing.TB, k crypto.PublicKey) string {
	der, err := x509.MarshalPKIXPublicKey(k)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
}

func parsePEMKey(t testing.TB, s string) crypto.PublicKey {
	b, _ := pem.Decode([]byte(s))
	if b == nil {
		t.Fatal("no pem block")
	}
	k, err := x509.ParsePKIXPublicKey(b.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func loadGolden(t testing.TB, name string) (*golden, crypto.PublicKey, crypto.PublicKey) {
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	var g golden
	if err := json.Unmarshal(b, &g); err != nil {
		t.Fatal(err)
	}
	return &g, parsePEMKey(t, g.PublicKey), parsePEMKey(t, g.AttestationKey)
}

// FuzzVerifyTPM feeds hostile attestations to the verifier: it must never
// panic, and may accept only the statement and key it was seeded with
// (nobody but the attestation key can sign another).
func FuzzVerifyTPM(f *testing.F) {
	g, pub, ak := loadGolden(f, goldenFiles[1])
	for _, name := range goldenFiles {
		s, _, _ := loadGolden(f, name)
		a := s.Attestation
		f.Add(a.Statement, a.Signature, a.AttestationKey, a.KeyPublic)
	}
	a := g.Attestation
	f.Add(a.Statement[:len(a.Statement)/2], a.Signature, a.AttestationKey, a.KeyPublic)
	f.Add(a.Statement, a.Signature[:4], a.AttestationKey, a.KeyPublic)
	f.Add(a.Statement, a.Signature, a.KeyPublic, a.AttestationKey)
	f.Add([]byte{}, []byte{}, []byte{}, []byte{})
	opts := attest.Options{TPMAttestationKeys: []crypto.PublicKey{ak}}
	f.Fuzz(func(t *testing.T, stmt, sig, akPub, keyPub []byte) {
		att := &hsm.Attestation{Format: hsm.AttestationTPM2Certify, Statement: stmt, Signature: sig, AttestationKey: akPub, KeyPublic: keyPub}
		facts, err := attest.Verify(att, pub, opts)
		if err != nil {
			return
		}
		if !bytes.Equal(stmt, a.Statement) || !bytes.Equal(keyPub, a.KeyPublic) {
			t.Fatalf("accepted a statement or key the attestation key never signed")
		}
		if !facts.Hardware || facts.PINPolicy != "always" {
			t.Fatalf("accepted with facts %+v", facts)
		}
	})
}
