package content

import (
	"archive/tar"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// fixture is an npm tarball read independently of the package under test,
// with archive/tar and encoding/json only.
type fixture struct {
	files map[string]string // path without package/ -> sha256
	texts map[string]string
	pkg   struct {
		Name            string            `json:"name"`
		Version         string            `json:"version"`
		Dependencies    map[string]string `json:"dependencies"`
		DevDependencies map[string]string `json:"devDependencies"`
		Scripts         map[string]string `json:"scripts"`
	}
}

func loadFixture(t *testing.T, name string) fixture {
	t.Helper()
	f, err := os.Open(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	fx := fixture{files: map[string]string{}, texts: map[string]string{}}
	tr := tar.NewReader(zr)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		p := strings.TrimPrefix(h.Name, "package/")
		sum := sha256.Sum256(b)
		fx.files[p] = hex.EncodeToString(sum[:])
		fx.texts[p] = string(b)
	}
	if err := json.Unmarshal([]byte(fx.texts["package.json"]), &fx.pkg); err != nil {
		t.Fatal(err)
	}
	return fx
}

func readFixture(t *testing.T, name string) *Tree {
	t.Helper()
	tr, err := ReadFile(filepath.Join("testdata", name), DefaultLimits())
	if err != nil {
		t.Fatal(err)
	}
	return tr
}

// expectedChanges computes added, removed and changed paths from two
// independently read fixtures.
func expectedChanges(a, b fixture) map[string]Change {
	want := map[string]Change{}
	for p, h := range b.files {
		if old, ok := a.files[p]; !ok {
			want[p] = Added
		} else if old != h {
			want[p] = Changed
		}
	}
	for p := range a.files {
		if _, ok := b.files[p]; !ok {
			want[p] = Removed
		}
	}
	return want
}

// expectedDeps computes the dependency signals' (kind, detail prefix) from
// the two package.json files as encoding/json reads them.
func expectedDeps(a, b fixture) []string {
	var out []string
	for name, r := range b.pkg.Dependencies {
		if old, ok := a.pkg.Dependencies[name]; !ok {
			out = append(out, "new "+name+" "+r)
		} else if old != r {
			out = append(out, "changed "+name+" "+old+" "+r)
		}
	}
	sort.Strings(out)
	return out
}

func gotDeps(d *Diff) []string {
	var out []string
	for _, s := range d.Signals {
		if s.Kind != KindDependency || s.Severity != Warn {
			continue
		}
		var verb, name, from, to string
		det := s.Detail
		switch {
		case strings.HasPrefix(det, "new dependencies entry "):
			verb = "new"
			f := strings.Fields(strings.TrimPrefix(det, "new dependencies entry "))
			name, to = strings.Trim(f[0], `"`), strings.Trim(f[1], `"`)
			out = append(out, verb+" "+name+" "+to)
		case strings.HasPrefix(det, "dependencies entry "):
			f := strings.Fields(strings.TrimPrefix(det, "dependencies entry "))
			name, from, to = strings.Trim(f[0], `"`), strings.Trim(f[3], `"`), strings.Trim(f[5], `"`)
			out = append(out, "changed "+name+" "+from+" "+to)
		}
	}
	sort.Strings(out)
	return out
}

func TestRealReleases(t *testing.T) {
	for _, tc := range []struct {
		old, new string
		// Facts read from the tarballs' package.json files by hand.
		deps []string
	}{
		{"sigstore-1.3.0.tgz", "sigstore-2.0.0.tgz", []string{
			"changed @sigstore/protobuf-specs ^0.1.0 ^0.2.1",
			"new @sigstore/bundle ^2.0.0",
			"new @sigstore/sign ^2.0.0",
			"new @sigstore/tuf ^2.0.0",
		}},
		{"sigstore-1.0.0.tgz", "sigstore-1.3.0.tgz", []string{
			"changed tuf-js ^1.0.0 ^1.1.3",
			"new @sigstore/protobuf-specs ^0.1.0",
		}},
	} {
		t.Run(tc.old+"->"+tc.new, func(t *testing.T) {
			fa, fb := loadFixture(t, tc.old), loadFixture(t, tc.new)
			a, b := readFixture(t, tc.old), readFixture(t, tc.new)
			if a.Format != FormatNPM || len(a.Files) != len(fa.files) || len(b.Files) != len(fb.files) {
				t.Fatalf("read %s with %d files and %s with %d, want npm with %d and %d", a.Format, len(a.Files), b.Format, len(b.Files), len(fa.files), len(fb.files))
			}
			for _, f := range b.Files {
				if f.SHA256 != fb.files[f.Path] {
					t.Errorf("%s: sha256 %s, archive/tar says %s", f.Path, f.SHA256, fb.files[f.Path])
				}
			}
			d := Compare(a, b, DefaultLimits())

			got := map[string]Change{}
			for _, c := range d.Files {
				got[c.Path] = c.Change
			}
			if diff := cmp.Diff(expectedChanges(fa, fb), got); diff != "" {
				t.Errorf("changed paths (-want +got):\n%s", diff)
			}
			if d.Unchanged+d.Changed+d.Removed != len(fa.files) || d.Unchanged+d.Changed+d.Added != len(fb.files) {
				t.Errorf("counts: %d unchanged, %d changed, %d added, %d removed do not add up", d.Unchanged, d.Changed, d.Added, d.Removed)
			}
			if diff := cmp.Diff(tc.deps, expectedDeps(fa, fb)); diff != "" {
				t.Fatalf("the fixtures are not what the test expects (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tc.deps, gotDeps(d)); diff != "" {
				t.Errorf("dependency signals (-want +got):\n%s", diff)
			}
			if d.Package == nil || d.Package.Name != "sigstore" || d.Package.Version != fb.pkg.Version || d.Package.OldVersion != fa.pkg.Version {
				t.Errorf("package facts %+v", d.Package)
			}
			// Plain compiled TypeScript: nothing else deserves a warning.
			for _, s := range d.Signals {
				if s.Severity != Info && s.Kind != KindDependency {
					t.Errorf("unexpected signal %+v", s)
				}
			}
			// Every hunk applies: old text plus hunks gives the new text.
			for _, c := range d.Files {
				if c.Change == Removed || c.Binary || c.Truncated {
					continue
				}
				if c.Change == Changed && !slices.Contains(c.What, "content") {
					continue
				}
				got, err := applyHunks(fa.texts[c.Path], c.Hunks)
				if err != nil {
					t.Errorf("%s: %v", c.Path, err)
					continue
				}
				if got != fb.texts[c.Path] {
					t.Errorf("%s: applying the hunks does not give the new file", c.Path)
				}
				wantAdded, wantRemoved := 0, 0
				for _, h := range c.Hunks {
					for _, l := range h.Lines {
						switch l.Op {
						case OpInsert:
							wantAdded++
						case OpDelete:
							wantRemoved++
						}
					}
				}
				if c.LinesAdded != wantAdded || c.LinesRemoved != wantRemoved {
					t.Errorf("%s: +%d -%d lines, hunks hold +%d -%d", c.Path, c.LinesAdded, c.LinesRemoved, wantAdded, wantRemoved)
				}
			}
		})
	}
}

// applyHunks applies unified-diff hunks to old, as patch would.
func applyHunks(old string, hs []Hunk) (string, error) {
	a := splitLines(old)
	var out strings.Builder
	next := 0 // next line of a to copy
	for _, h := range hs {
		start := h.OldStart - 1
		if h.OldLines == 0 {
			start = h.OldStart
		}
		if start < next || start > len(a) {
			return "", errorf("hunk at line %d out of order", h.OldStart)
		}
		for ; next < start; next++ {
			out.WriteString(a[next])
		}
		for _, l := range h.Lines {
			text := l.Text
			if !l.NoNewline {
				text += "\n"
			}
			switch l.Op {
			case OpContext, OpDelete:
				if next >= len(a) || a[next] != text {
					return "", errorf("hunk at line %d does not match line %d", h.OldStart, next+1)
				}
				next++
				if l.Op == OpContext {
					out.WriteString(text)
				}
			case OpInsert:
				out.WriteString(text)
			}
		}
	}
	for ; next < len(a); next++ {
		out.WriteString(a[next])
	}
	return out.String(), nil
}
