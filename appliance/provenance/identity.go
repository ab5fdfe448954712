package provenance

import (
	"fmt"
	"strings"

	"github.com/sigstore/sigstore-go/pkg/fulcio/certificate"
)

// GitHubActionsIssuer is the OIDC issuer of GitHub Actions workflow tokens.
const GitHubActionsIssuer = "https://token.actions.githubusercontent.com"

// identity is what the Fulcio certificate says about who signed.
type identity struct {
	Issuer, SAN, CAName                string
	Repository, Commit, Ref, Workflow  string
	Trigger, RunURL, RunnerEnvironment string
}

// certIdentity reads identity facts from a certificate summary. It prefers
// the newer Fulcio extensions (1.3.6.1.4.1.57264.1.8 issuer, .12 repository,
// .13 digest, .14 ref, .18 build config, .20 trigger, .21 run, .11 runner)
// and falls back to the older GitHub ones (.1 issuer, .2 trigger, .3 sha,
// .5 repository, .6 ref) that 2023 certificates carry alone; the workflow
// then comes from the SAN. Where both generations are present they must agree.
func certIdentity(s certificate.Summary) (identity, error) {
	e := s.Extensions
	id := identity{
		Issuer:            e.Issuer,
		SAN:               s.SubjectAlternativeName,
		CAName:            s.CertificateIssuer,
		RunURL:            e.RunInvocationURI,
		RunnerEnvironment: e.RunnerEnvironment,
	}
	var oldRepo string
	if e.GithubWorkflowRepository != "" {
		oldRepo = "https://github.com/" + e.GithubWorkflowRepository
	}
	pairs := []struct {
		name     string
		dst      *string
		new, old string
	}{
		{"source repository", &id.Repository, e.SourceRepositoryURI, oldRepo},
		{"commit", &id.Commit, e.SourceRepositoryDigest, e.GithubWorkflowSHA},
		{"source ref", &id.Ref, e.SourceRepositoryRef, e.GithubWorkflowRef},
		{"trigger", &id.Trigger, e.BuildTrigger, e.GithubWorkflowTrigger},
	}
	for _, p := range pairs {
		if p.new != "" && p.old != "" && p.new != p.old {
			return id, fmt.Errorf("the certificate contradicts itself on the %s: %s and %s", p.name, oneLine(p.new), oneLine(p.old))
		}
		*p.dst = p.new
		if *p.dst == "" {
			*p.dst = p.old
		}
	}
	// The top-level workflow: the build config URI when present (the SAN
	// may name a reusable workflow elsewhere), otherwise the SAN.
	cfg := e.BuildConfigURI
	if cfg == "" && id.Issuer == GitHubActionsIssuer {
		cfg = id.SAN
	}
	id.Workflow = workflowPath(cfg, id.Repository)
	for _, v := range []string{id.Issuer, id.SAN, id.CAName, id.Repository, id.Commit, id.Ref, id.Workflow, id.Trigger, id.RunURL, id.RunnerEnvironment} {
		if len(v) > MaxFactBytes {
			return id, fmt.Errorf("a certificate field is %d bytes, the limit is %d", len(v), MaxFactBytes)
		}
	}
	return id, nil
}

// workflowPath turns "https://github.com/o/r/.github/workflows/x.yml@refs/…"
// into ".github/workflows/x.yml" when it lies in repo; a workflow in another
// repository keeps its full URI (without the ref) so no path policy matches it.
func workflowPath(uri, repo string) string {
	if uri == "" {
		return ""
	}
	if i := strings.LastIndex(uri, "@"); i >= 0 {
		uri = uri[:i]
	}
	if repo != "" && strings.HasPrefix(uri, repo+"/") {
		return strings.TrimPrefix(uri, repo+"/")
	}
	return uri
}
