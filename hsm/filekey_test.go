package hsm_test

import (
	"path/filepath"
	"testing"

	"airlock.dev/airlock/hsm"
	"airlock.dev/airlock/hsm/hsmtest"
)

func TestFileSignerConformance(t *testing.T) {
	for _, alg := range []hsm.Algorithm{hsm.ECDSAP256, hsm.Ed25519} {
		t.Run(string(alg), func(t *testing.T) {
			hsmtest.RunSignerTests(t, func(t *testing.T) hsm.Signer {
				path := filepath.Join(t.TempDir(), "k.pem")
				if _, err := hsm.GenerateFileKey(path, alg, "alice", nil); err != nil {
					t.Fatal(err)
				}
				s, err := hsm.LoadFileKey(path)
				if err != nil {
					t.Fatal(err)
				}
				if s.Holder() != "alice" {
					t.Fatalf("holder %q, want alice", s.Holder())
				}
				return s
			})
		})
	}
}

// TestHardwareConformance holds development file keys to hsmtest's table:
// they sign, have no PIN, touch or removal, and carry no attestation.
func TestHardwareConformance(t *testing.T) {
	hsmtest.RunHardwareTests(t, hsm.KindFile, func(t *testing.T) *hsmtest.Device {
		path := filepath.Join(t.TempDir(), "k.pem")
		if _, err := hsm.GenerateFileKey(path, hsm.ECDSAP256, "alice", nil); err != nil {
			t.Fatal(err)
		}
		return &hsmtest.Device{Open: func(t *testing.T, _ hsm.Prompter) hsm.Signer {
			s, err := hsm.LoadFileKey(path)
			if err != nil {
				t.Fatal(err)
			}
			return s
		}}
	})
}
