package tuf

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// SpecDateLayout is the only date format the TUF specification allows for
// "expires": whole seconds, UTC, a literal Z.
const SpecDateLayout = "2006-01-02T15:04:05Z"

// ErrNonConformant marks metadata that a TUF client following the
// specification (python-tuf, for one) would refuse, even where go-tuf is
// lenient.
var ErrNonConformant = errors.New("metadata does not follow the TUF specification")

// SpecDate is the one function every expiry Airlock writes passes through:
// t in UTC, truncated to whole seconds, so that it marshals in
// SpecDateLayout.
func SpecDate(t time.Time) time.Time {
	return t.UTC().Truncate(time.Second)
}

// checkSpecDates refuses metadata whose signed.expires is not a string in
// SpecDateLayout. go-tuf parses any RFC 3339 time; python-tuf and the
// specification accept only this form.
func checkSpecDates(data []byte) error {
	var top map[string]json.RawMessage
	if err := json.Unmarshal(data, &top); err != nil {
		return err
	}
	var signed map[string]json.RawMessage
	if err := json.Unmarshal(top["signed"], &signed); err != nil {
		return fmt.Errorf("signed: %w", err)
	}
	raw, ok := signed["expires"]
	if !ok {
		return fmt.Errorf("signed.expires is missing: %w", ErrNonConformant)
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return fmt.Errorf("signed.expires is not a string: %w", ErrNonConformant)
	}
	if err := CheckSpecDate(s); err != nil {
		return fmt.Errorf("signed.expires %w", err)
	}
	return nil
}

// CheckSpecDate reports whether s is a date in SpecDateLayout. Its error
// names the expected form; callers prefix the field name.
func CheckSpecDate(s string) error {
	t, err := time.Parse(SpecDateLayout, s)
	if err != nil || t.Format(SpecDateLayout) != s {
		if len(s) > 40 {
			s = s[:40] + "..."
		}
		return fmt.Errorf("%q is not in the format YYYY-MM-DDTHH:MM:SSZ (whole seconds, UTC): %w", s, ErrNonConformant)
	}
	return nil
}
