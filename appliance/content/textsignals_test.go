package content

import (
	"strings"
	"testing"
)

func TestTextSignals(t *testing.T) {
	for _, tc := range []struct {
		what, in string
		like     []string
		kind     Kind
		detail   string
	}{
		{"target name", "pkg/exe\u202egnp.tgz", nil, KindDeceptiveText, `bidirectional control \u202e`},
		{"target name", "sig\u200bstore.tgz", nil, KindDeceptiveText, `zero-width character \u200b`},
		{"note", "release\x1b[2J notes", nil, KindDeceptiveText, `control character \x1b`},
		{"holder name", "al\xffice", nil, KindDeceptiveText, "not valid UTF-8"},
		{"dependency name", "\u0455ig\u0455tore", []string{"sigstore"}, KindDeceptiveText, "mixes scripts (Cyrillic+Latin)"},
		{"dependency name", "\u0455ig\u0455tore", []string{"sigstore"}, KindConfusableName, `looks the same as "sigstore"`},
		{"target name", "l0dash", nil, KindConfusableName, `"lodash"`},
	} {
		sigs := TextSignals(tc.what, tc.in, tc.like...)
		found := false
		for _, s := range sigs {
			if s.Kind == tc.kind && s.Severity == High && strings.Contains(s.Detail, tc.detail) && strings.HasPrefix(s.Detail, tc.what) {
				found = true
			}
		}
		if !found {
			t.Errorf("TextSignals(%q, %q) = %+v, want a %s signal saying %q", tc.what, tc.in, sigs, tc.kind, tc.detail)
		}
	}
	if sigs := TextSignals("target name", "sigstore/sigstore-2.0.0.tgz", "sigstore"); len(sigs) != 0 {
		t.Errorf("a plain target name got signals: %+v", sigs)
	}
}

func TestRequireContent(t *testing.T) {
	miss := []Signal{MissingContent("pkg.tgz", false)}
	err := RequireContent(true, miss)
	if err == nil || !strings.Contains(err.Error(), "the artifact is not in the bundle") || !strings.Contains(err.Error(), "requires a content review") {
		t.Fatalf("RequireContent(true) = %v, want a refusal naming the missing artifact", err)
	}
	if err := RequireContent(false, miss); err != nil {
		t.Fatalf("RequireContent(false) = %v, want nil (signal shown instead)", err)
	}
	if err := RequireContent(true, []Signal{MissingContent("pkg.tgz", true)}); err == nil || !strings.Contains(err.Error(), "previous release") {
		t.Fatalf("missing previous release not refused: %v", err)
	}
}

func FuzzTextSignals(f *testing.F) {
	for _, s := range []string{"", "a\u202eb", "\u0455ig\u0455tore", "\xff", "l0dash"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		for _, sig := range TextSignals("name", s, "sigstore") {
			if !strings.HasPrefix(sig.Detail, "name") || sig.Severity != High {
				t.Fatalf("odd signal %+v", sig)
			}
			if Visible(sig.Detail) != sig.Detail {
				t.Fatalf("detail holds raw text: %q", sig.Detail)
			}
		}
	})
}
