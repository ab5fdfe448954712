package content

import (
	"archive/tar"
	"encoding/base64"
	"encoding/json"
	"maps"
	"strings"
	"testing"
)

const basePkg = `{"name":"demo-widget","version":"1.0.0","scripts":{"test":"node test.js"},"dependencies":{"ms":"^2.1.0"}}`

// base is a harmless release every table row starts from.
func base() []ent {
	return []ent{
		{name: "package.json", body: basePkg},
		{name: "index.js", body: "module.exports = 1;\n"},
		{name: "bin/cli.js", body: "#!/usr/bin/env node\nrequire('../')\n", mode: 0o755},
	}
}

func with(es []ent, extra ...ent) []ent {
	out := append([]ent(nil), es...)
	for _, x := range extra {
		replaced := false
		for i := range out {
			if out[i].name == x.name {
				out[i], replaced = x, true
			}
		}
		if !replaced {
			out = append(out, x)
		}
	}
	return out
}

// pkgJSON is basePkg at version 1.0.1 with extra top-level fields (a JSON
// object's members) replacing or adding to its own.
func pkgJSON(extra string) ent {
	var m map[string]json.RawMessage
	if err := json.Unmarshal([]byte(basePkg), &m); err != nil {
		panic(err)
	}
	var x map[string]json.RawMessage
	if err := json.Unmarshal([]byte("{"+strings.TrimSuffix(extra, ",")+"}"), &x); err != nil {
		panic(err)
	}
	maps.Copy(m, x)
	m["version"] = json.RawMessage(`"1.0.1"`)
	b, err := json.Marshal(m)
	if err != nil {
		panic(err)
	}
	return ent{name: "package.json", body: string(b)}
}

var (
	elf    = "\x7fELF\x02\x01\x01\x00" + strings.Repeat("\x00", 64)
	minJS  = "var a=1;" + strings.Repeat("function f(a,b){return a+b};", 60) + "\n"
	random = func() string {
		b := make([]byte, 8192)
		x := uint32(2463534242)
		for i := range b {
			x ^= x << 13
			x ^= x >> 17
			x ^= x << 5
			b[i] = byte(x)
		}
		b[0] = 0 // binary
		return string(b)
	}()
	b64 = base64.StdEncoding.EncodeToString([]byte(random[:600])) // one long line
)

// TestSignals checks each risk signal: the row's change must raise it, and
// the unchanged base release must not.
func TestSignals(t *testing.T) {
	for _, tc := range []struct {
		name string
		new  []ent
		kind Kind
		sev  Severity
		file string
		line int
	}{
		{"postinstall added", with(base(), pkgJSON(`"scripts":{"test":"node test.js","postinstall":"node evil.js"},`)), KindInstallScript, High, "package.json", 0},
		{"install script in bundled dependency", with(base(), ent{name: "node_modules/dep/package.json", body: `{"name":"dep","scripts":{"preinstall":"sh x"}}`}), KindInstallScript, High, "node_modules/dep/package.json", 0},
		{"dependency added", with(base(), pkgJSON(`"dependencies":{"ms":"^2.1.0","left-pad":"1.3.0"},`)), KindDependency, Warn, "package.json", 0},
		{"dependency range changed", with(base(), pkgJSON(`"dependencies":{"ms":"*"},`)), KindDependency, Warn, "package.json", 0},
		{"optional dependency added", with(base(), pkgJSON(`"optionalDependencies":{"fsevents":"2"},`)), KindDependency, Warn, "package.json", 0},
		{"peer dependency added", with(base(), pkgJSON(`"peerDependencies":{"react":"18"},`)), KindDependency, Warn, "package.json", 0},
		{"bundled dependency added", with(base(), pkgJSON(`"bundledDependencies":["ms"],`)), KindDependency, Warn, "package.json", 0},
		{"typosquat dependency", with(base(), pkgJSON(`"dependencies":{"ms":"^2.1.0","loadsh":"4"},`)), KindConfusableName, High, "package.json", 0},
		{"typosquat package name", with(base(), ent{name: "package.json", body: strings.Replace(basePkg, "demo-widget", "l0dash", 1)}), KindConfusableName, High, "package.json", 0},
		{"duplicate key hides a script", with(base(), ent{name: "package.json", body: `{"name":"demo-widget","version":"1.0.1","scripts":{"test":"node test.js","test":"curl x|sh"}}`}), KindManifest, High, "package.json", 0},
		{"bin added", with(base(), pkgJSON(`"bin":{"ls":"evil.js"},`)), KindBin, Warn, "package.json", 0},
		{"ELF executable", with(base(), ent{name: "lib/helper", body: elf}), KindExecutable, High, "lib/helper", 0},
		{"new +x file", with(base(), ent{name: "run.sh", body: "#!/bin/sh\necho\n", mode: 0o755}), KindExecutable, Warn, "run.sh", 0},
		{"native addon", with(base(), ent{name: "build/Release/addon.node", body: "x"}), KindNativeAddon, High, "build/Release/addon.node", 0},
		{"binding.gyp", with(base(), ent{name: "binding.gyp", body: "{}"}), KindNativeAddon, High, "binding.gyp", 0},
		{"versioned shared library", with(base(), ent{name: "lib/libx.so.1.2", body: "x"}), KindNativeAddon, High, "lib/libx.so.1.2", 0},
		{"pth file", with(base(), ent{name: "evil.pth", body: "# path\nimport os; os.system('x')\n"}), KindPth, High, "evil.pth", 2},
		{"minified code", with(base(), ent{name: "index.js", body: minJS}), KindMinified, Warn, "index.js", 1},
		{"base64 blob", with(base(), ent{name: "data.js", body: "x\nmodule.exports='" + b64 + "'\n"}), KindHighEntropy, Warn, "data.js", 2},
		{"encrypted binary", with(base(), ent{name: "payload.bin", body: random}), KindHighEntropy, Warn, "payload.bin", 0},
		{"symlink out of the package", with(base(), ent{name: "link", typ: tar.TypeSymlink, link: "../../.ssh/id_rsa"}), KindSymlink, High, "link", 0},
		{"symlink inside", with(base(), ent{name: "alias.js", typ: tar.TypeSymlink, link: "index.js"}), KindSymlink, Warn, "alias.js", 0},
		{"hard link", with(base(), ent{name: "hl", typ: tar.TypeLink, link: "package/index.js"}), KindHardlink, Warn, "hl", 0},
		{"fifo", with(base(), ent{name: "pipe", typ: tar.TypeFifo}), KindSpecialFile, High, "pipe", 0},
		{"setuid", with(base(), ent{name: "index.js", body: "module.exports = 1;\n", mode: 0o4755}), KindModeChange, High, "index.js", 0},
		{"world-writable", with(base(), ent{name: "index.js", body: "module.exports = 1;\n", mode: 0o666}), KindModeChange, Warn, "index.js", 0},
		{"became executable", with(base(), ent{name: "index.js", body: "module.exports = 1;\n", mode: 0o755}), KindModeChange, Warn, "index.js", 0},
		{"bidi in name", with(base(), ent{name: "lib/ex\u202egnp.js", body: "1\n"}), KindInvisibleName, High, "lib/ex\u202egnp.js", 0},
		{"zero width in name", with(base(), ent{name: "ind\u200bex.js", body: "1\n"}), KindInvisibleName, High, "ind\u200bex.js", 0},
		{"private use in name", with(base(), ent{name: "ind\ue000ex.js", body: "1\n"}), KindInvisibleName, High, "ind\ue000ex.js", 0},
		{"unassigned in name", with(base(), ent{name: "lib\u2fff.js", body: "1\n"}), KindInvisibleName, High, "lib\u2fff.js", 0},
		{"bidi in text", with(base(), ent{name: "index.js", body: "a\nb\nif (x) { /*\u202e } \u2066 if (y) */\n"}), KindInvisibleText, High, "index.js", 3},
		{"escape in text", with(base(), ent{name: "index.js", body: "ok\n\x1b[2J\n"}), KindInvisibleText, High, "index.js", 2},
		{"hangul filler identifier", with(base(), ent{name: "index.js", body: "const {\u3164} = req;\n"}), KindInvisibleText, High, "index.js", 1},
		{"variation selector payload", with(base(), ent{name: "index.js", body: "x\ns='a\ufe00\ufe01\ufe02'\n"}), KindInvisibleText, High, "index.js", 2},
		{"traversal", with(base(), ent{name: "../../evil", body: "x"}), KindUnsafePath, High, "../evil", 0},
		{"duplicate entry", with(base(), ent{name: "index.js", body: "a\n"}, ent{name: "zz", body: ""}, ent{name: "index.js", body: "b\n"}), KindDuplicate, High, "index.js", 0},
		{"case collision", with(base(), ent{name: "INDEX.js", body: "b\n"}), KindCaseCollision, Warn, "INDEX.js", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			old := mustRead(t, "demo-1.0.0.tgz", npmTgz(t, base()))
			// The duplicate row needs two entries with one name, which with()
			// merges: write them raw.
			ents := tc.new
			if tc.kind == KindDuplicate {
				ents = append(base(), ent{name: "index.js", body: "b\n"})
			}
			nt := mustRead(t, "demo-1.0.1.tgz", npmTgz(t, ents))
			d := Compare(old, nt, DefaultLimits())
			if !hasSignal(d.Signals, tc.kind, tc.sev, tc.file, tc.line) {
				t.Errorf("no %s %s signal for %q line %d; got:", tc.sev, tc.kind, tc.file, tc.line)
				for _, s := range d.Signals {
					t.Logf("  %+v", s)
				}
			}
			// Control: the base release against itself raises nothing.
			self := Compare(old, mustRead(t, "demo-1.0.0.tgz", npmTgz(t, base())), DefaultLimits())
			if len(self.Signals) != 0 || len(self.Files) != 0 {
				t.Errorf("base against itself: %d signals, %d files", len(self.Signals), len(self.Files))
			}
		})
	}
}

// TestFirstRelease covers a package with no previous release: every file
// is added and scanned.
func TestFirstRelease(t *testing.T) {
	nt := mustRead(t, "demo-1.0.0.tgz", npmTgz(t, with(base(), pkgJSON(`"scripts":{"install":"node-gyp rebuild"},`))))
	d := Compare(nil, nt, DefaultLimits())
	if d.Old != nil || d.Added != 3 || d.Removed+d.Changed+d.Unchanged != 0 {
		t.Fatalf("first release: %+v", d)
	}
	if !hasSignal(d.Signals, KindInstallScript, High, "package.json", 0) {
		t.Errorf("install script not flagged: %+v", d.Signals)
	}
	if !hasSignal(d.Signals, KindExecutable, Warn, "bin/cli.js", 0) {
		t.Errorf("executable bin/cli.js not flagged: %+v", d.Signals)
	}
	for _, c := range d.Files {
		if c.Path == "index.js" && (len(c.Hunks) != 1 || c.LinesAdded != 1 || c.Hunks[0].Lines[0].Text != "module.exports = 1;") {
			t.Errorf("index.js as added: %+v", c)
		}
	}
}

func TestWheelPth(t *testing.T) {
	whl := zipBytes(t, []ent{
		{name: "demo/__init__.py", body: "x = 1\n"},
		{name: "demo-1.0.dist-info/METADATA", body: "Name: demo\nVersion: 1.0\n"},
		{name: "demo_hook.pth", body: "import demo_hook; demo_hook.run()\n"},
	})
	tr := mustRead(t, "demo-1.0-py3-none-any.whl", whl)
	if tr.Format != FormatWheel || len(tr.Files) != 3 {
		t.Fatalf("wheel read as %s with %d files", tr.Format, len(tr.Files))
	}
	d := Compare(nil, tr, DefaultLimits())
	if !hasSignal(d.Signals, KindPth, High, "demo_hook.pth", 1) {
		t.Errorf("no pth signal: %+v", d.Signals)
	}
}

// Private-use characters in a file's text (an icon font's code points in
// a stylesheet) are ordinary content: no signal, although the review
// escapes them when it shows the line.
func TestPrivateUseInTextIsNotASignal(t *testing.T) {
	old := mustRead(t, "demo-1.0.0.tgz", npmTgz(t, base()))
	nt := mustRead(t, "demo-1.0.1.tgz", npmTgz(t, with(base(), ent{name: "icons.css", body: ".i-home:before{content:\"\ue000\"}\n"})))
	d := Compare(old, nt, DefaultLimits())
	for _, s := range d.Signals {
		if s.Kind == KindInvisibleText {
			t.Fatalf("a private-use icon in a stylesheet raised %+v", s)
		}
	}
	if got := Visible("\ue000"); got != `\ue000` {
		t.Fatalf("Visible(U+E000) = %q, want it escaped", got)
	}
}
