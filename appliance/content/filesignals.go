package content

import (
	"fmt"
	"path"
	"regexp"
	"strings"
)

// codeExt are extensions whose long lines hide what a program does.
var codeExt = map[string]bool{
	".js": true, ".mjs": true, ".cjs": true, ".jsx": true, ".ts": true, ".mts": true, ".cts": true, ".tsx": true,
	".py": true, ".sh": true, ".bash": true, ".ps1": true, ".bat": true, ".cmd": true, ".rb": true, ".pl": true,
	".php": true, ".lua": true, ".vbs": true, ".wasm": true, ".node": true,
}

// soName matches shared libraries, including versioned ones (libx.so.1.2).
var soName = regexp.MustCompile(`(?i)\.(so(\.[0-9]+)*|dll|dylib)$`)

func nativeAddon(p string) bool {
	base := path.Base(p)
	return strings.HasSuffix(strings.ToLower(base), ".node") || base == "binding.gyp" || soName.MatchString(base)
}

func nativeMagic(m Magic) bool {
	return m == MagicELF || m == MagicMachO || m == MagicPE || m == MagicWasm
}

// fileSignals derives signals from each added or changed file.
func fileSignals(files []FileChange, lim Limits) []Signal {
	var out []Signal
	for k := range files {
		c := &files[k]
		if c.New == nil {
			continue
		}
		n, o := c.New, c.Old
		nf := n.facts(lim.MaxHitsPerFile)
		add := func(kind Kind, sev Severity, line int, format string, args ...any) {
			out = append(out, Signal{Kind: kind, Severity: sev, File: c.Path, Line: line, Detail: fmt.Sprintf(format, args...)})
		}
		contentNew := o == nil || o.SHA256 != n.SHA256 || o.Type != n.Type
		verb := "new"
		if o != nil {
			verb = "changed"
		}

		// Modes.
		if o == nil {
			if n.Mode&(ModeSetuid|ModeSetgid) != 0 {
				add(KindModeChange, High, 0, "new file is setuid or setgid (mode %s)", n.Mode)
			}
			if n.Mode&ModeWorldWritable != 0 && n.Type == TypeFile {
				add(KindModeChange, Warn, 0, "new file is world-writable (mode %s)", n.Mode)
			}
		} else if o.Mode != n.Mode {
			gained := n.Mode &^ o.Mode
			switch {
			case gained&(ModeSetuid|ModeSetgid) != 0:
				add(KindModeChange, High, 0, "mode %s -> %s: now setuid or setgid", o.Mode, n.Mode)
			case gained&ModeWorldWritable != 0:
				add(KindModeChange, Warn, 0, "mode %s -> %s: now world-writable", o.Mode, n.Mode)
			case gained&ModeExec != 0:
				add(KindModeChange, Warn, 0, "mode %s -> %s: now executable", o.Mode, n.Mode)
			default:
				add(KindModeChange, Info, 0, "mode %s -> %s", o.Mode, n.Mode)
			}
		}
		if n.Type != TypeFile || !contentNew {
			continue
		}

		// Executables and native code.
		switch {
		case nativeMagic(n.Magic):
			sev := High
			if o != nil && o.Magic == n.Magic {
				sev = Warn
			}
			add(KindExecutable, sev, 0, "%s native executable (%s)", verb, n.Magic)
		case o == nil && n.Mode&ModeExec != 0:
			what := "new file is executable (mode " + n.Mode.String() + ")"
			if n.Magic == MagicScript {
				what += ", a #! script"
			}
			add(KindExecutable, Warn, 0, "%s", what)
		}
		if n.Binary && nestedArchive(n.Magic) {
			sev := High
			if o != nil && o.Magic == n.Magic {
				sev = Warn
			}
			add(KindNestedArchive, sev, 0, "%s %s archive inside the artifact: its content was not inspected; unpack it and review it separately, or refuse", verb, n.Magic)
		}
		if nativeAddon(c.Path) {
			sev := High
			if o != nil {
				sev = Warn
			}
			what := "native addon or shared library"
			if path.Base(c.Path) == "binding.gyp" {
				what = "node-gyp build file: npm compiles native code at install time"
			}
			add(KindNativeAddon, sev, 0, "%s %s", verb, what)
		}

		// Python .pth files run at every interpreter start when a line
		// begins with "import".
		if isPth(c.Path) {
			line := c.pthLine
			if line > 0 {
				add(KindPth, High, line, "%s .pth file with an import line: Python runs it at every start", verb)
			} else {
				add(KindPth, Warn, 0, "%s .pth file: it changes Python's module path at every start", verb)
			}
		}

		if n.Note != "" && !n.Binary && !nf.scanned {
			add(KindUnscanned, Info, 0, "%s", n.Note)
		}

		// Long lines and blobs.
		ext := strings.ToLower(path.Ext(c.Path))
		if nf.longestLine >= minifiedLineBytes && ext != ".map" {
			sev := Info
			if codeExt[ext] {
				sev = Warn
			}
			if o != nil && o.facts(lim.MaxHitsPerFile).longestLine >= minifiedLineBytes {
				sev = Info
			}
			add(KindMinified, sev, nf.longestLineNo, "line %d is %d bytes long: minified or generated code hides what it does", nf.longestLineNo, nf.longestLine)
		}
		if nf.entropyLineNo > 0 && ext != ".map" {
			add(KindHighEntropy, Warn, nf.entropyLineNo, "line %d looks like an encoded blob (%.1f bits per byte)", nf.entropyLineNo, nf.entropyLine)
		}
		if n.Binary && n.Magic == "" && n.Size >= entropyMinBinaryBytes && nf.entropy > entropyBinaryBits && !knownMedia(ext) {
			add(KindHighEntropy, Warn, 0, "%s binary of %d bytes looks compressed or encrypted (%.2f bits per byte)", verb, n.Size, nf.entropy)
		}

		// Invisible characters in text.
		for _, h := range nf.invisible {
			sev := High
			what := describeRune(h.r)
			if h.r == 0xfffd {
				sev, what = Info, "invalid UTF-8"
			}
			add(KindInvisibleText, sev, h.line, "line %d contains %s", h.line, what)
		}
		if nf.invisibleMore > 0 {
			add(KindInvisibleText, High, 0, "%d more invisible or control characters not listed", nf.invisibleMore)
		}
	}
	return out
}

func isPth(p string) bool { return strings.HasSuffix(strings.ToLower(p), ".pth") }

// importLine returns the first line (1-based) of a .pth text that Python
// executes, or 0.
func importLine(text string) int {
	for i, l := range strings.Split(text, "\n") {
		if strings.HasPrefix(l, "import ") || strings.HasPrefix(l, "import\t") {
			return i + 1
		}
	}
	return 0
}

// knownMedia are compressed media formats whose high entropy is expected.
func knownMedia(ext string) bool {
	switch ext {
	case ".png", ".jpg", ".jpeg", ".gif", ".webp", ".avif", ".ico", ".woff", ".woff2", ".ttf", ".otf", ".eot",
		".mp3", ".mp4", ".ogg", ".webm", ".pdf", ".gz", ".tgz", ".zip", ".br", ".xz", ".bz2", ".zst", ".jar", ".whl":
		return true
	}
	return false
}
