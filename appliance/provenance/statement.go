package provenance

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"unicode/utf8"
)

// In-toto and SLSA identifiers this package understands.
const (
	InTotoPayloadType   = "application/vnd.in-toto+json"
	StatementV01        = "https://in-toto.io/Statement/v0.1"
	StatementV1         = "https://in-toto.io/Statement/v1"
	SLSAProvenanceV02   = "https://slsa.dev/provenance/v0.2"
	SLSAProvenanceV1    = "https://slsa.dev/provenance/v1"
	NPMPublishPredicate = "https://github.com/npm/attestation/tree/main/specs/publish/v0.1"
)

// Caps on statement content.
const (
	MaxSubjects       = 64   // subjects per statement
	MaxSubjectDigests = 8    // digests per subject
	MaxJSONDepth      = 32   // nesting depth of the statement JSON
	MaxFactBytes      = 2048 // length of any single fact taken from the statement or certificate
)

type statement struct {
	Type          string          `json:"_type"`
	Subject       []subject       `json:"subject"`
	PredicateType string          `json:"predicateType"`
	Predicate     json.RawMessage `json:"predicate"`
}

type subject struct {
	Name   string            `json:"name"`
	Digest map[string]string `json:"digest"`
}

// buildFacts is what a SLSA predicate claims about the build.
type buildFacts struct {
	Builder, BuildType                string
	Repository, Commit, Ref, Workflow string
	Trigger, RunURL                   string
}

// parseStatement decodes an in-toto statement strictly: valid UTF-8, no
// duplicate object keys, bounded depth, a known statement type, at least one
// and at most MaxSubjects subjects with hex digests.
func parseStatement(payload []byte) (*statement, error) {
	if err := checkJSON(payload, "statement"); err != nil {
		return nil, err
	}
	var st statement
	if err := json.Unmarshal(payload, &st); err != nil {
		return nil, fmt.Errorf("statement is not valid in-toto json: %w", err)
	}
	if st.Type != StatementV01 && st.Type != StatementV1 {
		return nil, fmt.Errorf("statement type %s is not an in-toto statement v0.1 or v1", oneLine(st.Type))
	}
	if len(st.Subject) == 0 {
		return nil, errors.New("statement has no subject")
	}
	if len(st.Subject) > MaxSubjects {
		return nil, fmt.Errorf("statement has %d subjects, the limit is %d", len(st.Subject), MaxSubjects)
	}
	for i, s := range st.Subject {
		if len(s.Digest) == 0 {
			return nil, fmt.Errorf("subject[%d] has no digest", i)
		}
		if len(s.Digest) > MaxSubjectDigests {
			return nil, fmt.Errorf("subject[%d] has %d digests, the limit is %d", i, len(s.Digest), MaxSubjectDigests)
		}
		if len(s.Name) > MaxFactBytes {
			return nil, fmt.Errorf("subject[%d] name is %d bytes, the limit is %d", i, len(s.Name), MaxFactBytes)
		}
		for alg, d := range s.Digest {
			if _, err := hex.DecodeString(d); err != nil || d != strings.ToLower(d) || len(d) > 256 {
				return nil, fmt.Errorf("subject[%d] %s digest is not lowercase hex", i, oneLine(alg))
			}
		}
	}
	if st.PredicateType == "" {
		return nil, errors.New("statement has no predicate type")
	}
	return &st, nil
}

// checkJSON walks a JSON document and refuses invalid UTF-8, duplicate keys
// (which different parsers resolve differently) and nesting deeper than
// MaxJSONDepth, and trailing data after the document.
func checkJSON(doc []byte, what string) error {
	if !utf8.Valid(doc) {
		return errors.New(what + " is not valid utf-8")
	}
	dec := json.NewDecoder(bytes.NewReader(doc))
	dec.UseNumber()
	if err := walkJSON(dec, what, 0); err != nil {
		return err
	}
	if _, err := dec.Token(); err != io.EOF {
		return errors.New(what + " has trailing data after the json document")
	}
	return nil
}

func walkJSON(dec *json.Decoder, what string, depth int) error {
	if depth > MaxJSONDepth {
		return fmt.Errorf("%s json nests deeper than %d levels", what, MaxJSONDepth)
	}
	tok, err := dec.Token()
	if err != nil {
		return fmt.Errorf("%s is not valid json: %w", what, err)
	}
	switch t := tok.(type) {
	case json.Delim:
		switch t {
		case '{':
			seen := map[string]bool{}
			for dec.More() {
				kt, err := dec.Token()
				if err != nil {
					return fmt.Errorf("%s is not valid json: %w", what, err)
				}
				k, ok := kt.(string)
				if !ok {
					return errors.New(what + " is not valid json: object key is not a string")
				}
				if seen[k] {
					return fmt.Errorf("%s json repeats the key %s", what, oneLine(k))
				}
				seen[k] = true
				if err := walkJSON(dec, what, depth+1); err != nil {
					return err
				}
			}
		case '[':
			for dec.More() {
				if err := walkJSON(dec, what, depth+1); err != nil {
					return err
				}
			}
		default:
			return errors.New(what + " is not valid json: unexpected delimiter")
		}
		if _, err := dec.Token(); err != nil { // closing delimiter
			return fmt.Errorf("%s is not valid json: %w", what, err)
		}
	}
	return nil
}

// matchSubject finds the subject whose digest equals one of the artifact's
// digests, preferring sha512 over sha256. It returns the subject, the digest
// that matched and, when nothing matched, a description of why.
func (st *statement) matchSubject(a Artifact, what string) (*subject, Digest, error) {
	have := a.digests()
	if len(have) == 0 {
		return nil, Digest{}, errors.New("the artifact has no sha512 or sha256 digest to compare")
	}
	for _, d := range have {
		for i := range st.Subject {
			if st.Subject[i].Digest[d.Algorithm] == d.Hex {
				return &st.Subject[i], d, nil
			}
		}
	}
	// Explain the mismatch with the first subject and the strongest common algorithm.
	s := st.Subject[0]
	for _, d := range have {
		if want, ok := s.Digest[d.Algorithm]; ok {
			return nil, Digest{}, fmt.Errorf("%s of %s is %s…, the %s subject %s has %s…: the artifact was altered or the bundle belongs to another release",
				d.Algorithm, oneLine(a.Name), short(d.Hex), what, oneLine(s.Name), short(want))
		}
	}
	var algs, haveAlgs []string
	for alg := range s.Digest {
		algs = append(algs, oneLine(alg))
	}
	for _, d := range have {
		haveAlgs = append(haveAlgs, d.Algorithm)
	}
	sort.Strings(algs)
	return nil, Digest{}, fmt.Errorf("the %s subject %s has only %s digests and the %s of %s was given: supply the artifact's bytes or its %s",
		what, oneLine(s.Name), strings.Join(algs, ", "), strings.Join(haveAlgs, " and "), oneLine(a.Name), strings.Join(algs, " or "))
}

func short(h string) string {
	if len(h) > 16 {
		return h[:16]
	}
	return h
}

// predicateFacts extracts build facts from a SLSA v0.2 or v1 predicate. Fields
// of unexpected JSON types are left empty rather than failing: they are
// claims, and the ones that matter are checked against the certificate.
func predicateFacts(predicateType string, raw json.RawMessage) (buildFacts, error) {
	var bf buildFacts
	switch predicateType {
	case SLSAProvenanceV02:
		var p struct {
			BuildType string `json:"buildType"`
			Builder   struct {
				ID string `json:"id"`
			} `json:"builder"`
			Invocation struct {
				ConfigSource struct {
					URI        string            `json:"uri"`
					Digest     map[string]string `json:"digest"`
					EntryPoint string            `json:"entryPoint"`
				} `json:"configSource"`
				Environment map[string]any `json:"environment"`
			} `json:"invocation"`
			Materials []struct {
				URI    string            `json:"uri"`
				Digest map[string]string `json:"digest"`
			} `json:"materials"`
		}
		if err := lenientUnmarshal(raw, &p); err != nil {
			return bf, err
		}
		env := func(k string) string { s, _ := p.Invocation.Environment[k].(string); return s }
		bf.BuildType = p.BuildType
		bf.Builder = p.Builder.ID
		repo := env("GITHUB_REPOSITORY")
		cs := p.Invocation.ConfigSource
		if repo != "" {
			bf.Repository = "https://github.com/" + repo
		} else {
			bf.Repository, _ = splitGitURI(cs.URI)
		}
		bf.Commit = env("GITHUB_SHA")
		if bf.Commit == "" {
			bf.Commit = cs.Digest["sha1"]
		}
		bf.Ref = env("GITHUB_REF")
		if bf.Ref == "" {
			_, bf.Ref = splitGitURI(cs.URI)
		}
		wf := env("GITHUB_WORKFLOW_REF")
		if wf == "" {
			wf = cs.EntryPoint
		}
		wf, _, _ = strings.Cut(wf, "@")
		if repo != "" {
			wf = strings.TrimPrefix(wf, repo+"/")
		}
		bf.Workflow = wf
		bf.Trigger = env("GITHUB_EVENT_NAME")
		if runID, attempt := env("GITHUB_RUN_ID"), env("GITHUB_RUN_ATTEMPT"); repo != "" && runID != "" && attempt != "" {
			bf.RunURL = "https://github.com/" + repo + "/actions/runs/" + runID + "/attempts/" + attempt
		}
	case SLSAProvenanceV1:
		var p struct {
			BuildDefinition struct {
				BuildType          string `json:"buildType"`
				ExternalParameters struct {
					Workflow struct {
						Ref        string `json:"ref"`
						Repository string `json:"repository"`
						Path       string `json:"path"`
					} `json:"workflow"`
				} `json:"externalParameters"`
				InternalParameters struct {
					GitHub struct {
						EventName string `json:"event_name"`
					} `json:"github"`
				} `json:"internalParameters"`
				ResolvedDependencies []struct {
					URI    string            `json:"uri"`
					Digest map[string]string `json:"digest"`
				} `json:"resolvedDependencies"`
			} `json:"buildDefinition"`
			RunDetails struct {
				Builder struct {
					ID string `json:"id"`
				} `json:"builder"`
				Metadata struct {
					InvocationID string `json:"invocationId"`
				} `json:"metadata"`
			} `json:"runDetails"`
		}
		if err := lenientUnmarshal(raw, &p); err != nil {
			return bf, err
		}
		bd := p.BuildDefinition
		bf.BuildType = bd.BuildType
		bf.Builder = p.RunDetails.Builder.ID
		bf.Repository = bd.ExternalParameters.Workflow.Repository
		bf.Ref = bd.ExternalParameters.Workflow.Ref
		bf.Workflow = bd.ExternalParameters.Workflow.Path
		bf.Trigger = bd.InternalParameters.GitHub.EventName
		bf.RunURL = p.RunDetails.Metadata.InvocationID
		for _, dep := range bd.ResolvedDependencies {
			repo, _ := splitGitURI(dep.URI)
			if c := dep.Digest["gitCommit"]; c != "" && (bf.Repository == "" || repo == bf.Repository) {
				bf.Commit = c
				if bf.Repository == "" {
					bf.Repository = repo
				}
				break
			}
		}
	default:
		return bf, fmt.Errorf("predicate type %s is not SLSA provenance v0.2 or v1", oneLine(predicateType))
	}
	for _, s := range []string{bf.Builder, bf.BuildType, bf.Repository, bf.Commit, bf.Ref, bf.Workflow, bf.Trigger, bf.RunURL} {
		if len(s) > MaxFactBytes {
			return bf, fmt.Errorf("a predicate field is %d bytes, the limit is %d", len(s), MaxFactBytes)
		}
	}
	return bf, nil
}

// lenientUnmarshal decodes JSON, tolerating fields of unexpected types (they
// stay empty) but not syntax errors.
func lenientUnmarshal(raw json.RawMessage, v any) error {
	if len(raw) == 0 {
		return errors.New("statement has no predicate")
	}
	err := json.Unmarshal(raw, v)
	var te *json.UnmarshalTypeError
	if err != nil && !errors.As(err, &te) {
		return fmt.Errorf("predicate is not valid json: %w", err)
	}
	return nil
}

// splitGitURI splits "git+https://github.com/o/r@refs/heads/main" into
// "https://github.com/o/r" and "refs/heads/main".
func splitGitURI(u string) (repo, ref string) {
	u = strings.TrimPrefix(u, "git+")
	if i := strings.LastIndex(u, "@"); i > strings.Index(u, "://")+2 && strings.Contains(u, "://") {
		return u[:i], u[i+1:]
	}
	return u, ""
}
