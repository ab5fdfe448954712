package appliance

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"sort"

	"github.com/theupdateframework/go-tuf/v2/metadata"

	"airlock.dev/airlock/appliance/audit"
	"airlock.dev/airlock/appliance/ledger"
	"airlock.dev/airlock/hsm"
	"airlock.dev/airlock/tuf"
)

// What a "sign" audit entry carries: the detail names the key id after
// SignedWithKey and a hash named SignatureHashName is the SHA-256 of the
// signature bytes.
const (
	SignedWithKey     = "signed with key "
	SignatureHashName = "signature"
)

// sign records the payload in the ledger, then has every approved key sign
// the canonical bytes, then verifies the signatures against every threshold
// and group.
func (c *Ceremony) sign(ctx context.Context, signers []signerFor) (*tuf.Response, error) {
	v := c.v
	p := v.payload
	// Ledger first: no signature exists before the payload is recorded.
	// With a monotonic counter, the ledger records the counter's next value
	// and the counter follows.
	rec := c.signing(signers)
	n, err := c.cfg.State.nextCounter()
	if err != nil {
		return nil, c.refuse(ctx, RuleLedger, err.Error())
	}
	rec.Counter = n
	if err := c.cfg.State.Ledger.RecordSigning(rec); err != nil {
		return nil, c.refuse(ctx, RuleLedger, err.Error())
	}
	if err := c.cfg.State.advanceCounter(); err != nil {
		return nil, c.refuse(ctx, RuleLedger, err.Error())
	}
	if err := c.auditOrRefuse(ctx, "ledger", "", audit.OutcomeOK, fmt.Sprintf("recorded %s version %d", v.req.Role, p.Version)); err != nil {
		return nil, err
	}
	var sigs []metadata.Signature
	for _, sf := range signers {
		d := v.deleg
		if v.newDeleg != nil && !contains(v.deleg.KeyIDs, sf.keyID) {
			d = v.newDeleg
		}
		c.cfg.UI.Show(ctx, Message{Level: Info, Text: fmt.Sprintf("%s: signing with %s", sf.holder, sf.signer.URI())})
		sig, err := tuf.SignPayload(d, sf.signer, p.Canonical)
		if err != nil {
			_ = c.audit("sign", sf.holder, audit.OutcomeFailed, fmt.Sprintf("key %s: %v", sf.keyID, err))
			return nil, c.refuseErr(ctx, fmt.Errorf("signing with %s (%s): %w", sf.signer.URI(), sf.holder, err), RuleSign)
		}
		sigs = append(sigs, sig)
		if err := c.step(applySigned(c.state, sig.KeyID)); err != nil {
			return nil, err
		}
		// The entry commits to the signature, so an exported record can be
		// checked against the response that carries it.
		if err := c.auditOrRefuse(ctx, "sign", sf.holder, audit.OutcomeOK, SignedWithKey+sig.KeyID, audit.Hash{Name: SignatureHashName, Sum: sha256.Sum256(sig.Signature)}); err != nil {
			return nil, err
		}
	}
	// Verify what was made before it leaves.
	for _, d := range v.delegations() {
		if _, err := tuf.VerifySignatures(d, p.Canonical, sigs); err != nil {
			return nil, c.refuse(ctx, RuleThreshold, fmt.Sprintf("the signatures made do not verify: %v", err))
		}
	}
	if err := c.step(applySignaturesVerified(c.state)); err != nil {
		return nil, err
	}
	resp := &tuf.Response{Format: tuf.ResponseFormat, Role: v.req.Role, Version: p.Version, SignedSHA256: p.SHA256,
		CeremonyID: c.state.ID, Dev: c.cfg.Dev}
	for _, s := range sigs {
		resp.Signatures = append(resp.Signatures, tuf.Signature{KeyID: s.KeyID, Sig: hex.EncodeToString(s.Signature)})
	}
	for _, a := range c.state.Approvals {
		resp.Holders = append(resp.Holders, a.Holder)
	}
	sort.Strings(resp.Holders)
	if p.Root != nil {
		if err := c.pinRotatedRoot(ctx, sigs); err != nil {
			return nil, err
		}
	}
	return resp, nil
}

// pinRotatedRoot pins the new root once it verifies from the pinned one.
func (c *Ceremony) pinRotatedRoot(ctx context.Context, sigs []metadata.Signature) error {
	p := c.v.payload
	signed := *p.Root
	signed.Signatures = sigs
	old, err := tuf.ParseStrict[metadata.RootType](c.cfg.State.Root)
	if err != nil {
		return c.refuse(ctx, RuleChain, "pinned root: "+err.Error())
	}
	if old.Signed.Version+1 != p.Version {
		c.cfg.UI.Show(ctx, Message{Level: Warning, Text: "the pinned root stays: the request's chain holds newer roots than the pinned one"})
		return nil
	}
	if err := tuf.VerifyRootStep(old, &signed); err != nil {
		return c.refuse(ctx, RuleChain, "new root does not verify from the pinned root: "+err.Error())
	}
	b, err := json.Marshal(&signed)
	if err != nil {
		return c.refuse(ctx, RuleExport, err.Error())
	}
	if err := c.cfg.State.pinRootVerified(b); err != nil {
		return c.refuse(ctx, RuleExport, err.Error())
	}
	return c.auditOrRefuse(ctx, "pin-root", "", audit.OutcomeOK, fmt.Sprintf("pinned root version %d", p.Version))
}

// export keeps the signed response and its record in the state directory,
// then writes them through the sink. A failed write costs only that
// write: the retry hook is asked for another sink, and without one the
// ceremony ends as StepExportFailed with an *ExportError; the response
// stays kept for ExportKept.
func (c *Ceremony) export(ctx context.Context, resp *tuf.Response) error {
	if err := c.auditOrRefuse(ctx, "export", "", audit.OutcomeOK, fmt.Sprintf("response with %d signatures by %v", len(resp.Signatures), resp.Holders)); err != nil {
		return err
	}
	record, sum, err := c.cfg.State.Audit.Export(c.state.ID)
	if err != nil {
		return c.refuse(ctx, RuleExport, err.Error())
	}
	resp.RecordSHA256 = hex.EncodeToString(sum[:])
	rb, err := resp.Marshal()
	if err != nil {
		return c.refuse(ctx, RuleExport, err.Error())
	}
	if _, err := tuf.ParseResponse(rb); err != nil {
		return c.refuse(ctx, RuleExport, "response: "+err.Error())
	}
	e := Export{CeremonyID: c.state.ID, Role: resp.Role, Version: resp.Version, Response: rb, Record: record}
	kept, err := c.cfg.State.keep(e)
	if err != nil {
		// Nothing is kept: a failed export now would lose the signatures.
		_ = c.audit("kept", "", audit.OutcomeFailed, err.Error())
		return c.refuse(ctx, RuleExport, fmt.Sprintf("signed, but the response could not be kept in the state directory (%v): nothing was exported; the ledger keeps version %d for these bytes, so the same bytes can be signed again once the state directory is writable", err, resp.Version))
	}
	if err := c.step(applyKept(c.state, kept, resp.RecordSHA256)); err != nil {
		return err
	}
	if err := c.audit("kept", "", audit.OutcomeOK, "signed response kept in the state directory as "+kept); err != nil {
		c.cfg.UI.Show(ctx, Message{Level: Warning, Text: "the audit log could not record that the response is kept: " + err.Error()})
	}
	sink := c.cfg.Sink
	for attempt := 1; ; attempt++ {
		where, err := sink.Export(ctx, e)
		if err == nil {
			_ = c.audit("exported", "", audit.OutcomeInfo, "written to "+where)
			c.cfg.UI.Show(ctx, Message{Level: Info, Text: "signatures and ceremony record written to " + where})
			return c.step(applyExported(c.state, where, resp.RecordSHA256))
		}
		reason := "signed; the response is kept; export failed: " + err.Error()
		_ = c.audit("exported", "", audit.OutcomeFailed, fmt.Sprintf("attempt %d: %v", attempt, err))
		if serr := c.step(applyExportAttemptFailed(c.state, reason)); serr != nil {
			return serr
		}
		c.cfg.UI.Show(ctx, Message{Level: Error, Text: reason})
		var next Sink
		var rerr error
		if c.cfg.Retry != nil && attempt < MaxExportAttempts && ctx.Err() == nil {
			next, rerr = c.cfg.Retry.RetryExport(ctx, err)
		}
		if next == nil || rerr != nil {
			detail := "export abandoned; the response stays kept as " + kept
			if rerr != nil && !errors.Is(rerr, context.Canceled) && !errors.Is(rerr, hsm.ErrCancelled) {
				detail += ": " + rerr.Error()
			}
			_ = c.audit("export-abandoned", "", audit.OutcomeFailed, detail)
			if serr := c.step(applyExportAbandoned(c.state)); serr != nil {
				return serr
			}
			return &ExportError{CeremonyID: c.state.ID, StateDir: c.cfg.State.Path(), Err: err}
		}
		sink = next
	}
}

// signing is the ledger's view of this ceremony signing with signers.
func (c *Ceremony) signing(signers []signerFor) ledger.Signing {
	v := c.v
	p := v.payload
	s := ledger.Signing{Role: v.req.Role, Type: p.Type, Version: p.Version, Payload: sha(p.Canonical),
		Date: c.state.Date, Delegators: v.delegators, Ceremony: c.state.ID, At: c.cfg.Clock.Now()}
	for _, sf := range signers {
		s.Keys = append(s.Keys, sf.fp)
	}
	n, last := c.cfg.State.Audit.Head()
	s.AuditHead = ledger.AuditHead{Entries: n, Last: last}
	return s
}

func contains(ids []string, id string) bool {
	for _, x := range ids {
		if x == id {
			return true
		}
	}
	return false
}
