package content

import (
	"fmt"
	"slices"
	"unicode"
	"unicode/utf8"
)

// Signal kinds about text that travels with a release rather than inside
// an artifact.
const (
	// KindDeceptiveText: a target name, note, holder or dependency name
	// holds a bidi control, a zero-width or other invisible character, a
	// control character, invalid UTF-8 or letters of several scripts.
	KindDeceptiveText Kind = "deceptive-text"
	// KindContentMissing: the bytes of a target or of its previous release
	// were not in the bundle, so its content was not reviewed or not
	// compared.
	KindContentMissing Kind = "content-missing"
)

// TextSignals returns the risk signals for one piece of bundle text: what
// names the field ("target name", "note", "holder name", "dependency
// name"). Every invisible or control character, invalid UTF-8 and a mix of
// scripts inside one word is a High signal; a name that looks like one of
// like (the package's own name and its dependencies' names) or like a
// popular package without being it is a High confusable-name signal.
func TextSignals(what, s string, like ...string) []Signal {
	return newLikeSet(like).signals(what, s, true)
}

// ProseSignals returns the signals for free text such as a note: hidden
// and control characters, invalid UTF-8 and words mixing scripts. Prose is
// not compared with package names.
func ProseSignals(what, s string) []Signal {
	return likeSet(nil).signals(what, s, false)
}

// PeerSignals checks a set of names of one kind (holders, targets) against
// each other: hidden characters, mixed scripts, and two names that look the
// same without being the same.
func PeerSignals(what string, names []string) []Signal {
	ls := newLikeSet(names)
	var out []Signal
	for _, n := range names {
		out = append(out, ls.signals(what, n, false)...)
	}
	return out
}

// likeSet holds the names a piece of text must not imitate, by skeleton,
// so that checking every dependency against every other stays linear.
type likeSet map[string][]string

func newLikeSet(names []string) likeSet {
	ls := likeSet{}
	for _, n := range names {
		if sk := skeleton(n); sk != "" && !slices.Contains(ls[sk], n) {
			ls[sk] = append(ls[sk], n)
		}
	}
	return ls
}

func (ls likeSet) signals(what, s string, popular bool) []Signal {
	var out []Signal
	for i, r := range s {
		if r == utf8.RuneError && !hasRuneError(s[i:]) {
			out = append(out, Signal{Kind: KindDeceptiveText, Severity: High, File: s, Detail: what + " " + q(s) + " is not valid UTF-8"})
			break
		}
		if hiddenInName(r) {
			out = append(out, Signal{Kind: KindDeceptiveText, Severity: High, File: s, Detail: what + " " + q(s) + " contains " + describeRune(r)})
			break
		}
	}
	if scripts := mixedScripts(s); scripts != "" {
		out = append(out, Signal{Kind: KindDeceptiveText, Severity: High, File: s, Detail: what + " " + q(s) + " mixes scripts (" + scripts + ") in one word"})
	}
	if sk := skeleton(s); sk != "" {
		for _, l := range ls[sk] {
			if l != s {
				out = append(out, Signal{Kind: KindConfusableName, Severity: High, File: s, Detail: fmt.Sprintf("%s %s looks the same as %s", what, q(s), q(l))})
			}
		}
	}
	if l, why := confusable(s); popular && l != "" {
		out = append(out, Signal{Kind: KindConfusableName, Severity: High, File: s, Detail: fmt.Sprintf("%s %s %s %s", what, q(s), why, q(l))})
	}
	return out
}

func hasRuneError(s string) bool {
	r, n := utf8.DecodeRuneInString(s)
	return r == utf8.RuneError && n == 3
}

// mixedScripts names the scripts of letters mixed in one word (letters
// between separators), for example "Cyrillic+Latin", or "".
func mixedScripts(s string) string {
	tables := []struct {
		name string
		t    *unicode.RangeTable
	}{{"Latin", unicode.Latin}, {"Cyrillic", unicode.Cyrillic}, {"Greek", unicode.Greek}, {"Armenian", unicode.Armenian}, {"Cherokee", unicode.Cherokee}}
	seen := map[string]bool{}
	var order []string
	flush := func() string {
		if len(order) > 1 {
			return order[0] + "+" + order[1]
		}
		clear(seen)
		order = order[:0]
		return ""
	}
	for _, r := range s {
		if !unicode.IsLetter(r) {
			if m := flush(); m != "" {
				return m
			}
			continue
		}
		for _, t := range tables {
			if unicode.Is(t.t, r) && !seen[t.name] {
				seen[t.name] = true
				order = append(order, t.name)
			}
		}
	}
	return flush()
}

// MissingContent is the signal for a target whose content could not be
// reviewed: its bytes (previous false) or those of its previous release
// (previous true) were not in the bundle. Review and combine both call
// RequireContent with it, so that they agree on every bundle.
func MissingContent(target string, previous bool) Signal {
	if previous {
		return Signal{Kind: KindContentMissing, Severity: High, File: target,
			Detail: "the previous release's artifact is not in the bundle: the content was not compared with it, every file counts as added"}
	}
	return Signal{Kind: KindContentMissing, Severity: High, File: target,
		Detail: "the artifact is not in the bundle: its content was not reviewed, only metadata and provenance"}
}

// RequireContent is the policy rule for missing content, shared by the
// review and combine: when the policy says the release needs a content
// review (required), a missing artifact or previous release is refused
// with an error naming it; otherwise nil, and the caller shows the signal
// to the holders.
func RequireContent(required bool, missing []Signal) error {
	if !required {
		return nil
	}
	for _, s := range missing {
		if s.Kind == KindContentMissing {
			return fmt.Errorf("target %s: %s; the policy requires a content review for this release: bring the artifacts by USB", q(s.File), s.Detail)
		}
	}
	return nil
}
