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
