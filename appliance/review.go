package appliance

import (
	"time"

	"airlock.dev/airlock/appliance/content"
	"airlock.dev/airlock/appliance/provenance"
	"airlock.dev/airlock/tuf"
)

// Review is the review model: computed once by the verify step, the same for
// every holder, and serialisable as JSON (airlock-appliance review --json).
// Strings that came from the bundle (paths, notes, provenance facts, diff
// text) are its own bytes: render them with content.Visible.
type Review struct {
	Kind      string `json:"kind"`
	Role      string `json:"role"`
	Delegator string `json:"delegator"`

	// OldVersion is 0 for a new role.
	OldVersion int64     `json:"old_version"`
	NewVersion int64     `json:"new_version"`
	OldExpires time.Time `json:"old_expires,omitzero"`
	NewExpires time.Time `json:"new_expires"`
	// SHA256 is the hash of the exact canonical bytes that will be signed;
	// Fingerprint is four bytewords of the same bytes (ur.Fingerprint).
	SHA256      string `json:"sha256"`
	Fingerprint string `json:"fingerprint"`
	Bytes       int    `json:"bytes"`
	// Date is the date the operator confirmed; Dev says software keys may sign.
	Date time.Time `json:"date"`
	Dev  bool      `json:"development_mode,omitempty"`

	// Targets lists targets added, removed and changed.
	Targets []tuf.TargetChange `json:"targets,omitempty"`
	// Roles lists, per role whose keys or threshold are defined by the
	// signed metadata (root's top-level roles, a targets role's
	// delegations), old and new side by side, with only changed ones kept.
	Roles []RoleChange `json:"roles,omitempty"`
	// Signers says who may sign and what approvals need.
	Signers *Need `json:"signers"`

	// Artifacts holds per target its verification, provenance and content.
	Artifacts []ArtifactReview `json:"artifacts,omitempty"`
	// ContentAvailable is false when the bundle carried no artifact bytes
	// (over QR only request.json and provenance travel); ContentNote then
	// says plainly that content diffs were not available.
	ContentAvailable bool   `json:"content_available"`
	ContentNote      string `json:"content_note,omitempty"`

	// Note is CI's free text: untrusted, shown as such.
	Note string `json:"note_untrusted,omitempty"`
	// Warnings are things the holders should look at that did not refuse
	// the ceremony (risk signals are in Artifacts and Risks).
	Warnings []string `json:"warnings,omitempty"`
	// Risks are signals about the release as a whole: deceptive target,
	// holder and note text, and content that was not transferred or not
	// compared. Signals about files inside artifacts are in Artifacts.
	Risks []content.Signal `json:"risks,omitempty"`
}

// AllSignals returns every risk signal of the review: the release-wide ones
// first, then each artifact's.
func (r *Review) AllSignals() []content.Signal {
	out := append([]content.Signal(nil), r.Risks...)
	for _, a := range r.Artifacts {
		if a.Content != nil {
			out = append(out, a.Content.Signals...)
		}
	}
	return out
}

// RoleChange is one role's keys, threshold, groups and delegation fields,
// old and new side by side. Old is nil for an added role, New for a removed
// one.
type RoleChange struct {
	Name   string     `json:"name"`
	Change string     `json:"change"` // added, removed, changed
	Old    *RoleFacts `json:"old,omitempty"`
	New    *RoleFacts `json:"new,omitempty"`
}

// RoleFacts are the signing rules of one role at one version.
type RoleFacts struct {
	Threshold   int         `json:"threshold"`
	Keys        []KeyFact   `json:"keys"`
	Groups      []tuf.Group `json:"groups,omitempty"`
	Paths       []string    `json:"paths,omitempty"`
	Terminating bool        `json:"terminating,omitempty"`
}

// KeyFact is one key as the review shows it.
type KeyFact struct {
	KeyID       string `json:"keyid"`
	Holder      string `json:"holder,omitempty"`
	Kind        string `json:"kind,omitempty"` // yubikey, tpm, file
	Attested    bool   `json:"attested"`
	Fingerprint string `json:"fingerprint,omitempty"`
}

// ArtifactReview is what the review shows about one target.
type ArtifactReview struct {
	Target string `json:"target"`
	// File is the bundle file backing it ("" when the bytes are absent).
	File   string `json:"file,omitempty"`
	Length int64  `json:"length"`
	SHA256 string `json:"sha256,omitempty"`
	// BytesVerified says the bundle's bytes matched the target's length and
	// every hash of the new metadata.
	BytesVerified bool `json:"bytes_verified"`
	// Provenance holds the verified facts, or why not (nil when the role's
	// policy has no provenance rule and the bundle carries none).
	Provenance *provenance.Facts `json:"provenance,omitempty"`
	// Previous is the bundle file of the previous release, if any.
	Previous string `json:"previous,omitempty"`
	// Content is the diff against the previous release and its risk
	// signals; nil when the bytes are absent (ContentNote says why).
	Content     *content.Diff `json:"content,omitempty"`
	ContentNote string        `json:"content_note,omitempty"`
}
