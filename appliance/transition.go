package appliance

import (
	"fmt"
	"slices"
	"time"
)

// The transitions of a ceremony. Each takes a State and an event that the
// caller has already verified (the verify* functions in verify.go and the
// approval checks in ceremony.go) and returns the next State, or an error if
// the event does not fit the step. They touch no hardware, screen or disk.

func expect(s State, want Step) error {
	if s.Step != want {
		return fmt.Errorf("ceremony is at step %s, not %s", s.Step, want)
	}
	return nil
}

// applyStarted records the date the operator confirmed.
func applyStarted(s State, date time.Time) (State, error) {
	if err := expect(s, StepStart); err != nil {
		return s, err
	}
	if date.IsZero() {
		return s, fmt.Errorf("no date confirmed")
	}
	s.Date = time.Date(date.Year(), date.Month(), date.Day(), 0, 0, 0, 0, time.UTC)
	s.Step = StepImport
	return s, nil
}

// applyImported records what the bundle asks for.
func applyImported(s State, kind, role, source string) (State, error) {
	if err := expect(s, StepImport); err != nil {
		return s, err
	}
	s.Kind, s.Role, s.Source = kind, role, source
	s.Step = StepVerify
	return s, nil
}

// applyVerifiedReview records the review model that verification produced.
func applyVerifiedReview(s State, r *Review) (State, error) {
	if err := expect(s, StepVerify); err != nil {
		return s, err
	}
	if r == nil || r.Signers == nil || r.SHA256 == "" {
		return s, fmt.Errorf("incomplete review model")
	}
	s.Review, s.Need = r, r.Signers
	// From here on the kind is the one derived from the verified bytes.
	s.Kind = r.Kind
	s.Version, s.SHA256, s.Fingerprint = r.NewVersion, r.SHA256, r.Fingerprint
	s.Step = StepReview
	return s, nil
}

// applyReviewed moves from review to approvals.
func applyReviewed(s State) (State, error) {
	if err := expect(s, StepReview); err != nil {
		return s, err
	}
	s.Step = StepApprove
	return s, nil
}

// applyApproval adds one holder's verified approval. A holder approves once.
func applyApproval(s State, a Approval) (State, error) {
	if err := expect(s, StepApprove); err != nil {
		return s, err
	}
	if a.SHA256 != s.SHA256 {
		return s, fmt.Errorf("approval by %s is for sha256 %s, the ceremony signs %s", a.Holder, a.SHA256, s.SHA256)
	}
	for _, b := range s.Approvals {
		if b.Holder == a.Holder {
			return s, fmt.Errorf("%s has already approved: one person counts once", a.Holder)
		}
	}
	s = s.Clone()
	s.Approvals = append(s.Approvals, a)
	return s, nil
}

// applyApprovalsComplete moves to signing once the approvals were checked
// against the ceremony's Need.
func applyApprovalsComplete(s State) (State, error) {
	if err := expect(s, StepApprove); err != nil {
		return s, err
	}
	s.Step = StepSign
	return s, nil
}

// applySigned records one key's verified signature.
func applySigned(s State, keyID string) (State, error) {
	if err := expect(s, StepSign); err != nil {
		return s, err
	}
	if slices.Contains(s.Signed, keyID) {
		return s, fmt.Errorf("key %s already signed", keyID)
	}
	s = s.Clone()
	s.Signed = append(s.Signed, keyID)
	return s, nil
}

// applySignaturesVerified moves to export once the signatures verified.
func applySignaturesVerified(s State) (State, error) {
	if err := expect(s, StepSign); err != nil {
		return s, err
	}
	s.Step = StepExport
	return s, nil
}

// applyKept records that the signed response is kept in the state
// directory, under name.
func applyKept(s State, name, recordSHA256 string) (State, error) {
	if err := expect(s, StepExport); err != nil {
		return s, err
	}
	s.Kept, s.RecordSHA256 = name, recordSHA256
	return s, nil
}

// applyExportAttemptFailed records a failed export of the kept response.
func applyExportAttemptFailed(s State, reason string) (State, error) {
	if err := expect(s, StepExport); err != nil {
		return s, err
	}
	if s.Kept == "" {
		return s, fmt.Errorf("export failed before the response was kept")
	}
	s = s.Clone()
	s.ExportFailures = append(s.ExportFailures, reason)
	return s, nil
}

// applyExportAbandoned ends a signed ceremony whose response is kept but
// was not exported.
func applyExportAbandoned(s State) (State, error) {
	if err := expect(s, StepExport); err != nil {
		return s, err
	}
	if s.Kept == "" || len(s.ExportFailures) == 0 {
		return s, fmt.Errorf("no kept response, or no failed export")
	}
	s.Step = StepExportFailed
	return s, nil
}

// applyExported finishes the ceremony.
func applyExported(s State, where, recordSHA256 string) (State, error) {
	if err := expect(s, StepExport); err != nil {
		return s, err
	}
	s.Export, s.RecordSHA256 = where, recordSHA256
	s.Step = StepDone
	return s, nil
}

// applyRefusal stops the ceremony with a reason. It applies from any step
// that is not final.
func applyRefusal(s State, r Refusal) (State, error) {
	if s.Step.Final() {
		return s, fmt.Errorf("ceremony already %s", s.Step)
	}
	s = s.Clone()
	r.Step = s.Step
	s.Refusal = &r
	s.Step = StepRefused
	return s, nil
}
