package tpm_test

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"testing"

	"airlock.dev/airlock/hsm"
	"airlock.dev/airlock/hsm/attest"
	"airlock.dev/airlock/hsm/hsmtest"
	"airlock.dev/airlock/hsm/tpm/tpmtest"
)

// TestHardwareConformance holds the TPM back end, on the simulator and on
// swtpm, to hsmtest's table of outcomes.
func TestHardwareConformance(t *testing.T) {
	for name, open := range map[string]func(testing.TB) string{"simulator": tpmtest.Simulator, "swtpm": tpmtest.Swtpm} {
		t.Run(name, func(t *testing.T) {
			hsmtest.RunHardwareTests(t, hsm.KindTPM, func(t *testing.T) *hsmtest.Device {
				dev := open(t)
				e := enroll(t, dev, testHandle, nil)
				other, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
				if err != nil {
					t.Fatal(err)
				}
				return &hsmtest.Device{
					Open: func(t *testing.T, p hsm.Prompter) hsm.Signer {
						s, err := hsm.Open(t.Context(), e.URI, p)
						if err != nil {
							t.Fatalf("hsm.Open(%s): %v", e.URI, err)
						}
						t.Cleanup(func() { s.(hsm.Closer).Close() })
						return s
					},
					PIN:      []byte(testPIN),
					WrongPIN: []byte("000000"),
					BeforeBlocking: func(t *testing.T) {
						tpmtest.SetDictionaryAttack(t, dev, 2, 1000, 1000)
						t.Cleanup(func() { tpmtest.ResetLockout(t, dev) })
					},
					// Trusting only another attestation key.
					Untrusting:  attest.Options{TPMAttestationKeys: []crypto.PublicKey{other.Public()}},
					RefusalSays: []string{"is not trusted"},
				}
			})
		})
	}
}
