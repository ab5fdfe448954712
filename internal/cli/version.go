package cli

import (
	"runtime/debug"
	"strings"
)

// Version describes the running binary: override when set at build time
// (-ldflags "-X main.Version=..."), else the module version, plus the VCS
// revision and whether the tree was modified, from the build information.
func Version(override string) string {
	bi, _ := debug.ReadBuildInfo()
	return versionOf(override, bi)
}

func versionOf(override string, bi *debug.BuildInfo) string {
	v := override
	if bi == nil {
		if v == "" {
			v = "(unknown: built without module information)"
		}
		return v
	}
	if v == "" {
		v = bi.Main.Version
	}
	if v == "" {
		v = "(devel)"
	}
	parts := []string{v}
	var rev, when, modified string
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.time":
			when = s.Value
		case "vcs.modified":
			modified = s.Value
		}
	}
	if rev != "" {
		r := "revision " + rev
		if modified == "true" {
			r += " (modified)"
		}
		parts = append(parts, r)
	}
	if when != "" {
		parts = append(parts, "committed "+when)
	}
	if bi.GoVersion != "" {
		parts = append(parts, bi.GoVersion)
	}
	return strings.Join(parts, ", ")
}
