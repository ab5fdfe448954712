package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"airlock.dev/airlock/hsm"
	"airlock.dev/airlock/tuf"
)

// Parsers of files and flags holders and officers hand to airlock: public
// keys, approval groups, certificate pools and attestation keys.

func seedKeyJSON(f *testing.F) []byte {
	s, err := hsm.GenerateFileKey(filepath.Join(f.TempDir(), "k.pem"), hsm.ECDSAP256, "alice", nil)
	if err != nil {
		f.Fatal(err)
	}
	k, err := tuf.KeyFromSigner(s)
	if err != nil {
		f.Fatal(err)
	}
	b, err := json.Marshal(k)
	if err != nil {
		f.Fatal(err)
	}
	return b
}

func seedCertPEM(f testing.TB) []byte {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		f.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "seed"},
		NotBefore: time.Unix(0, 0), NotAfter: time.Unix(1<<31, 0), IsCA: true, BasicConstraintsValid: true}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, k.Public(), k)
	if err != nil {
		f.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

func seedPublicKeyPEM(f testing.TB) []byte {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		f.Fatal(err)
	}
	der, err := x509.MarshalPKIXPublicKey(k.Public())
	if err != nil {
		f.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
}

// FuzzParseKeyJSON covers readKeyFile and loadPublicKey: a key accepted has
// a fingerprint.
func FuzzParseKeyJSON(f *testing.F) {
	k := seedKeyJSON(f)
	f.Add(k)
	f.Add([]byte(strings.Replace(string(k), "ecdsa", "rsa", 1)))
	f.Add([]byte(`{"keytype":"ed25519","scheme":"ed25519","keyval":{"public":"00"}}`))
	f.Add([]byte(`{}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, raw []byte) {
		key, err := parseKeyJSON("key.json", raw)
		if err != nil {
			if key != nil {
				t.Fatal("a key returned with an error")
			}
			return
		}
		if _, err := tuf.Fingerprint(key); err != nil {
			t.Fatalf("accepted a key without a fingerprint: %v", err)
		}
	})
}

func FuzzParseGroup(f *testing.F) {
	for _, s := range []string{"maintainers:1:#1,#2", "m:2:#1,abc", "m:0:#1", "m:3:#1,#2", "::", "m:1:", "m:1:#1,#1", "m:1:#9", "m:-1:#1", "a b:1:#1", "m:1:" + strings.Repeat("k,", 200) + "k"} {
		f.Add(s)
	}
	ids := []string{"id-one", "id-two"}
	f.Fuzz(func(t *testing.T, s string) {
		g, err := parseGroup(s, ids)
		if err != nil {
			return
		}
		if g.Name == "" || len(g.Name) > maxGroupName || g.Min < 1 || g.Min > len(g.KeyIDs) || len(g.KeyIDs) > maxGroupKeys {
			t.Fatalf("parseGroup(%q) = %+v", s, g)
		}
		seen := map[string]bool{}
		for _, k := range g.KeyIDs {
			if k == "" || seen[k] || strings.HasPrefix(k, "#") {
				t.Fatalf("parseGroup(%q): key ids %q", s, g.KeyIDs)
			}
			seen[k] = true
		}
	})
}

func FuzzParseCertPool(f *testing.F) {
	c := seedCertPEM(f)
	f.Add(c)
	f.Add(append(append([]byte("comment\n"), c...), c...))
	f.Add(append(c, "trailing"...))
	f.Add(seedPublicKeyPEM(f))
	f.Add([]byte("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"))
	f.Fuzz(func(t *testing.T, raw []byte) {
		pool, err := parseCertPool("roots.pem", raw)
		if err == nil && pool == nil {
			t.Fatal("no pool and no error")
		}
	})
}

func FuzzParsePublicKeyPEM(f *testing.F) {
	k := seedPublicKeyPEM(f)
	f.Add(k)
	f.Add(append(k, k...))
	f.Add(seedCertPEM(f))
	f.Add([]byte("-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n"))
	f.Fuzz(func(t *testing.T, raw []byte) {
		pub, err := parsePublicKeyPEM("ak.pem", raw)
		if err == nil && pub == nil {
			t.Fatal("no key and no error")
		}
	})
}

func TestParsersRefuseTrailingAndBadGroups(t *testing.T) {
	c, k := string(seedCertPEM(t)), string(seedPublicKeyPEM(t))
	if _, err := parseCertPool("roots.pem", []byte(c+c)); err != nil {
		t.Errorf("two certificates refused: %v", err)
	}
	for _, bad := range []string{"", "junk", c + "trailing", c + k, "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"} {
		if _, err := parseCertPool("roots.pem", []byte(bad)); err == nil {
			t.Errorf("parseCertPool(%q) accepted", bad)
		}
	}
	for _, bad := range []string{k + "trailing", k + k, c} {
		if _, err := parsePublicKeyPEM("ak.pem", []byte(bad)); err == nil {
			t.Errorf("parsePublicKeyPEM(%q) accepted", bad)
		}
	}
	for _, tc := range []struct{ spec, why string }{
		{"m:0:#1", "MIN must be a number from 1"},
		{"m:3:#1,#2", "MIN must be a number from 1"},
		{"m:1:#1,#1", "an empty or repeated key"},
		{"m:1:", "an empty or repeated key"},
		{":1:#1", "the name must be"},
		{"m:1:#3", "is not a --key index from 1 to 2"},
	} {
		_, err := parseGroup(tc.spec, []string{"a", "b"})
		if err == nil || !strings.Contains(err.Error(), tc.why) {
			t.Errorf("parseGroup(%q) = %v, want an error saying %q", tc.spec, err, tc.why)
		}
	}
	if g, err := parseGroup("maintainers:2:#1,#2", []string{"a", "b"}); err != nil || g.Min != 2 || len(g.KeyIDs) != 2 {
		t.Errorf("parseGroup of a good spec: %+v, %v", g, err)
	}
}
