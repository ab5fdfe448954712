package appliance

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"sort"

	"github.com/theupdateframework/go-tuf/v2/metadata"

	"airlock.dev/airlock/appliance/audit"
	"airlock.dev/airlock/appliance/ledger"
	"airlock.dev/airlock/tuf"
)

// sign records the payload in the ledger, then has every approved key sign
// the canonical bytes, then verifies the signatures against every threshold
// and group.
func (c *Ceremony) sign(ctx context.Context, signers []signerFor) (*tuf.Response, error) {
	v := c.v
	p := v.payload
	// Ledger first: no signature exists before the payload is recorded.
	if err := c.cfg.State.Ledger.RecordSigning(c.signing(signers)); err != nil {
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
		if err := c.auditOrRefuse(ctx, "sign", sf.holder, audit.OutcomeOK, "signed with key "+sig.KeyID); err != nil {
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
	where, err := c.cfg.Sink.Export(ctx, Export{CeremonyID: c.state.ID, Role: resp.Role, Version: resp.Version, Response: rb, Record: record})
	if err != nil {
		_ = c.audit("exported", "", audit.OutcomeFailed, err.Error())
		return c.refuse(ctx, RuleExport, fmt.Sprintf("writing the response: %v; the ledger keeps version %d for these bytes, so the same bytes can be signed again", err, resp.Version))
	}
	_ = c.audit("exported", "", audit.OutcomeInfo, "written to "+where)
	c.cfg.UI.Show(ctx, Message{Level: Info, Text: "signatures and ceremony record written to " + where})
	return c.step(applyExported(c.state, where, resp.RecordSHA256))
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
