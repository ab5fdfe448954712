package provenance

import (
	"fmt"
	"path"
	"strings"
)

// Publisher is one trusted publisher of a package: the CI identity allowed
// to produce its releases. Fields are compared with the facts Verify reads
// from the Fulcio certificate.
type Publisher struct {
	// Issuer is the OIDC issuer, e.g. GitHubActionsIssuer. Required.
	Issuer string
	// Repository is the source repository URL, e.g. https://github.com/sigstore/sigstore-js. Required.
	Repository string
	// WorkflowPath is the top-level workflow file in Repository, e.g. .github/workflows/release.yml. Required.
	WorkflowPath string
	// Refs are allowed source refs as path.Match patterns, e.g. refs/tags/v* or refs/heads/main. At least one.
	Refs []string
	// Builder, when set, is the exact SLSA builder id required.
	Builder string
}

// Policy is the trusted-publisher policy of one package.
type Policy struct {
	// Package names the package in messages, e.g. "sigstore".
	Package string
	// RequireProvenance refuses a release without a provenance bundle.
	RequireProvenance bool
	// Publishers lists who may publish; a release must match one of them.
	// With none, verified provenance is shown but no publisher is enforced.
	Publishers []Publisher
}

// Validate reports a policy that could never be met or is ambiguous.
func (p Policy) Validate() error {
	bad := func(format string, args ...any) error {
		return &Refusal{What: "policy for package " + oneLine(p.Package), Kind: ErrConfig, Reason: fmt.Sprintf(format, args...)}
	}
	if p.RequireProvenance && len(p.Publishers) == 0 {
		return bad("provenance is required but no trusted publisher is named: add the repository, workflow and refs that publish it")
	}
	for i, pub := range p.Publishers {
		switch {
		case pub.Issuer == "":
			return bad("publisher[%d] has no issuer (for github actions: %s)", i, GitHubActionsIssuer)
		case pub.Repository == "":
			return bad("publisher[%d] has no repository", i)
		case pub.WorkflowPath == "":
			return bad("publisher[%d] has no workflow path", i)
		case len(pub.Refs) == 0:
			return bad("publisher[%d] allows no ref: add a pattern such as refs/tags/v*", i)
		}
		for _, r := range pub.Refs {
			if _, err := path.Match(r, ""); err != nil || r == "" {
				return bad("publisher[%d] ref pattern %s is not a valid path.Match pattern", i, oneLine(r))
			}
		}
	}
	return nil
}

// Evaluate applies the policy to verification facts and appends a check for
// each rule to f.Checks. f may be nil or not Present when the release has no
// provenance. It refuses provenance that failed verification, provenance
// missing where required, and provenance whose issuer, repository, workflow,
// ref or builder no publisher allows, with a one-line reason such as
// "provenance for sigstore-2.0.0.tgz: source repository is
// https://github.com/evil/fork, policy allows only https://github.com/sigstore/sigstore-js".
func (p Policy) Evaluate(artifact string, f *Facts) error {
	if err := p.Validate(); err != nil {
		return err
	}
	refuse := func(kind error, format string, args ...any) error {
		reason := fmt.Sprintf(format, args...)
		if f != nil {
			f.fail("policy", reason)
		}
		return &Refusal{What: "provenance", Artifact: artifact, Kind: kind, Reason: reason}
	}
	if f == nil || !f.Present {
		if p.RequireProvenance {
			return refuse(ErrMissing, "missing, and the policy of package %s requires provenance from %s: publish with provenance (npm publish --provenance) and rebuild the bundle",
				oneLine(p.Package), oneLine(p.Publishers[0].Repository))
		}
		return nil
	}
	if !f.Verified {
		reason := "did not verify"
		if n := len(f.Checks); n > 0 && !f.Checks[n-1].OK {
			reason += ": " + f.Checks[n-1].Detail
		}
		return refuse(ErrUnverified, "%s", reason)
	}
	if len(p.Publishers) == 0 {
		f.pass("policy", "no trusted publisher is configured for package "+oneLine(p.Package)+": identity shown, not enforced")
		return nil
	}
	rules := []struct {
		check, label string
		got          string
		allows       func(Publisher) (bool, string)
	}{
		{"policy: issuer", "oidc issuer", f.Issuer, func(pub Publisher) (bool, string) { return pub.Issuer == f.Issuer, pub.Issuer }},
		{"policy: repository", "source repository", f.Repository, func(pub Publisher) (bool, string) { return pub.Repository == f.Repository, pub.Repository }},
		{"policy: workflow", "workflow", f.Workflow, func(pub Publisher) (bool, string) { return pub.WorkflowPath == f.Workflow, pub.WorkflowPath }},
		{"policy: ref", "source ref", f.Ref, func(pub Publisher) (bool, string) {
			for _, r := range pub.Refs {
				if ok, _ := path.Match(r, f.Ref); ok && f.Ref != "" {
					return true, r
				}
			}
			return false, strings.Join(pub.Refs, ", ")
		}},
		{"policy: builder", "builder", f.Builder, func(pub Publisher) (bool, string) {
			return pub.Builder == "" || pub.Builder == f.Builder, pub.Builder
		}},
	}
	remaining := p.Publishers
	for _, rule := range rules {
		var next []Publisher
		var allowed []string
		for _, pub := range remaining {
			ok, want := rule.allows(pub)
			if ok {
				next = append(next, pub)
			}
			if want != "" && !containsString(allowed, want) {
				allowed = append(allowed, want)
			}
		}
		if len(next) == 0 {
			got := oneLine(rule.got)
			if rule.got == "" {
				got = "absent"
			}
			return refuse(ErrPolicy, "%s is %s, policy allows only %s", rule.label, got, strings.Join(quoteAll(allowed), " or "))
		}
		if rule.check == "policy: builder" && len(allowed) == 0 {
			f.pass(rule.check, "any builder allowed; provenance names "+oneLine(rule.got))
		} else {
			f.pass(rule.check, rule.label+" "+oneLine(rule.got)+" is allowed")
		}
		remaining = next
	}
	return nil
}

func containsString(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func quoteAll(list []string) []string {
	out := make([]string, len(list))
	for i, s := range list {
		out[i] = oneLine(s)
	}
	return out
}

// Evidence is what a release bundle carries for one artifact.
type Evidence struct {
	Provenance []byte // Sigstore provenance bundle JSON; nil when absent
	Publish    []byte // npm registry publish attestation bundle JSON; optional
}

// Review verifies an artifact's evidence and applies its package's policy:
// the one call the appliance makes per artifact. The returned Facts are
// never nil (Present is false without a provenance bundle) and hold every
// check done, for the review screen. A supplied publish attestation that
// fails to verify refuses the release too: it should not be there.
func (v *Verifier) Review(a Artifact, e Evidence, p Policy) (*Facts, error) {
	f := &Facts{Artifact: a.name()}
	var err error
	if e.Provenance != nil {
		f, err = v.Verify(e.Provenance, a)
	} else {
		f.fail("provenance", "no provenance bundle supplied")
	}
	if e.Publish != nil {
		pf, perr := v.VerifyPublish(e.Publish, a)
		f.Publish = pf
		if perr != nil && err == nil {
			err = perr
		}
	}
	if err != nil {
		return f, err
	}
	return f, p.Evaluate(a.name(), f)
}
