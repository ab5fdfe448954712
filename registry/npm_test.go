package registry

import (
	"crypto/sha1"
	"crypto/sha512"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"os"
	"strings"
	"testing"
)

// publishDoc builds a publish document the way libnpmpublish does, with the
// provenance bundle as JSON text when prov is not nil.
func publishDoc(t testing.TB, name, version string, tgz, prov []byte) []byte {
	s1, s512 := sha1.Sum(tgz), sha512.Sum512(tgz)
	man := map[string]any{"name": name, "version": version, "_id": name + "@" + version,
		"dist": map[string]any{"shasum": hex.EncodeToString(s1[:]), "integrity": "sha512-" + base64.StdEncoding.EncodeToString(s512[:]),
			"tarball": "http://127.0.0.1/" + name + "/-/" + name + "-" + version + ".tgz"}}
	atts := map[string]any{name + "-" + version + ".tgz": map[string]any{"content_type": "application/octet-stream",
		"data": base64.StdEncoding.EncodeToString(tgz), "length": len(tgz)}}
	if prov != nil {
		atts[name+"-"+version+".sigstore"] = map[string]any{"content_type": "application/vnd.dev.sigstore.bundle+json;version=0.1",
			"data": string(prov), "length": len(prov)}
	}
	b, err := json.Marshal(map[string]any{"_id": name, "name": name, "dist-tags": map[string]string{"latest": version},
		"versions": map[string]any{version: man}, "_attachments": atts, "access": nil})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestParsePublishRealRelease(t *testing.T) {
	tgz, err := os.ReadFile("testdata/tuf-js-1.0.0.tgz")
	if err != nil {
		t.Fatal(err)
	}
	prov, err := os.ReadFile("testdata/tuf-js@1.0.0.provenance.sigstore.json")
	if err != nil {
		t.Fatal(err)
	}
	p, err := ParsePublish("tuf-js", publishDoc(t, "tuf-js", "1.0.0", tgz, prov))
	if err != nil {
		t.Fatal(err)
	}
	if p.Predicate != "https://slsa.dev/provenance/v0.2" || string(p.Tarball) != string(tgz) {
		t.Errorf("predicate %q, %d tarball bytes", p.Predicate, len(p.Tarball))
	}
	if strings.Contains(string(p.Forward), ".sigstore") {
		t.Error("the document forwarded upstream still carries the provenance attachment")
	}
	if TargetPath("@scope/pkg", "1.0.0") != "@scope/pkg/-/pkg-1.0.0.tgz" {
		t.Error("scoped target path")
	}
	// Refusals, each for its reason.
	for _, c := range []struct {
		name, doc, want string
	}{
		{"wrong package", string(publishDoc(t, "other", "1.0.0", tgz, nil)), `names "other", the URL names "tuf-js"`},
		{"other bytes in provenance", string(publishDoc(t, "tuf-js", "1.0.0", append([]byte{}, tgz[:len(tgz)-1]...), prov)), "another SHA-512 than the tarball"},
		{"bad version", string(publishDoc(t, "tuf-js", "../1", tgz, nil)), "not a semantic version"},
		{"not json", "{", "publish document"},
	} {
		if _, err := ParsePublish("tuf-js", []byte(c.doc)); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want %q", c.name, err, c.want)
		}
	}
	big := make([]byte, MaxPublishBytes+1)
	if _, err := ParsePublish("tuf-js", big); err == nil || !strings.Contains(err.Error(), "the limit is") {
		t.Errorf("oversized document: %v", err)
	}
}

func FuzzParsePublish(f *testing.F) {
	tgz := []byte("not really a tarball")
	f.Add("a", publishDoc(f, "a", "1.0.0", tgz, nil))
	f.Add("@s/a", publishDoc(f, "@s/a", "1.0.0", tgz, []byte(`{"dsseEnvelope":{"payload":"e30=","payloadType":"application/vnd.in-toto+json"}}`)))
	f.Add("a", []byte(`{"name":"a","versions":{}}`))
	f.Fuzz(func(t *testing.T, name string, doc []byte) {
		p, err := ParsePublish(name, doc)
		if err != nil {
			return
		}
		if CheckName(p.Name) != nil || CheckVersion(p.Version) != nil || len(p.Tarball) > MaxTarballBytes {
			t.Fatalf("accepted %q@%q with %d bytes", p.Name, p.Version, len(p.Tarball))
		}
	})
}
