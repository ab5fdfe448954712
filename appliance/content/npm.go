package content

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"path"
	"slices"
)

// Package is what the root package.json of each release says.
type Package struct {
	Name       string `json:"name"`
	Version    string `json:"version"`
	OldName    string `json:"old_name,omitempty"`
	OldVersion string `json:"old_version,omitempty"`
}

// lifecycle maps npm lifecycle scripts to the severity of adding or
// changing them. High ones run on the machine of whoever installs the
// package.
var lifecycle = map[string]Severity{
	"preinstall": High, "install": High, "postinstall": High,
	"prepare": High, "preprepare": High, "postprepare": High, "prepublish": High,
	"preuninstall": Warn, "uninstall": Warn, "postuninstall": Warn, "dependencies": Warn,
	"prepack": Info, "postpack": Info, "prepublishOnly": Info, "publish": Info, "postpublish": Info,
}

// depFields are the manifest fields that name packages npm installs.
var depFields = []string{"dependencies", "optionalDependencies", "peerDependencies", "devDependencies"}

// manifest is the part of a package.json the signals use.
type manifest struct {
	name, version string
	scripts       map[string]string
	deps          map[string]map[string]string // field -> name -> range
	bundled       []string
	bundleAll     bool
	bin           map[string]string
	dupKeys       []string
}

const maxJSONDepth = 64

// parseManifest reads a package.json. Values of unexpected types are kept as
// their JSON text rather than dropped, so that nothing hides.
func parseManifest(text []byte) (*manifest, error) {
	dups, err := duplicateKeys(text)
	if err != nil {
		return nil, err
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(text, &raw); err != nil {
		return nil, fmt.Errorf("not a JSON object: %w", err)
	}
	m := &manifest{dupKeys: dups, deps: map[string]map[string]string{}}
	m.name = jsonString(raw["name"])
	m.version = jsonString(raw["version"])
	m.scripts = stringMap(raw["scripts"])
	for _, f := range depFields {
		m.deps[f] = stringMap(raw[f])
	}
	for _, f := range []string{"bundledDependencies", "bundleDependencies"} {
		v := raw[f]
		if len(v) == 0 {
			continue
		}
		var list []string
		var all bool
		if json.Unmarshal(v, &list) == nil {
			m.bundled = append(m.bundled, list...)
		} else if json.Unmarshal(v, &all) == nil {
			m.bundleAll = m.bundleAll || all
		}
	}
	switch v := raw["bin"]; {
	case len(v) == 0:
	case v[0] == '"':
		m.bin = map[string]string{path.Base(m.name): jsonString(v)}
	default:
		m.bin = stringMap(v)
	}
	return m, nil
}

func jsonString(v json.RawMessage) string {
	if len(v) == 0 {
		return ""
	}
	var s string
	if json.Unmarshal(v, &s) == nil {
		return s
	}
	return string(v)
}

func stringMap(v json.RawMessage) map[string]string {
	var raw map[string]json.RawMessage
	if len(v) == 0 || json.Unmarshal(v, &raw) != nil {
		return nil
	}
	out := make(map[string]string, len(raw))
	for k, x := range raw {
		out[k] = jsonString(x)
	}
	return out
}

// duplicateKeys lists object keys that appear twice in the same object:
// JSON.parse keeps the last one, a reader of the file may see the first.
func duplicateKeys(text []byte) ([]string, error) {
	dec := json.NewDecoder(bytes.NewReader(text))
	type frame struct {
		obj  bool
		keys map[string]bool
		want bool // next string token in an object is a key
	}
	var stack []frame
	var dups []string
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			return dups, nil
		}
		if err != nil {
			return nil, fmt.Errorf("not valid JSON: %w", err)
		}
		top := len(stack) - 1
		isKey := top >= 0 && stack[top].obj && stack[top].want
		switch t := tok.(type) {
		case json.Delim:
			switch t {
			case '{', '[':
				if top >= 0 && stack[top].obj {
					stack[top].want = true
				}
				if len(stack) >= maxJSONDepth {
					return nil, fmt.Errorf("JSON nested more than %d levels deep", maxJSONDepth)
				}
				stack = append(stack, frame{obj: t == '{', keys: map[string]bool{}, want: true})
				continue
			case '}', ']':
				stack = stack[:top]
				continue
			}
		case string:
			if isKey {
				if stack[top].keys[t] {
					dups = append(dups, t)
				}
				stack[top].keys[t] = true
				stack[top].want = false
				continue
			}
		}
		if top >= 0 && stack[top].obj {
			stack[top].want = true
		}
	}
}

// manifestOf parses the package.json at p in t; nil if absent.
func manifestOf(t *Tree, p string, lim Limits) (*manifest, *Signal) {
	f := t.File(p)
	if f == nil || f.Type != TypeFile {
		return nil, nil
	}
	bad := func(why string) *Signal {
		return &Signal{Kind: KindManifest, Severity: High, File: p, Detail: why + "; its scripts and dependencies cannot be reviewed"}
	}
	if f.Size > lim.MaxManifestBytes {
		return nil, bad(fmt.Sprintf("package.json is %d bytes, more than the %d allowed", f.Size, lim.MaxManifestBytes))
	}
	text, ok := f.Text()
	if !ok {
		return nil, bad("package.json content was not kept")
	}
	m, err := parseManifest([]byte(text))
	if err != nil {
		return nil, bad("package.json is unreadable: " + err.Error())
	}
	return m, nil
}

// pkgSignals compares the manifests of both trees.
func pkgSignals(d *Diff, old, new *Tree, lim Limits) {
	add := func(kind Kind, sev Severity, file, format string, args ...any) {
		d.Signals = append(d.Signals, Signal{Kind: kind, Severity: sev, File: file, Detail: fmt.Sprintf(format, args...)})
	}
	// Lifecycle scripts of every package.json added or changed, including
	// bundled dependencies' ones: npm runs those too.
	for _, c := range d.Files {
		if c.New == nil || path.Base(c.Path) != "package.json" {
			continue
		}
		nm, bad := manifestOf(new, c.Path, lim)
		if bad != nil {
			d.Signals = append(d.Signals, *bad)
			continue
		}
		if nm == nil {
			continue
		}
		var om *manifest
		if c.Old != nil {
			om, _ = manifestOf(old, c.Path, lim)
		}
		if om == nil {
			om = &manifest{}
		}
		for _, k := range nm.dupKeys {
			add(KindManifest, High, c.Path, "key %s appears twice in one object; npm uses the last one", q(k))
		}
		for _, name := range sortedKeys(nm.scripts) {
			sev, ok := lifecycle[name]
			if !ok {
				continue
			}
			was, had := om.scripts[name]
			switch {
			case !had:
				add(KindInstallScript, sev, c.Path, "new %s script: %s", name, q(nm.scripts[name]))
			case was != nm.scripts[name]:
				add(KindInstallScript, sev, c.Path, "%s script changed from %s to %s", name, q(was), q(nm.scripts[name]))
			}
		}
		for _, name := range sortedKeys(om.scripts) {
			if _, still := nm.scripts[name]; !still && lifecycle[name] != "" {
				add(KindInstallScript, Info, c.Path, "%s script removed (was %s)", name, q(om.scripts[name]))
			}
		}
	}

	nm, _ := manifestOf(new, "package.json", lim)
	if nm == nil {
		return
	}
	om, _ := manifestOf(old, "package.json", lim)
	if om == nil {
		om = &manifest{deps: map[string]map[string]string{}}
	}
	d.Package = &Package{Name: nm.name, Version: nm.version, OldName: om.name, OldVersion: om.version}
	const file = "package.json"
	if om.name != "" && om.name != nm.name {
		add(KindManifest, High, file, "package name changed from %s to %s", q(om.name), q(nm.name))
	}
	// Names are checked for hidden characters, mixed scripts and for
	// looking like the package's own name, another dependency's name or a
	// popular package.
	names := []string{nm.name}
	for _, field := range depFields {
		names = append(names, sortedKeys(nm.deps[field])...)
	}
	likes := newLikeSet(names)
	for _, sig := range likeSet(nil).signals("package name", nm.name, true) {
		sig.File = file
		d.Signals = append(d.Signals, sig)
	}
	for _, field := range depFields {
		sevNew, sevChanged := Warn, Warn
		if field == "devDependencies" {
			sevNew, sevChanged = Info, Info // not installed for users
		}
		was, now := om.deps[field], nm.deps[field]
		for _, name := range sortedKeys(now) {
			r, had := was[name]
			switch {
			case !had:
				add(KindDependency, sevNew, file, "new %s entry %s %s", field, q(name), q(now[name]))
				for _, sig := range likes.signals(field+" entry", name, true) {
					sig.File = file
					d.Signals = append(d.Signals, sig)
				}
			case r != now[name]:
				add(KindDependency, sevChanged, file, "%s entry %s changed from %s to %s", field, q(name), q(r), q(now[name]))
			}
		}
		for _, name := range sortedKeys(was) {
			if _, still := now[name]; !still {
				add(KindDependency, Info, file, "%s entry %s removed (was %s)", field, q(name), q(was[name]))
			}
		}
	}
	for _, name := range nm.bundled {
		if !slices.Contains(om.bundled, name) {
			add(KindDependency, Warn, file, "new bundled dependency %s: its files ship inside this package", q(name))
		}
	}
	if nm.bundleAll && !om.bundleAll {
		add(KindDependency, Warn, file, "all dependencies are now bundled inside this package")
	}
	for _, name := range sortedKeys(nm.bin) {
		if was, had := om.bin[name]; !had || was != nm.bin[name] {
			add(KindBin, Warn, file, "command %s now runs %s when installed", q(name), q(nm.bin[name]))
		}
	}
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
