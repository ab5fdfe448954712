package appliance

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"airlock.dev/airlock/tuf"
)

// finished runs a release ceremony and returns its record and response.
func finished(t *testing.T, s *scenario, role, version string, keys ...string) ([]byte, *tuf.Response) {
	t.Helper()
	r := s.sign(s.release(role, version, "", nil), keys)
	resp := r.done(t)
	rec, err := os.ReadFile(filepath.Join(r.out, RecordFile))
	if err != nil {
		t.Fatal(err)
	}
	return rec, resp
}

func wantRecordError(t *testing.T, err error, want string) {
	t.Helper()
	if !errors.Is(err, ErrRecord) || !strings.Contains(err.Error(), want) {
		t.Fatalf("got %v, want a record error containing %q", err, want)
	}
}

func TestRecordVerifiesAgainstItsResponse(t *testing.T) {
	s := newScenario(t).role("sigstore", 2, "alice", "bob").role("other", 2, "carol", "dave")
	rec, resp := finished(t, s, "sigstore", "1.3.0", "alice", "bob")
	rep, err := VerifyRecord(rec, resp)
	if err != nil {
		t.Fatal(err)
	}
	if !rep.Response || !rep.Dev || rep.SignedSHA256 != resp.SignedSHA256 || len(rep.KeyIDs) != 2 || strings.Join(rep.Holders, ",") != "alice,bob" {
		t.Fatalf("report %+v", rep)
	}
	if _, err := VerifyRecord(rec, nil); err != nil {
		t.Fatal(err)
	}

	// A changed entry breaks the chain.
	bad := bytes.Replace(rec, []byte(`"holder`), []byte(`"HOLDER`), 1)
	if bytes.Equal(bad, rec) {
		bad = bytes.Replace(rec, []byte(`"ok"`), []byte(`"info"`), 1)
	}
	_, err = VerifyRecord(bad, nil)
	wantRecordError(t, err, "ceremony record does not verify")

	// The record of another ceremony is not this response's.
	other, _ := finished(t, s, "other", "2.0.0", "carol", "dave")
	_, err = VerifyRecord(other, resp)
	wantRecordError(t, err, "this is not the record exported with the response")

	// A response whose signature was swapped keeps its record hash but not
	// the signature the record committed to.
	forged := *resp
	forged.Signatures = append([]tuf.Signature(nil), resp.Signatures...)
	sig := []byte(forged.Signatures[0].Sig)
	sig[10] ^= 1
	if sig[10] > 'f' || (sig[10] > '9' && sig[10] < 'a') {
		sig[10] = '0'
	}
	forged.Signatures[0].Sig = string(sig)
	_, err = VerifyRecord(rec, &forged)
	wantRecordError(t, err, "is not the signature the record committed to")

	// Holders named in the response must be the approvers on the record.
	forged = *resp
	forged.Holders = []string{"alice", "mallory"}
	_, err = VerifyRecord(rec, &forged)
	wantRecordError(t, err, "the record's approvers are [alice bob], the response names [alice mallory]")
}

// The record of a refused ceremony is not the record of a signing.
func TestRecordOfRefusedCeremonyRefused(t *testing.T) {
	s := newScenario(t).role("sigstore", 2, "alice", "bob")
	r := s.sign(s.release("sigstore", "1.3.0", "", nil), []string{"alice", "bob"}, "bob")
	r.refusedFor(t, RuleConfirm)
	rec, _, err := s.openState().Audit.Export(r.state.ID)
	if err != nil {
		t.Fatal(err)
	}
	_, err = VerifyRecord(rec, nil)
	wantRecordError(t, err, "says refused")
}

func FuzzVerifyRecord(f *testing.F) {
	f.Add([]byte(`{"format":"airlock-record/1","ceremony":"x","entries":[],"head":""}`))
	f.Add([]byte(`{}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		rep, err := VerifyRecord(b, &tuf.Response{RecordSHA256: "00"})
		if err == nil || rep != nil {
			t.Fatalf("a record for a response with another hash verified: %+v", rep)
		}
		if !errors.Is(err, ErrRecord) {
			t.Fatalf("error %v does not wrap ErrRecord", err)
		}
	})
}
