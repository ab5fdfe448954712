package appliance

import (
	"fmt"
	"strings"
	"time"

	"airlock.dev/airlock/appliance/content"
)

// MaxDateAnswer caps the date the operator types.
const MaxDateAnswer = 64

// parseConfirmedDate parses the date the operator typed: YYYY-MM-DD,
// surrounding blanks allowed, midnight UTC.
func parseConfirmedDate(ans string) (time.Time, error) {
	if len(ans) > MaxDateAnswer {
		return time.Time{}, fmt.Errorf("the date typed is %d bytes long: type it as YYYY-MM-DD", len(ans))
	}
	d, err := time.Parse(time.DateOnly, strings.TrimSpace(ans))
	if err != nil {
		return time.Time{}, fmt.Errorf("%q is not a date: type it as YYYY-MM-DD", content.Visible(ans))
	}
	return d, nil
}
