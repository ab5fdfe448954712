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

// Every command's -h (but the key commands') exits 0 and shows a worked
// example.
func TestEveryCommandHelpHasAnExample(t *testing.T) {
	for _, args := range [][]string{{"-h"}, {"init", "-h"}, {"delegate", "-h"}, {"bundle", "-h"}, {"bundle", "create", "-h"}, {"sign", "-h"},
		{"combine", "-h"}, {"verify", "-h"}, {"client", "-h"}, {"client", "init", "-h"}, {"qr", "-h"}, {"qr", "show", "-h"}, {"qr", "scan", "-h"}, {"demo", "-h"}} {
		var stdout, stderr bytes.Buffer
		code := run(context.Background(), args, &stdout, &stderr)
		if code != 0 || !strings.Contains(stdout.String()+stderr.String(), "example") {
			t.Errorf("%v: exit %d, help without an example:\n%s%s", args, code, stdout.String(), stderr.String())
		}
	}
}
