package main

import (
	"bytes"
	"context"
	"os"
	"strings"
	"testing"
)

// airlock demo without --dir removes the folder it made.
func TestDemoRemovesItsFolder(t *testing.T) {
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	var out, errb bytes.Buffer
	if err := cmdDemo(context.Background(), nil, &out, &errb); err != nil {
		t.Fatalf("demo: %v\n%s", err, errb.String())
	}
	ents, err := os.ReadDir(tmp)
	if err != nil {
		t.Fatal(err)
	}
	if len(ents) != 0 {
		t.Fatalf("the demo left %d entries in the temporary folder (%s ...)", len(ents), ents[0].Name())
	}
	if !strings.Contains(out.String(), "removed (run airlock demo --dir DIR to keep it)") {
		t.Fatalf("the demo does not say it removed its folder:\n%s", out.String())
	}
}
