package appliance

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"

	"airlock.dev/airlock/appliance/audit"
	"airlock.dev/airlock/tuf"
)

// RecordReport is what an exported ceremony record shows once verified.
type RecordReport struct {
	Ceremony     string   `json:"ceremony"`
	Entries      int      `json:"entries"`
	RecordSHA256 string   `json:"record_sha256"`
	SignedSHA256 string   `json:"signed_sha256"`
	Holders      []string `json:"holders"`  // who approved, sorted
	KeyIDs       []string `json:"key_ids"`  // the keys that signed, sorted
	Dev          bool     `json:"dev"`      // started in development mode
	Response     bool     `json:"response"` // checked against a response
}

// ErrRecord means an exported ceremony record does not verify, or does not
// belong to the response it came with.
var ErrRecord = errors.New("ceremony record does not verify")

// VerifyRecord checks an exported ceremony record (record.json): its hash
// chain and canonical form, that it is the record of one finished ceremony
// (started, verified, approved by at least two holders, recorded in the
// ledger, signed, exported, nothing refused or failed), and, when resp is
// not nil, that it belongs to resp: the record's SHA-256 is the response's
// record_sha256, the ceremony id, payload hash and holders agree, and every
// signature in the response is the one a "sign" entry committed to, key by
// key.
func VerifyRecord(record []byte, resp *tuf.Response) (*RecordReport, error) {
	bad := func(format string, a ...any) error {
		return fmt.Errorf("%w: %s", ErrRecord, fmt.Sprintf(format, a...))
	}
	rec, err := audit.VerifyExport(record)
	if err != nil {
		return nil, bad("%v", err)
	}
	sum := sha256.Sum256(record)
	rep := &RecordReport{Ceremony: rec.Ceremony, RecordSHA256: hex.EncodeToString(sum[:])}
	steps := map[string]bool{}
	sigs := map[string][32]byte{} // key id -> SHA-256 of its signature
	approvers := map[string]bool{}
	for _, e := range rec.Entries {
		if e.Ceremony != rec.Ceremony {
			continue
		}
		rep.Entries++
		if e.Outcome == audit.OutcomeRefused || e.Outcome == audit.OutcomeFailed {
			return nil, bad("entry %d (%s) says %s: %s", e.Seq, e.Step, e.Outcome, e.Detail)
		}
		for _, h := range e.Hashes {
			if h.Name != "payload" {
				continue
			}
			p := hex.EncodeToString(h.Sum[:])
			if rep.SignedSHA256 != "" && rep.SignedSHA256 != p {
				return nil, bad("entry %d names payload %s, earlier entries %s", e.Seq, p, rep.SignedSHA256)
			}
			rep.SignedSHA256 = p
		}
		if e.Outcome != audit.OutcomeOK {
			continue
		}
		steps[e.Step] = true
		switch e.Step {
		case "start":
			rep.Dev = strings.Contains(e.Detail, "DEVELOPMENT MODE")
		case "approve":
			approvers[e.Actor] = true
		case "sign":
			id, ok := strings.CutPrefix(e.Detail, SignedWithKey)
			var h *audit.Hash
			for i := range e.Hashes {
				if e.Hashes[i].Name == SignatureHashName {
					h = &e.Hashes[i]
				}
			}
			if !ok || h == nil {
				return nil, bad("entry %d (sign) names no key and signature hash", e.Seq)
			}
			if _, dup := sigs[id]; dup {
				return nil, bad("entry %d: key %s signed twice", e.Seq, id)
			}
			sigs[id] = h.Sum
		}
	}
	for _, s := range []string{"start", "verify", "approve", "ledger", "sign", "export"} {
		if !steps[s] {
			return nil, bad("ceremony %s has no successful %s step: the record is not the one of a finished ceremony", rec.Ceremony, s)
		}
	}
	if rep.SignedSHA256 == "" {
		return nil, bad("no entry names the payload hash")
	}
	if len(approvers) < 2 {
		return nil, bad("%d holder(s) approved; every signature set needs two", len(approvers))
	}
	for h := range approvers {
		rep.Holders = append(rep.Holders, h)
	}
	sort.Strings(rep.Holders)
	for id := range sigs {
		rep.KeyIDs = append(rep.KeyIDs, id)
	}
	sort.Strings(rep.KeyIDs)
	if resp == nil {
		return rep, nil
	}
	rep.Response = true
	if resp.RecordSHA256 != rep.RecordSHA256 {
		return nil, bad("the record's sha256 is %s, the response names %s: this is not the record exported with the response", rep.RecordSHA256, orNone(resp.RecordSHA256))
	}
	if resp.CeremonyID != rec.Ceremony {
		return nil, bad("the record is of ceremony %s, the response of %s", rec.Ceremony, resp.CeremonyID)
	}
	if resp.SignedSHA256 != rep.SignedSHA256 {
		return nil, bad("the record's payload is %s, the response signs %s", rep.SignedSHA256, resp.SignedSHA256)
	}
	if resp.Dev != rep.Dev {
		return nil, bad("the record says development mode %v, the response %v", rep.Dev, resp.Dev)
	}
	holders := slices.Clone(resp.Holders)
	sort.Strings(holders)
	if !slices.Equal(holders, rep.Holders) {
		return nil, bad("the record's approvers are %v, the response names %v", rep.Holders, holders)
	}
	if len(resp.Signatures) != len(sigs) {
		return nil, bad("the record has %d signatures, the response %d", len(sigs), len(resp.Signatures))
	}
	for i, s := range resp.Signatures {
		want, ok := sigs[s.KeyID]
		if !ok {
			return nil, bad("response signature %d is by key %s, which signed nothing in the record", i, s.KeyID)
		}
		b, err := hex.DecodeString(s.Sig)
		if err != nil || sha256.Sum256(b) != want {
			return nil, bad("response signature %d by key %s is not the signature the record committed to", i, s.KeyID)
		}
	}
	return rep, nil
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}
