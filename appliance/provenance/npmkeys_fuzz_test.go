package provenance

import (
	"os"
	"testing"
)

// FuzzParseNPMKeys feeds hostile npm-keys.json files to parseNPMKeys: it
// must not panic, and what it accepts stays within maxNPMKeys keys.
func FuzzParseNPMKeys(f *testing.F) {
	good, err := os.ReadFile("testdata/npm-keys.json")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	f.Add([]byte(`{"keys":[]}`))
	f.Add([]byte(`{"keys":[{"keyid":"x","keyusage":"npm:attestations","publicKey":{"rawBytes":"AA==","keyDetails":"PKIX_ECDSA_P256_SHA_256","validFor":{"start":"1970-01-01T00:00:00Z"}}}]}`))
	f.Add([]byte(`null`))
	f.Fuzz(func(t *testing.T, data []byte) {
		_, ids, err := parseNPMKeys(data)
		if err != nil {
			return
		}
		if len(ids) > maxNPMKeys {
			t.Fatalf("accepted %d keys, over the %d cap", len(ids), maxNPMKeys)
		}
	})
}
