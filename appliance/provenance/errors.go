package provenance

import (
	"errors"
	"strconv"
	"unicode"
	"unicode/utf8"
)

// Kinds of refusal. Every error returned by Verify, VerifyPublish, Review and
// Policy.Evaluate is a *Refusal that matches exactly one of these with
// errors.Is, so callers can branch without reading the text.
var (
	// ErrMissing: no provenance where the policy requires it.
	ErrMissing = errors.New("provenance missing")
	// ErrMalformed: the bundle or its statement cannot be parsed or breaks a cap.
	ErrMalformed = errors.New("provenance malformed")
	// ErrUnverified: a cryptographic check failed (log entry, timestamp,
	// certificate chain, signature) or the statement contradicts the certificate.
	ErrUnverified = errors.New("provenance not verified")
	// ErrMismatch: the provenance is valid but is not about this artifact.
	ErrMismatch = errors.New("provenance is for another artifact")
	// ErrPolicy: the provenance names a publisher the package's policy does not allow.
	ErrPolicy = errors.New("provenance violates the trusted-publisher policy")
	// ErrConfig: the verifier or policy configuration itself is unusable.
	ErrConfig = errors.New("provenance configuration invalid")
)

// Refusal is the one-line, actionable reason a release is refused.
type Refusal struct {
	// What names the evidence: "provenance" or "publish attestation".
	What string
	// Artifact is the artifact's file name as the caller gave it; empty for
	// configuration errors.
	Artifact string
	// Reason is a single line saying what was wrong and, where it helps, what to do.
	Reason string
	// Kind is one of the Err* sentinels of this package.
	Kind error
	// Cause is the underlying error, if any (for example sigstore-go's).
	Cause error
}

func (r *Refusal) Error() string {
	if r.Artifact == "" {
		return r.What + ": " + r.Reason
	}
	return r.What + " for " + oneLine(r.Artifact) + ": " + r.Reason
}

// Unwrap exposes the kind sentinel and the underlying cause to errors.Is/As.
func (r *Refusal) Unwrap() []error {
	errs := []error{r.Kind}
	if r.Cause != nil {
		errs = append(errs, r.Cause)
	}
	return errs
}

// maxShown caps any attacker-chosen text placed into an error message.
const maxShown = 200

// oneLine renders untrusted text for an error message: unchanged when it is
// short and made only of printable characters without spaces, otherwise
// Go-quoted with non-ASCII escaped, so that no byte of it can break the line,
// move the cursor, reorder text or hide characters. Long text is truncated.
func oneLine(s string) string {
	truncated := false
	if len(s) > maxShown {
		s = s[:maxShown]
		for !utf8.ValidString(s) && len(s) > 0 {
			s = s[:len(s)-1]
		}
		truncated = true
	}
	plain := s != "" && utf8.ValidString(s)
	for _, r := range s {
		if r > unicode.MaxASCII || !unicode.IsPrint(r) || r == ' ' || r == '"' {
			plain = false
			break
		}
	}
	if !plain {
		s = strconv.QuoteToASCII(s)
	}
	if truncated {
		s += "…"
	}
	return s
}
