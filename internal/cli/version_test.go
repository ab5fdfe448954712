package cli

import (
	"runtime/debug"
	"testing"
)

func TestVersionShowsRevision(t *testing.T) {
	bi := &debug.BuildInfo{GoVersion: "go1.26", Main: debug.Module{Version: "(devel)"}, Settings: []debug.BuildSetting{
		{Key: "vcs.revision", Value: "c47b24f0"}, {Key: "vcs.modified", Value: "true"}, {Key: "vcs.time", Value: "2026-12-01T10:00:00Z"},
	}}
	want := "(devel), revision c47b24f0 (modified), committed 2026-12-01T10:00:00Z, go1.26"
	if got := versionOf("", bi); got != want {
		t.Fatalf("versionOf = %q, want %q", got, want)
	}
	if got := versionOf("v1.2.3", bi); got[:6] != "v1.2.3" {
		t.Fatalf("override not used: %q", got)
	}
}
