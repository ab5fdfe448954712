package tuf

import (
	"encoding/hex"
	"errors"
	"fmt"
	"sort"

	"github.com/theupdateframework/go-tuf/v2/metadata"
)

// ErrOtherBytes means a response signs bytes other than the request's.
var ErrOtherBytes = errors.New("response is for other bytes")

// Combined is the result of merging responses into metadata.
type Combined struct {
	// Signatures, one per distinct key, sorted by key ID.
	Signatures []metadata.Signature
	Verified   *Verified
	// Dropped explains signatures that were not used.
	Dropped []string
}

// Combine merges signature responses into the signatures of payload,
// checking each against the delegation: a response for another role,
// version or payload hash is refused whole; a signature by a key outside the
// role or that does not verify is refused; a second signature by a key
// already present (by public key, not key ID) is dropped, so go-tuf's
// append-only Sign can never count one key twice. existing are signatures
// already on the metadata (for example from an earlier combine).
func Combine(p *Payload, role string, d *Delegation, existing []metadata.Signature, responses []*Response) (*Combined, error) {
	c := &Combined{}
	have := map[string]bool{}
	add := func(src string, keyID string, sig []byte) error {
		_, ok := d.Keys[keyID]
		inRole := false
		for _, id := range d.KeyIDs {
			inRole = inRole || id == keyID
		}
		if !ok || !inRole {
			return fmt.Errorf("%s: key %s is not a key of role %s", src, short(keyID), role)
		}
		pk := d.key(keyID)
		if pk.err != nil {
			return fmt.Errorf("%s: key %s: %w", src, short(keyID), pk.err)
		}
		fp := pk.fp
		// The one verification of this signature: the threshold count
		// below relies on it instead of verifying again.
		if err := verifyParsed(pk.pub, pk.hash, p.Canonical, sig); err != nil {
			return fmt.Errorf("%s: signature by key %s does not verify over the request's bytes", src, short(keyID))
		}
		if have[fp] {
			c.Dropped = append(c.Dropped, fmt.Sprintf("%s: key %s already signed", src, short(keyID)))
			return nil
		}
		have[fp] = true
		c.Signatures = append(c.Signatures, metadata.Signature{KeyID: keyID, Signature: sig})
		return nil
	}
	for i, s := range existing {
		if err := add(fmt.Sprintf("existing signature %d", i), s.KeyID, s.Signature); err != nil {
			c.Dropped = append(c.Dropped, err.Error())
		}
	}
	for i, r := range responses {
		src := fmt.Sprintf("response %d", i+1)
		if r.Role != role || r.Version != p.Version || r.SignedSHA256 != p.SHA256 {
			return nil, fmt.Errorf("%s signs %s version %d with hash %s, the request is %s version %d with hash %s: %w",
				src, r.Role, r.Version, short(r.SignedSHA256), role, p.Version, short(p.SHA256), ErrOtherBytes)
		}
		for j, s := range r.Signatures {
			sig, err := hex.DecodeString(s.Sig)
			if err != nil {
				return nil, fmt.Errorf("%s: signatures[%d]: %w", src, j, err)
			}
			if err := add(fmt.Sprintf("%s signature %d", src, j), s.KeyID, sig); err != nil {
				return nil, err
			}
		}
	}
	sort.Slice(c.Signatures, func(i, j int) bool { return c.Signatures[i].KeyID < c.Signatures[j].KeyID })
	// Every signature kept was verified above with the key its key ID
	// names over p.Canonical: count the threshold and the approval groups
	// without verifying them a second time.
	v, err := verifySignedOnce(d, c.Signatures)
	c.Verified = v
	if err != nil {
		return c, err
	}
	return c, nil
}
