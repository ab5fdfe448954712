package tuf

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/theupdateframework/go-tuf/v2/metadata"
)

func TestSpecDateMarshalsInSpecFormat(t *testing.T) {
	loc := time.FixedZone("X", 5*3600)
	in := time.Date(2027, 3, 2, 6, 47, 29, 654398795, loc)
	m := metadata.Targets(SpecDate(in))
	b, err := m.ToBytes(false)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), `"expires":"2027-03-02T01:47:29Z"`) {
		t.Fatalf("marshalled %s, want expires 2027-03-02T01:47:29Z", b)
	}
	if _, err := ParseStrict[metadata.TargetsType](b); err != nil {
		t.Fatalf("strict parser refused spec-format date: %v", err)
	}
}

func TestParseStrictRefusesNonSpecDates(t *testing.T) {
	good := metadata.Targets(SpecDate(time.Date(2027, 3, 2, 1, 47, 29, 0, time.UTC)))
	b, err := good.ToBytes(false)
	if err != nil {
		t.Fatal(err)
	}
	for _, bad := range []string{
		"2027-03-02T01:47:29.654398795Z",
		"2027-03-02T01:47:29+00:00",
		"2027-03-02T02:47:29+01:00",
		"2027-03-02 01:47:29Z",
		"2027-03-02T01:47:29z",
		"2027-3-2T01:47:29Z",
	} {
		raw := strings.Replace(string(b), "2027-03-02T01:47:29Z", bad, 1)
		_, err := ParseStrict[metadata.TargetsType]([]byte(raw))
		if err == nil {
			t.Errorf("expires %q: accepted", bad)
			continue
		}
		if !errors.Is(err, ErrNonConformant) || !strings.Contains(err.Error(), "signed.expires") {
			t.Errorf("expires %q: refused for another reason: %v", bad, err)
		}
	}
}
