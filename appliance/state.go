package appliance

import (
	"fmt"
	"slices"
	"time"
)

// Step is where a ceremony stands.
type Step string

// Steps, in order. Refused and Done are final.
const (
	StepStart   Step = "start"   // the operator confirms today's date
	StepImport  Step = "import"  // the bundle is read within caps
	StepVerify  Step = "verify"  // chain, metadata, ledger, provenance, attestation
	StepReview  Step = "review"  // every holder sees the same review model
	StepApprove Step = "approve" // holders confirm the fingerprint, one by one
	StepSign    Step = "sign"    // ledger recorded, then each approved key signs
	StepExport  Step = "export"  // response and ceremony record leave the appliance
	StepDone    Step = "done"
	StepRefused Step = "refused"
	// StepExportFailed: signed, the response is kept in the state
	// directory, and no export succeeded. It is written out later without
	// signing again (ExportKept).
	StepExportFailed Step = "export-failed"
)

// Final reports whether no transition leaves s.
func (s Step) Final() bool { return s == StepDone || s == StepRefused || s == StepExportFailed }

// State is a plain-value snapshot of a ceremony. Transitions (the apply*
// functions in transition.go) take a State and an already-verified event and
// return the next State; they touch neither hardware nor screen.
type State struct {
	// ID is the ceremony id, also in the ledger, the record and the response.
	ID   string `json:"id"`
	Step Step   `json:"step"`
	// Date is the day the operator confirmed at the start (UTC midnight):
	// expiry is checked against it, since the machine has no network time.
	Date time.Time `json:"date"`
	// Dev is set when the appliance runs in development mode, where software
	// keys may sign. It is shown on every screen and in the record.
	Dev bool `json:"dev,omitempty"`

	// Set by import.
	Kind   string `json:"kind,omitempty"` // tuf.KindRelease, KindResign, ...
	Role   string `json:"role,omitempty"`
	Source string `json:"source,omitempty"` // where the bundle came from, e.g. a folder

	// Set by verify.
	Version     int64  `json:"version,omitempty"`
	SHA256      string `json:"sha256,omitempty"`      // of the canonical bytes to sign
	Fingerprint string `json:"fingerprint,omitempty"` // four bytewords of the same bytes

	// Review is the review model, set by verify and never changed after.
	Review *Review `json:"review,omitempty"`

	// Need is what approvals must reach, set by verify.
	Need *Need `json:"need,omitempty"`
	// Approvals are the holders who confirmed, in order.
	Approvals []Approval `json:"approvals,omitempty"`
	// Signed lists key ids that have signed, in order.
	Signed []string `json:"signed,omitempty"`

	// Refusal says why the ceremony stopped, when Step is StepRefused.
	Refusal *Refusal `json:"refusal,omitempty"`
	// Kept names the state file that keeps the signed response, written
	// before any export is tried.
	Kept string `json:"kept,omitempty"`
	// ExportFailures are the export attempts that failed, oldest first.
	ExportFailures []string `json:"export_failures,omitempty"`
	// Export names where the response and record were written.
	Export string `json:"export,omitempty"`
	// RecordSHA256 is the hash of the exported ceremony record.
	RecordSHA256 string `json:"record_sha256,omitempty"`
}

// Need is what the approvals of a ceremony must reach.
type Need struct {
	// Threshold is the role's signature threshold (for a root rotation the
	// new root's; OldThreshold is then the old root's).
	Threshold    int `json:"threshold"`
	OldThreshold int `json:"old_threshold,omitempty"`
	// MinHolders is the number of distinct people who must approve (at least 2).
	MinHolders int `json:"min_holders"`
	// Groups are the role's approval groups, all of which must be met.
	Groups []NeedGroup `json:"groups,omitempty"`
	// Keys are the keys that may sign, with their holders.
	Keys []NeedKey `json:"keys"`
}

// NeedGroup is one approval group of the role.
type NeedGroup struct {
	Name   string   `json:"name"`
	KeyIDs []string `json:"keyids"`
	Min    int      `json:"min"`
}

// NeedKey is one key that may sign.
type NeedKey struct {
	KeyID  string `json:"keyid"`
	Holder string `json:"holder"`
	// Old and New say, for a root rotation, whether the key is in the old
	// root, the new one, or both. For other ceremonies New is set.
	Old bool `json:"old,omitempty"`
	New bool `json:"new,omitempty"`
}

// Approval is one holder's confirmation that they checked the fingerprint
// of the bytes and approve signing them with the listed keys.
type Approval struct {
	Holder string    `json:"holder"`
	KeyIDs []string  `json:"keyids"`
	Keys   []string  `json:"keys"` // key URIs
	SHA256 string    `json:"sha256"`
	At     time.Time `json:"at"`
}

// Refusal is why a ceremony stopped: the rule that refused, a reason a
// person can act on, and the step it happened at.
type Refusal struct {
	Step   Step   `json:"step"`
	Rule   Rule   `json:"rule"`
	Reason string `json:"reason"`
}

// Rule names a check the appliance enforces; tests and UIs branch on it.
type Rule string

// Rules.
const (
	RuleDate        Rule = "date"         // the operator did not confirm a date
	RuleBundle      Rule = "bundle"       // the bundle could not be read
	RuleChain       Rule = "chain"        // chain of trust from the pinned root
	RuleMetadata    Rule = "metadata"     // type, spec, kind/role mismatch
	RuleVersion     Rule = "version"      // not above the current version
	RuleExpiry      Rule = "expiry"       // expired, or beyond the policy's limit
	RuleLedger      Rule = "ledger"       // rollback or equivocation against the ledger
	RuleTargets     Rule = "targets"      // a target's bytes do not match its length or hashes
	RuleProvenance  Rule = "provenance"   // provenance missing, unverified or of another publisher
	RulePolicy      Rule = "policy"       // role not in policy, kind not allowed
	RuleAttestation Rule = "attestation"  // hardware attestation required but missing or invalid
	RuleDevKey      Rule = "dev-key"      // software key outside development mode
	RuleKey         Rule = "key"          // key not allowed to sign this role, or unusable
	RuleHolders     Rule = "holders"      // fewer than two distinct holders
	RuleGroups      Rule = "groups"       // an approval group is not met
	RuleThreshold   Rule = "threshold"    // not enough keys
	RuleConfirm     Rule = "confirmation" // a holder did not confirm the fingerprint
	RuleSign        Rule = "sign"         // a signing device failed
	RuleExport      Rule = "export"       // the response could not be written
	RuleCancelled   Rule = "cancelled"
)

// RefusedError is returned by a Ceremony that refused; it carries the Refusal.
type RefusedError struct{ Refusal Refusal }

func (e *RefusedError) Error() string {
	return fmt.Sprintf("refused at %s (%s): %s", e.Refusal.Step, e.Refusal.Rule, e.Refusal.Reason)
}

// Clone returns a copy of s whose slices the caller may change. Review and
// Need are shared: they are never changed after verify.
func (s State) Clone() State {
	s.Approvals = slices.Clone(s.Approvals)
	s.Signed = slices.Clone(s.Signed)
	s.ExportFailures = slices.Clone(s.ExportFailures)
	if s.Refusal != nil {
		r := *s.Refusal
		s.Refusal = &r
	}
	return s
}
