package content

import "testing"

func TestConfusable(t *testing.T) {
	for _, tc := range []struct{ name, like string }{
		{"loadsh", "lodash"},    // transposition
		{"l0dash", "lodash"},    // digit for letter
		{"lodash-js", "lodash"}, // suffix
		{"lo-dash", "lodash"},   // separator
		{"lo_dash", "lodash"},
		{"1odash", "lodash"},
		{"Lodash", "lodash"},
		{"lоdash", "lodash"}, // Cyrillic о
		{"expresss", "express"},
		{"reqeust", "request"},
		{"node-axios", "axios"},
		{"crossenv", "cross-env"},
		{"rnoment", "moment"}, // rn for m
		{"typescirpt", "typescript"},
		{"lod\u200bash", "lodash"},
		{"@babel/c0re", "@babel/core"},
		{"@types/nodes", "@types/node"},
		// Not confusable.
		{"lodash", ""},
		{"sigstore", ""},
		{"tuf-js", ""},
		{"make-fetch-happen", ""},
		{"@sigstore/bundle", ""},
		{"@sigstore/tuf", ""},
		{"@evil/lodash", ""},
		{"react-dom", ""},
		{"demo-widget", ""},
		{"", ""},
	} {
		got, why := confusable(tc.name)
		if got != tc.like {
			t.Errorf("confusable(%q) = %q (%s), want %q", tc.name, got, why, tc.like)
		}
	}
}

func TestEditDistance(t *testing.T) {
	for _, tc := range []struct {
		a, b string
		want int
	}{{"", "", 0}, {"abc", "", 3}, {"lodash", "loadsh", 1}, {"kitten", "sitting", 3}, {"ab", "ba", 1}} {
		if got := editDistance(tc.a, tc.b); got != tc.want {
			t.Errorf("editDistance(%q, %q) = %d, want %d", tc.a, tc.b, got, tc.want)
		}
	}
}
