package appliance

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"sort"
	"strings"

	"airlock.dev/airlock/appliance/audit"
	"airlock.dev/airlock/tuf"
)

// Kept responses.
//
// Once the signatures of a ceremony verify, the signed response and its
// ceremony record are written durably into the state directory before any
// export is tried: a missing folder, a pulled or full stick, or a QR scan
// that never finishes then costs an export, never the holders' approvals.
// Each kept ceremony is two files, written record first, so a kept
// response always has its record beside it:
//
//	kept-ID.record.json    the exported ceremony record (its hash is in the response)
//	kept-ID.response.json  the signature response
//
// Kept files are never removed by the appliance; ExportKept writes them out
// again as often as asked, and the audit log records every attempt.

// Kept-file naming.
const (
	keptPrefix       = "kept-"
	keptResponseTail = ".response.json"
	keptRecordTail   = ".record.json"
	// maxKeptIDLen is the longest ceremony id used verbatim in a kept file
	// name; longer ids are named by their SHA-256.
	maxKeptIDLen = 96
	// MaxKeptList caps the kept ceremonies KeptList returns.
	MaxKeptList = 1000
)

// ErrNotKept is returned when a ceremony has no kept response.
var ErrNotKept = errors.New("no kept response")

// ExportError is returned by Ceremony.Run when the ceremony signed, its
// response is kept in the state directory, and writing it out failed.
// Nothing needs to be signed again: ExportKept (airlock-appliance export)
// writes the kept response out.
type ExportError struct {
	CeremonyID string
	StateDir   string
	Err        error // the last export failure
}

func (e *ExportError) Error() string {
	return fmt.Sprintf("signed; the response is kept; export failed: %v (write it out again without signing: airlock-appliance export --state %s --ceremony %s --out NEW_FOLDER)", e.Err, e.StateDir, e.CeremonyID)
}

func (e *ExportError) Unwrap() error { return e.Err }

// ExportRetry is asked, after an export failed, where to write the kept
// response next. The TUI offers another folder, another stick or QR codes.
type ExportRetry interface {
	// RetryExport returns the sink of the next attempt, or nil to stop: the
	// response then stays kept in the state directory.
	RetryExport(ctx context.Context, failed error) (Sink, error)
}

// MaxExportAttempts caps the export attempts of one ceremony.
const MaxExportAttempts = 32

func keptBase(ceremonyID string) string {
	if len(ceremonyID) > maxKeptIDLen {
		sum := sha256.Sum256([]byte(ceremonyID))
		return keptPrefix + hex.EncodeToString(sum[:16])
	}
	return keptPrefix + ceremonyID
}

// keep writes e's record and response into the state directory; it
// returns the response file's name.
func (s *StateDir) keep(e Export) (string, error) {
	base := keptBase(e.CeremonyID)
	if ok, err := s.dir.Exists(base + keptResponseTail); err != nil || ok {
		return "", fmt.Errorf("keep response: ceremony %s already has a kept response", e.CeremonyID)
	}
	if err := s.dir.WriteFile(base+keptRecordTail, e.Record); err != nil {
		return "", fmt.Errorf("keep response: %w", err)
	}
	if err := s.dir.WriteFile(base+keptResponseTail, e.Response); err != nil {
		return "", fmt.Errorf("keep response: %w", err)
	}
	return base + keptResponseTail, nil
}

// Kept reads the kept response of ceremonyID and checks it: the response
// parses, names the ceremony, and carries the SHA-256 of the record beside
// it, which verifies as that ceremony's record.
func (s *StateDir) Kept(ceremonyID string) (Export, error) {
	base := keptBase(ceremonyID)
	rb, err := s.dir.ReadFile(base+keptResponseTail, tuf.MaxResponseBytes)
	if errors.Is(err, fs.ErrNotExist) {
		return Export{}, fmt.Errorf("ceremony %s: %w in %s (airlock-appliance export --state %s --list shows the kept ones)", ceremonyID, ErrNotKept, s.Path(), s.Path())
	}
	if err != nil {
		return Export{}, fmt.Errorf("kept response of %s: %w", ceremonyID, err)
	}
	rec, err := s.dir.ReadFile(base+keptRecordTail, audit.MaxRecordSize)
	if err != nil {
		return Export{}, fmt.Errorf("kept record of %s: %w", ceremonyID, err)
	}
	resp, err := tuf.ParseResponse(rb)
	if err != nil {
		return Export{}, fmt.Errorf("kept response of %s: %w", ceremonyID, err)
	}
	if resp.CeremonyID != ceremonyID {
		return Export{}, fmt.Errorf("kept response of %s names ceremony %q", ceremonyID, resp.CeremonyID)
	}
	r, err := audit.VerifyExport(rec)
	if err != nil {
		return Export{}, fmt.Errorf("kept record of %s: %w", ceremonyID, err)
	}
	if r.Ceremony != ceremonyID || tuf.SHA256Hex(rec) != resp.RecordSHA256 {
		return Export{}, fmt.Errorf("kept record of %s is not the record its response names (sha256 %s)", ceremonyID, resp.RecordSHA256)
	}
	return Export{CeremonyID: ceremonyID, Role: resp.Role, Version: resp.Version, Response: rb, Record: rec}, nil
}

// KeptList returns the ceremony ids with a kept response, oldest first
// (ceremony ids start with their UTC time).
func (s *StateDir) KeptList() ([]string, error) {
	ents, err := os.ReadDir(s.Path())
	if err != nil {
		return nil, fmt.Errorf("list kept responses: %w", err)
	}
	var ids []string
	for _, e := range ents {
		n := e.Name()
		if !e.Type().IsRegular() || !strings.HasPrefix(n, keptPrefix) || !strings.HasSuffix(n, keptResponseTail) {
			continue
		}
		b, err := s.dir.ReadFile(n, tuf.MaxResponseBytes)
		if err != nil {
			return nil, fmt.Errorf("list kept responses: %w", err)
		}
		resp, err := tuf.ParseResponse(b)
		if err != nil {
			return nil, fmt.Errorf("list kept responses: %s: %w", n, err)
		}
		if keptBase(resp.CeremonyID)+keptResponseTail != n {
			return nil, fmt.Errorf("list kept responses: %s holds the response of ceremony %q", n, resp.CeremonyID)
		}
		ids = append(ids, resp.CeremonyID)
		if len(ids) > MaxKeptList {
			return nil, fmt.Errorf("list kept responses: more than %d", MaxKeptList)
		}
	}
	sort.Strings(ids)
	return ids, nil
}

// ExportKept writes the kept response of ceremonyID through sink and
// records the attempt, and its outcome, in the audit log under the
// ceremony's id. Nothing is signed.
func ExportKept(ctx context.Context, s *StateDir, ceremonyID string, sink Sink, clock Clock) (string, error) {
	if clock == nil {
		clock = SystemClock
	}
	e, err := s.Kept(ceremonyID)
	if err != nil {
		return "", err
	}
	where, err := sink.Export(ctx, e)
	entry := audit.Entry{Time: clock.Now(), Ceremony: ceremonyID, Step: "exported", Outcome: audit.OutcomeInfo,
		Hashes: []audit.Hash{{Name: "response", Sum: sha(e.Response)}, {Name: LedgerHashName, Sum: s.Ledger.Sum()}}}
	if err != nil {
		entry.Outcome, entry.Detail = audit.OutcomeFailed, clipText("export of the kept response failed: "+err.Error())
		_, _, aerr := s.Audit.Append(entry)
		return "", errors.Join(fmt.Errorf("export failed: %w; the response stays kept", err), aerr)
	}
	entry.Detail = clipText("kept response written to " + where)
	if _, _, err := s.Audit.Append(entry); err != nil {
		return where, fmt.Errorf("the response was written to %s, but the audit log could not record it: %w", where, err)
	}
	return where, nil
}
