// Package appliance is the core of Airlock's offline signing appliance: the
// ceremony as a state machine (start, import, verify, review, approvals,
// sign, export, done or refused), the appliance's persistent state (pinned
// root, policy, ledger, audit log) and the review model every key holder
// sees.
//
// Invariants:
//   - Everything is verified before anyone is asked to sign: the chain of
//     trust from the pinned root, version, expiry against the date the
//     operator confirmed, the ledger, target bytes and provenance.
//   - The review model is computed once; what is signed is exactly the
//     canonical bytes whose SHA-256 and fingerprint every holder confirmed.
//   - At least two distinct holders approve every signature set (one person
//     with two keys counts once) and every approval group is met, before the
//     first PIN is asked for.
//   - The ledger records the payload before any signature is made; the
//     audit log records every step; the response carries the record's hash.
//   - Software keys sign only in development mode, which the record, the
//     review and the response show.
//
// The verify step has two halves that can be read and tested alone:
// verifyTrust (trust.go) establishes from request.json what the bytes are,
// who may sign them and that policy, chain, ledger and dates allow it;
// buildReview (verify.go) builds what the holders see from a verified
// request and the bundle's files.
//
// The package imports no terminal, device or transfer code: it declares UI,
// Listener, KeySource, BundleSource and Sink, and cmd/airlock-appliance wires
// concrete ones. A Ceremony is used by one goroutine; listeners are called
// on it.
package appliance

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/theupdateframework/go-tuf/v2/metadata"

	"airlock.dev/airlock/appliance/audit"
	"airlock.dev/airlock/appliance/content"
	"airlock.dev/airlock/hsm"
	"airlock.dev/airlock/hsm/attest"
	"airlock.dev/airlock/tuf"
)

// KeySource opens the keys offered for a ceremony. p reaches each key's
// holder for PINs and touches.
type KeySource interface {
	Keys(ctx context.Context, p hsm.Prompter) ([]hsm.Signer, error)
}

// KeyURIs is a KeySource that opens keys by URI through hsm.Open.
type KeyURIs []string

// Keys opens every URI.
func (u KeyURIs) Keys(ctx context.Context, p hsm.Prompter) ([]hsm.Signer, error) {
	var out []hsm.Signer
	for _, s := range u {
		uri, err := hsm.ParseURI(s)
		if err != nil {
			return nil, err
		}
		k, err := hsm.Open(ctx, uri, p)
		if err != nil {
			return nil, fmt.Errorf("open %s: %w", uri, err)
		}
		out = append(out, k)
	}
	return out, nil
}

// Export is what leaves the appliance at the end of a ceremony.
type Export struct {
	CeremonyID string
	Role       string
	Version    int64
	Response   []byte // response.json
	Record     []byte // record.json, the exported audit record
}

// Sink writes the response and record out (a folder, a USB stick, QR).
type Sink interface {
	// Export writes e and returns a description of where it went.
	Export(ctx context.Context, e Export) (string, error)
}

// Config wires a ceremony.
type Config struct {
	State    *StateDir
	UI       UI
	Listener Listener // optional
	Clock    Clock    // default SystemClock
	// Dev allows software keys and marks everything as development.
	Dev bool
	// Date, when set, is the date given on the command line: the operator
	// is not asked. Otherwise the UI is asked to confirm the clock's date.
	Date   time.Time
	Bundle BundleSource
	Keys   KeySource // not needed for Review
	Sink   Sink      // not needed for Review
	// Retry, when set, is asked where to write the kept response after an
	// export failed; without it a failed export ends the ceremony with an
	// *ExportError (the response stays kept).
	Retry ExportRetry
	// AttestOptions are the trust anchors for hardware attestation.
	AttestOptions attest.Options
	// ID overrides the generated ceremony id (tests).
	ID string
}

// DateGap is how far after the appliance's last signing a confirmed date
// may be before the operator must confirm it a second time: a mistyped
// year or month is caught before expiry is judged against it.
const DateGap = 30 * 24 * time.Hour

// Ceremony is one signing ceremony.
type Ceremony struct {
	cfg   Config
	state State
	v     *verified
}

// New prepares a ceremony.
func New(cfg Config) (*Ceremony, error) {
	if cfg.State == nil || cfg.UI == nil || cfg.Bundle == nil {
		return nil, errors.New("ceremony: state, ui and bundle source are required")
	}
	if cfg.Clock == nil {
		cfg.Clock = SystemClock
	}
	id := cfg.ID
	if id == "" {
		var b [8]byte
		if _, err := rand.Read(b[:]); err != nil {
			return nil, err
		}
		id = cfg.Clock.Now().UTC().Format("20060102T150405Z") + "-" + hex.EncodeToString(b[:])
	}
	return &Ceremony{cfg: cfg, state: State{ID: id, Step: StepStart, Dev: cfg.Dev}}, nil
}

// State returns a copy of the current state.
func (c *Ceremony) State() State { return c.state.Clone() }

func (c *Ceremony) set(s State) {
	c.state = s
	if c.cfg.Listener != nil {
		c.cfg.Listener.StateChanged(s.Clone())
	}
}

// step applies a transition; a transition error is a bug, reported as such.
func (c *Ceremony) step(s State, err error) error {
	if err != nil {
		return fmt.Errorf("ceremony %s: %w", c.state.ID, err)
	}
	c.set(s)
	return nil
}

func (c *Ceremony) audit(step, actor string, out audit.Outcome, detail string, extra ...audit.Hash) error {
	e := audit.Entry{Time: c.cfg.Clock.Now(), Ceremony: c.state.ID, Step: step, Actor: actor, Outcome: out, Detail: clipText(detail)}
	if c.state.SHA256 != "" {
		if b, err := hex.DecodeString(c.state.SHA256); err == nil && len(b) == 32 {
			e.Hashes = []audit.Hash{{Name: "payload", Sum: [32]byte(b)}}
		}
	}
	e.Hashes = append(e.Hashes, extra...)
	// Each entry commits to the ledger file current when it is written.
	e.Hashes = append(e.Hashes, audit.Hash{Name: LedgerHashName, Sum: c.cfg.State.Ledger.Sum()})
	_, _, err := c.cfg.State.Audit.Append(e)
	return err
}

func clipText(s string) string {
	s = content.Visible(s)
	if len(s) > audit.MaxDetailLen-16 {
		s = s[:audit.MaxDetailLen-16] + "…"
	}
	return s
}

// refuse stops the ceremony, records why and returns a *RefusedError.
func (c *Ceremony) refuse(ctx context.Context, rule Rule, reason string) error {
	s, err := applyRefusal(c.state, Refusal{Rule: rule, Reason: reason})
	if err != nil {
		return err
	}
	c.set(s)
	aerr := c.audit(string(s.Refusal.Step), "", audit.OutcomeRefused, string(rule)+": "+reason)
	c.cfg.UI.Show(ctx, Message{Level: Error, Text: "refused: " + reason})
	re := &RefusedError{Refusal: *s.Refusal}
	if aerr != nil {
		return errors.Join(re, fmt.Errorf("the refusal could not be written to the audit log: %w", aerr))
	}
	return re
}

func (c *Ceremony) refuseErr(ctx context.Context, err error, fallback Rule) error {
	var r *refusal
	if errors.As(err, &r) {
		return c.refuse(ctx, r.rule, r.reason)
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, hsm.ErrCancelled) {
		return c.refuse(ctx, RuleCancelled, "cancelled: "+err.Error())
	}
	return c.refuse(ctx, fallback, err.Error())
}

// Review runs start, import and verify: the review model, no signing.
func (c *Ceremony) Review(ctx context.Context) (State, error) {
	if err := c.start(ctx); err != nil {
		return c.State(), err
	}
	if err := c.verify(ctx); err != nil {
		return c.State(), err
	}
	return c.State(), nil
}

// Run runs the whole ceremony. On refusal it returns the final state and a
// *RefusedError.
func (c *Ceremony) Run(ctx context.Context) (State, error) {
	if c.cfg.Keys == nil || c.cfg.Sink == nil {
		return c.State(), errors.New("ceremony: a key source and a sink are required to sign")
	}
	if _, err := c.Review(ctx); err != nil {
		return c.State(), err
	}
	if err := c.step(applyReviewed(c.state)); err != nil {
		return c.State(), err
	}
	signers, err := c.approve(ctx)
	if err != nil {
		return c.State(), err
	}
	resp, err := c.sign(ctx, signers)
	if err != nil {
		return c.State(), err
	}
	if err := c.export(ctx, resp); err != nil {
		return c.State(), err
	}
	return c.State(), nil
}

// MaxDateAttempts caps how often the operator is asked for the date.
const MaxDateAttempts = 10

func (c *Ceremony) start(ctx context.Context) error {
	date := c.cfg.Date
	last := c.cfg.State.Ledger.LastDate()
	backwards := func(d time.Time) string {
		if last.IsZero() || !d.Before(last) {
			return ""
		}
		return fmt.Sprintf("the date %s is earlier than %s, the date of this appliance's last signing: time never goes backwards here; check the calendar and type today's date", d.Format(time.DateOnly), last.Format(time.DateOnly))
	}
	if date.IsZero() {
		// A mistyped or impossible date is asked again with the reason; only
		// the operator's refusal (or the attempts cap) ends the ceremony.
		def := c.cfg.Clock.Now().UTC().Format("2006-01-02")
		text := "The appliance has no network time. Confirm today's date (YYYY-MM-DD) from a calendar you trust: expiry is checked against it."
		problem := ""
		for attempt := 1; date.IsZero(); attempt++ {
			q := Question{Title: "today's date", Text: text, Default: def}
			if problem != "" {
				q.Text = problem + " " + text
			}
			ans, err := c.cfg.UI.Ask(ctx, q)
			if err != nil {
				return c.refuseErr(ctx, err, RuleDate)
			}
			d, perr := parseConfirmedDate(ans)
			switch {
			case perr != nil:
				problem = fmt.Sprintf("%v, e.g. %s.", perr, def)
			case backwards(d) != "":
				problem = backwards(d) + "."
			default:
				date = d
				continue
			}
			if attempt >= MaxDateAttempts {
				return c.refuse(ctx, RuleDate, fmt.Sprintf("no valid date after %d attempts: %s", attempt, problem))
			}
			c.cfg.UI.Show(ctx, Message{Level: Warning, Text: problem})
		}
	}
	if why := backwards(date); why != "" {
		return c.refuse(ctx, RuleDate, why)
	}
	twice := ""
	if last := c.cfg.State.Ledger.LastDate(); !last.IsZero() && date.Sub(last) > DateGap {
		days := int(date.Sub(last).Hours() / 24)
		want := date.Format(time.DateOnly)
		ans, err := c.cfg.UI.Ask(ctx, Question{
			Title: "confirm the date again",
			Text: fmt.Sprintf("The date you confirmed, %s, is %d days after %s, the date of this appliance's last signing. Expiry and the ledger depend on it: if it is right, type it again (YYYY-MM-DD); anything else stops the ceremony.",
				want, days, last.Format(time.DateOnly)),
		})
		if err != nil {
			return c.refuseErr(ctx, err, RuleDate)
		}
		if strings.TrimSpace(ans) != want {
			return c.refuse(ctx, RuleDate, fmt.Sprintf("the date %s is %d days after this appliance's last signing (%s) and was not confirmed a second time (got %q): check the calendar and start again", want, days, last.Format(time.DateOnly), content.Visible(ans)))
		}
		twice = fmt.Sprintf(", confirmed twice: %d days after the last signing", days)
	}
	if err := c.step(applyStarted(c.state, date)); err != nil {
		return err
	}
	mode := twice
	if c.cfg.Dev {
		mode += "; DEVELOPMENT MODE: software keys may sign"
		c.cfg.UI.Show(ctx, Message{Level: Warning, Text: "development mode: software keys may sign; the record and the response say so"})
	}
	return c.auditOrRefuse(ctx, "start", "", audit.OutcomeOK, "date confirmed "+c.state.Date.Format("2006-01-02")+mode)
}

func (c *Ceremony) auditOrRefuse(ctx context.Context, step, actor string, out audit.Outcome, detail string, extra ...audit.Hash) error {
	if err := c.audit(step, actor, out, detail, extra...); err != nil {
		s, _ := applyRefusal(c.state, Refusal{Rule: RuleExport, Reason: "audit log: " + err.Error()})
		c.set(s)
		return &RefusedError{Refusal: *s.Refusal}
	}
	return nil
}

func (c *Ceremony) verify(ctx context.Context) error {
	b, err := c.cfg.Bundle.Load(ctx)
	if err != nil {
		return c.refuseErr(ctx, err, RuleBundle)
	}
	// Import records only what the bundle claims; verify checks it.
	req, perr := tuf.ParseRequest(b.Request)
	kind, role := "", ""
	if perr == nil {
		kind, role = req.Kind, req.Role
	}
	if err := c.step(applyImported(c.state, kind, role, b.Source)); err != nil {
		return err
	}
	if err := c.auditOrRefuse(ctx, "import", "", audit.OutcomeOK, fmt.Sprintf("bundle from %s: %s of role %s, request sha256 %s", b.Source, kind, role, tuf.SHA256Hex(b.Request))); err != nil {
		return err
	}
	v, err := verifyBundle(c.cfg.State, b, c.state.Date, c.cfg.Dev)
	if err != nil {
		return c.refuseErr(ctx, err, RuleBundle)
	}
	c.v = v
	if err := c.step(applyVerifiedReview(c.state, v.review)); err != nil {
		return err
	}
	return c.auditOrRefuse(ctx, "verify", "", audit.OutcomeOK, fmt.Sprintf("%s %s version %d -> %d verified; fingerprint %s", v.review.Kind, v.review.Role, v.review.OldVersion, v.review.NewVersion, v.review.Fingerprint))
}

// holderKeys is one holder's keys that will sign.
type holderKeys struct {
	holder  string
	signers []hsm.Signer
	keyIDs  []string
	fps     []string
	uris    []string
}

// approve matches the offered keys to the role, checks each key's kind and
// attestation, asks each holder to confirm the fingerprint, and checks
// holders, groups and thresholds: all before any PIN is asked for.
func (c *Ceremony) approve(ctx context.Context) ([]signerFor, error) {
	v := c.v
	keys, err := c.cfg.Keys.Keys(ctx, Prompter(c.cfg.UI, "", c.cfg.Clock))
	if err != nil {
		return nil, c.refuseErr(ctx, err, RuleKey)
	}
	roleKeys := map[string]string{} // fingerprint -> key id
	metaKeys := map[string]*metadata.Key{}
	for _, d := range v.delegations() {
		for _, id := range d.KeyIDs {
			if fp, err := tuf.Fingerprint(d.Keys[id]); err == nil {
				if _, dup := roleKeys[fp]; !dup {
					roleKeys[fp] = id
					metaKeys[id] = d.Keys[id]
				}
			}
		}
	}
	byHolder := map[string]*holderKeys{}
	var order []string
	seenFP := map[string]bool{}
	var out []signerFor
	for _, s := range keys {
		pk, err := tuf.KeyFromSigner(s)
		if err != nil {
			return nil, c.refuse(ctx, RuleKey, fmt.Sprintf("key %s: %v", s.URI(), err))
		}
		fp, err := tuf.Fingerprint(pk)
		if err != nil {
			return nil, c.refuse(ctx, RuleKey, fmt.Sprintf("key %s: %v", s.URI(), err))
		}
		id, ok := roleKeys[fp]
		if !ok {
			return nil, c.refuse(ctx, RuleKey, fmt.Sprintf("key %s is not a key of role %s: use a key listed in the review", s.URI(), v.req.Role))
		}
		if seenFP[fp] {
			return nil, c.refuse(ctx, RuleKey, fmt.Sprintf("key %s was offered twice", s.URI()))
		}
		seenFP[fp] = true
		mk := metaKeys[id]
		kind := s.Kind()
		if mkind := tuf.KeyKind(mk); mkind == hsm.KindFile {
			kind = hsm.KindFile
		}
		if kind == hsm.KindFile && !c.cfg.Dev {
			return nil, c.refuse(ctx, RuleDevKey, fmt.Sprintf("key %s is a software development key: the appliance signs only with hardware keys unless started in development mode (--dev)", s.URI()))
		}
		if !v.policy.kindAllowed(kind, c.cfg.Dev) {
			return nil, c.refuse(ctx, RuleKey, fmt.Sprintf("key %s is a %s key, which the policy of role %s does not allow", s.URI(), kind, v.req.Role))
		}
		if err := checkAttestation(v.policy.Attestation, mk, s, c.attestOptions()); err != nil {
			return nil, c.refuse(ctx, RuleAttestation, fmt.Sprintf("key %s: %v", s.URI(), err))
		}
		holder := tuf.Holder(mk)
		if holder == "" {
			return nil, c.refuse(ctx, RuleHolders, fmt.Sprintf("key %s has no holder in the signed metadata (x-airlock-holder): it cannot count towards distinct holders; re-enrol it with its holder's name", s.URI()))
		}
		if len(v.policy.Holders) > 0 && !slices.Contains(v.policy.Holders, holder) {
			return nil, c.refuse(ctx, RuleHolders, fmt.Sprintf("%s (key %s) is not a holder of role %s in the appliance policy", content.Visible(holder), s.URI(), v.req.Role))
		}
		hk, ok := byHolder[holder]
		if !ok {
			hk = &holderKeys{holder: holder}
			byHolder[holder] = hk
			order = append(order, holder)
		}
		hk.signers = append(hk.signers, s)
		hk.keyIDs = append(hk.keyIDs, id)
		hk.fps = append(hk.fps, fp)
		hk.uris = append(hk.uris, s.URI().String())
		out = append(out, signerFor{signer: s, keyID: id, holder: holder, fp: fp})
	}
	if err := c.checkNeed(ctx, byHolder); err != nil {
		return nil, err
	}
	// The keys offered must never have signed other bytes of this type and
	// version, whatever role they were for.
	if err := c.cfg.State.Ledger.CheckSigning(c.signing(out)); err != nil {
		return nil, c.refuse(ctx, RuleLedger, err.Error())
	}
	// Each holder confirms the fingerprint of the exact bytes.
	for _, h := range order {
		hk := byHolder[h]
		ok, err := c.cfg.UI.Confirm(ctx, Confirmation{
			Title:       fmt.Sprintf("approve %s version %d", v.req.Role, v.payload.Version),
			Text:        fmt.Sprintf("I, %s, checked the fingerprint %s (sha256 %s) of the bytes shown and approve signing them with %s", content.Visible(h), c.state.Fingerprint, c.state.SHA256, strings.Join(hk.uris, ", ")),
			Yes:         "approve and sign",
			No:          "refuse",
			Holder:      h,
			SHA256:      c.state.SHA256,
			Fingerprint: c.state.Fingerprint,
		})
		if err != nil {
			return nil, c.refuseErr(ctx, err, RuleConfirm)
		}
		if !ok {
			_ = c.audit("approve", h, audit.OutcomeRefused, "did not confirm the fingerprint")
			return nil, c.refuse(ctx, RuleConfirm, fmt.Sprintf("%s did not confirm the fingerprint %s: nothing was signed", content.Visible(h), c.state.Fingerprint))
		}
		if err := c.step(applyApproval(c.state, Approval{Holder: h, KeyIDs: hk.keyIDs, Keys: hk.uris, SHA256: c.state.SHA256, At: c.cfg.Clock.Now()})); err != nil {
			return nil, err
		}
		if err := c.auditOrRefuse(ctx, "approve", h, audit.OutcomeOK, "confirmed fingerprint "+c.state.Fingerprint+" with keys "+strings.Join(hk.keyIDs, ",")); err != nil {
			return nil, err
		}
	}
	if err := c.step(applyApprovalsComplete(c.state)); err != nil {
		return nil, err
	}
	return out, nil
}

// checkNeed checks distinct holders, approval groups and thresholds against
// the keys offered, before anyone is asked anything.
func (c *Ceremony) checkNeed(ctx context.Context, byHolder map[string]*holderKeys) error {
	v := c.v
	min := v.policy.minHolders()
	if len(byHolder) < min {
		var hs []string
		for h := range byHolder {
			hs = append(hs, content.Visible(h))
		}
		sort.Strings(hs)
		return c.refuse(ctx, RuleHolders, fmt.Sprintf("%d distinct holder(s) (%s) offered keys, %d must approve: one person with several keys counts once; bring another holder", len(byHolder), strings.Join(hs, ", "), min))
	}
	var signers []tuf.Signer
	for _, hk := range byHolder {
		for i := range hk.keyIDs {
			signers = append(signers, tuf.Signer{KeyID: hk.keyIDs[i], Fingerprint: hk.fps[i], Holder: hk.holder})
		}
	}
	for _, d := range v.delegations() {
		inRole := 0
		for _, s := range signers {
			for _, id := range d.KeyIDs {
				if fp, err := tuf.Fingerprint(d.Keys[id]); err == nil && fp == s.Fingerprint {
					inRole++
					break
				}
			}
		}
		which := ""
		if v.newDeleg != nil {
			which = map[bool]string{true: "old root", false: "new root"}[d == v.deleg]
		}
		if inRole < d.Threshold {
			return c.refuse(ctx, RuleThreshold, fmt.Sprintf("%d key(s) of %s %s offered, its threshold is %d: bring more key holders", inRole, d.Role, which, d.Threshold))
		}
		if err := d.CheckGroups(&tuf.Verified{Role: d.Role, Threshold: d.Threshold, Signers: signers}); err != nil {
			return c.refuse(ctx, RuleGroups, fmt.Sprintf("%v: bring a holder of that group", err))
		}
	}
	for _, g := range v.policy.Groups {
		n := 0
		for _, h := range g.Holders {
			if byHolder[h] != nil {
				n++
			}
		}
		if n < g.Min {
			return c.refuse(ctx, RuleGroups, fmt.Sprintf("approval group %s of the policy needs %d of %s, %d present", g.Name, g.Min, strings.Join(g.Holders, ", "), n))
		}
	}
	return nil
}

func checkAttestation(p attest.Policy, mk *metadata.Key, s hsm.Signer, opts attest.Options) error {
	if !p.RequireHardware && !p.RequirePINAlways && !p.RequireTouchAlways {
		return nil
	}
	att, err := tuf.Attestation(mk)
	if err != nil {
		return fmt.Errorf("attestation in the metadata: %w", err)
	}
	if att == nil {
		return errors.New("the role requires a hardware attestation and the key's metadata carries none: enrol the key with its attestation")
	}
	f, err := attest.Verify(att, s.Public(), opts)
	if err != nil {
		return fmt.Errorf("attestation does not verify: %w", err)
	}
	return p.Check(f)
}

// attestOptions are the configured trust anchors plus the TPM attestation
// keys pinned in the state directory.
func (c *Ceremony) attestOptions() attest.Options {
	o := c.cfg.AttestOptions
	o.TPMAttestationKeys = append(slices.Clip(o.TPMAttestationKeys), c.cfg.State.TPMAttestationKeys...)
	o.PIVRoots = append(slices.Clip(o.PIVRoots), c.cfg.State.PIVAttestationRoots...)
	return o
}

type signerFor struct {
	signer hsm.Signer
	keyID  string
	holder string
	fp     string // public-key fingerprint
}
