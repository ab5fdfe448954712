package online

import (
	"errors"
	"fmt"

	"airlock.dev/airlock/hsm"
	"airlock.dev/airlock/tuf"
)

// ErrDevResponse means a response was made with development keys (or by
// development signing, with no ceremony record) and combine was not told
// that development signatures are wanted.
var ErrDevResponse = errors.New("response made with development keys")

// CheckResponsesProduction refuses, unless dev, a response marked as made
// with development keys, a response without a ceremony record hash (made by
// airlock sign, not by the appliance), and a signature by a key the role's
// delegation lists as a software (file) key.
func CheckResponsesProduction(d *tuf.Delegation, responses []*tuf.Response, dev bool) error {
	if dev {
		return nil
	}
	for i, r := range responses {
		src := fmt.Sprintf("response %d (ceremony %s)", i+1, r.CeremonyID)
		if r.Dev {
			return fmt.Errorf("%s: %w: it says development_keys; combine it only with --dev", src, ErrDevResponse)
		}
		if r.RecordSHA256 == "" {
			return fmt.Errorf("%s: %w: it carries no ceremony record hash, so it was not made by the appliance; combine it only with --dev", src, ErrDevResponse)
		}
		for j, s := range r.Signatures {
			if k, ok := d.Keys[s.KeyID]; ok && tuf.KeyKind(k) == hsm.KindFile {
				return fmt.Errorf("%s: signatures[%d]: %w: key %s is a software key; combine it only with --dev", src, j, ErrDevResponse, s.KeyID[:12])
			}
		}
	}
	return nil
}
