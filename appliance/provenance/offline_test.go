package provenance

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
)

// The package must stay offline and wall-clock free by construction: no
// network or TUF client imports, no sigstore-go call that fetches a trusted
// root or uses the current time, no time.Now; and none of the UI, hardware
// or wiring packages the appliance core must not depend on.
func TestOfflineByConstruction(t *testing.T) {
	forbiddenImports := []string{
		"net", "net/http", "os/exec",
		"github.com/sigstore/sigstore-go/pkg/tuf",
		"github.com/theupdateframework/go-tuf/v2/metadata/updater",
		"github.com/theupdateframework/go-tuf/v2/metadata/fetcher",
	}
	forbiddenCalls := map[string]bool{
		"FetchTrustedRoot": true, "FetchTrustedRootWithOptions": true, "GetTrustedRoot": true,
		"NewLiveTrustedRoot": true, "NewLiveTrustedRootFromTarget": true, "NewLiveTrustedRootFromTargetWithPeriod": true,
		"WithCurrentTime": true, "Now": true,
	}
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	checked := 0
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		checked++
		for _, imp := range f.Imports {
			p, _ := strconv.Unquote(imp.Path.Value)
			for _, bad := range forbiddenImports {
				if p == bad {
					t.Errorf("%s imports %s", name, p)
				}
			}
			if forbiddenDep(p) {
				t.Errorf("%s imports %s", name, p)
			}
		}
		ast.Inspect(f, func(n ast.Node) bool {
			if sel, ok := n.(*ast.SelectorExpr); ok && forbiddenCalls[sel.Sel.Name] {
				t.Errorf("%s: uses %s", fset.Position(sel.Pos()), sel.Sel.Name)
			}
			return true
		})
	}
	if checked == 0 {
		t.Fatal("no source files checked")
	}
}

func forbiddenDep(p string) bool {
	for _, bad := range []string{"github.com/rivo/tview", "github.com/gdamore/tcell", "github.com/go-piv/", "github.com/google/go-tpm",
		"airlock.dev/airlock/cmd", "airlock.dev/airlock/tui"} {
		if strings.HasPrefix(p, bad) {
			return true
		}
	}
	return false
}

// The dependency closure, as the go command computes it, holds no UI,
// hardware or wiring package.
func TestDependencyClosure(t *testing.T) {
	goBin := filepath.Join(runtime.GOROOT(), "bin", "go")
	if _, err := os.Stat(goBin); err != nil {
		goBin = "go"
	}
	cmd := exec.Command(goBin, "list", "-deps", ".")
	cmd.Env = append(os.Environ(), "GOTOOLCHAIN=local", "GOPROXY=off")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("go list -deps: %v\n%s", err, out)
	}
	deps := strings.Fields(string(out))
	if len(deps) < 10 {
		t.Fatalf("go list -deps gave %d packages: %s", len(deps), out)
	}
	for _, d := range deps {
		if forbiddenDep(d) {
			t.Errorf("depends on %s", d)
		}
	}
}
