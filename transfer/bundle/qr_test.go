package bundle

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"
)

func qrBundle() fstest.MapFS {
	return fstest.MapFS{
		"request.json":                 {Data: []byte(`{"format":"x"}`)},
		"artifacts/a-1.0.0.tgz":        {Data: bytes.Repeat([]byte("A"), 4096)},
		"previous/a-0.9.0.tgz":         {Data: []byte("old")},
		"provenance/a.sigstore.json":   {Data: []byte(`{"mediaType":"b"}`)},
		"provenance/a-2.sigstore.json": {Data: []byte(`{"mediaType":"c"}`)},
	}
}

// The QR message holds the request and the provenance bundles and nothing
// of the artifacts or the previous release; it imports back as written.
func TestWriteQRImportQR(t *testing.T) {
	msg, m, err := WriteQR(qrBundle())
	if err != nil {
		t.Fatal(err)
	}
	if !IsQRTar(msg) || IsQRTar([]byte(`{"format":"x"}`)) {
		t.Fatal("IsQRTar does not tell a packed bundle from a request")
	}
	var paths []string
	for _, f := range m.Files {
		paths = append(paths, f.Path)
	}
	if got := strings.Join(paths, " "); got != "provenance/a-2.sigstore.json provenance/a.sigstore.json request.json" {
		t.Fatalf("packed %s", got)
	}
	if bytes.Contains(msg, []byte("AAAA")) || bytes.Contains(msg, []byte("previous")) {
		t.Fatal("artifact or previous release bytes went into the QR message")
	}
	again, _, err := WriteQR(qrBundle())
	if err != nil || !bytes.Equal(again, msg) {
		t.Fatalf("WriteQR is not deterministic: %v", err)
	}
	work := filepath.Join(t.TempDir(), "in")
	got, err := ImportQR(msg, work, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if string(got.Document) != `{"format":"x"}` {
		t.Fatalf("document %q", got.Document)
	}
	if b, err := os.ReadFile(filepath.Join(work, "provenance", "a.sigstore.json")); err != nil || string(b) != `{"mediaType":"b"}` {
		t.Fatalf("provenance after import: %q %v", b, err)
	}
}

// A QR message is checked like any bundle, with the QR layout: artifacts
// smuggled into it, or a message over the cap, are refused with the rule.
func TestImportQRRefuses(t *testing.T) {
	var full bytes.Buffer
	if _, err := WriteTar(&full, qrBundle(), Options{}); err != nil {
		t.Fatal(err)
	}
	_, err := ImportQR(full.Bytes(), filepath.Join(t.TempDir(), "in"), Options{})
	if !IsRule(err, RuleUnknownTop) || !strings.Contains(err.Error(), "artifacts") {
		t.Fatalf("a QR message with artifacts: %v, want %q naming artifacts", err, RuleUnknownTop)
	}
	noReq := qrBundle()
	delete(noReq, "request.json")
	if _, _, err := WriteQR(noReq); !IsRule(err, RuleMissing) {
		t.Fatalf("a bundle without request.json: %v, want %q", err, RuleMissing)
	}
	big := make([]byte, MaxQRBytes+1)
	copy(big[257:], "ustar")
	if _, err := ImportQR(big, filepath.Join(t.TempDir(), "in"), Options{}); !errors.Is(err, ErrQRTooLarge) {
		t.Fatalf("an oversized message: %v, want ErrQRTooLarge", err)
	}
	huge := qrBundle()
	huge["provenance/big.json"] = &fstest.MapFile{Data: bytes.Repeat([]byte("x"), MaxQRBytes)}
	if _, _, err := WriteQR(huge); !errors.Is(err, ErrQRTooLarge) || !strings.Contains(err.Error(), "by USB") {
		t.Fatalf("an oversized bundle: %v, want ErrQRTooLarge with advice", err)
	}
}

func FuzzImportQR(f *testing.F) {
	msg, _, err := WriteQR(qrBundle())
	if err != nil {
		f.Fatal(err)
	}
	f.Add(msg)
	f.Add([]byte(`{"format":"x"}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := ImportQR(b, filepath.Join(t.TempDir(), "in"), Options{})
		if err != nil {
			return
		}
		for _, f := range m.Files {
			if f.Path != RequestFile && !strings.HasPrefix(f.Path, ProvenanceDir+"/") {
				t.Fatalf("imported %s from a QR message", f.Path)
			}
		}
	})
}
