package registry

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Stage states. A stage moves staged → approved → published, or staged →
// rejected; an approved stage the writer cannot put into the repository
// (its role moved on) goes back to staged with the reason. approved means
// a threshold of signatures verified: the stage waits for the writer with
// its signed role metadata (Written false), then the role, snapshot and
// timestamp are in the store's TUF repository (Written true) and the
// tarball still has to reach the upstream registry. A restart finishes
// either step; nothing reaches the upstream registry before it is
// written.
const (
	StateStaged    = "staged"
	StateApproved  = "approved"
	StatePublished = "published"
	StateRejected  = "rejected"
)

// ErrNotFound is returned for an unknown stage or repository file.
var ErrNotFound = errors.New("not found")

// ErrDuplicate is returned when a version is already staged or published.
var ErrDuplicate = errors.New("this version is already staged or published through the gate")

// Stage is one staged npm version as the store keeps it.
type Stage struct {
	ID        string
	Name      string
	Version   string
	Tag       string
	Target    string // TUF target: NAME/-/BASE-VERSION.tgz
	Role      string // role delegated Target when staged
	State     string
	Reason    string // last refusal, or why it was rejected
	Actor     string
	Shasum    string
	Integrity string
	// Predicate is the provenance predicate type ("" without provenance).
	Predicate string
	// Signature is the gate's npm registry signature (dist.signatures),
	// set when the version is approved.
	Signature string
	// Written says an approved stage's role, snapshot and timestamp are
	// in the repository (false: queued for the writer).
	Written bool
	Created time.Time
	Updated time.Time
}

// Blobs are the bytes kept with a stage.
type Blobs struct {
	Document   []byte // the publish document as npm sent it (attachments included)
	Tarball    []byte
	Provenance []byte // Sigstore bundle, or nil
	Auth       string // the stager's Authorization header, used to publish upstream
	Request    []byte // request.json of the newest bundle made for the stage
}

// ApproveFunc checks a submission under the repository writer lock. It is
// given the stage, its bytes and the current repository metadata (the
// newest version of every role, every root, timestamp and configuration);
// it returns the repository files to add or replace and the gate's npm
// signature. An error leaves the store unchanged. The repo map must not be
// modified.
type ApproveFunc func(s *Stage, b *Blobs, repo map[string][]byte) (files map[string][]byte, signature string, err error)

// BatchFunc writes queued approvals under the repository writer lock: it
// is given the approved stages not yet written (oldest first), their
// approvals and the current repository metadata, and returns the files to
// add or replace and, per stage, why it was refused (nil: written). A
// refused stage goes back to staged with the reason; an error leaves the
// store unchanged.
type BatchFunc func(stages []*Stage, items []Queued, repo map[string][]byte) (files map[string][]byte, refused []error, err error)

// Store keeps staged uploads and the TUF repository the gate serves. Every
// method is safe for concurrent use, also by several gate processes sharing
// one database (PostgreSQL). Implementations: SQLite, PostgreSQL; both pass
// RunStoreTests.
type Store interface {
	// ImportRepo stores files (paths relative to the repository folder)
	// if the store holds no repository yet; it reports whether it did.
	ImportRepo(ctx context.Context, files map[string][]byte) (bool, error)
	// RepoFile returns one repository file (metadata/..., targets/...).
	RepoFile(ctx context.Context, path string) ([]byte, error)
	// RepoMetadata returns the current repository metadata (see
	// ApproveFunc). Callers must not modify the map: a store may hand the
	// same map to every caller until the repository changes.
	RepoMetadata(ctx context.Context) (map[string][]byte, error)

	// PutStage records a new stage with its bytes.
	PutStage(ctx context.Context, s *Stage, b *Blobs) error
	GetStage(ctx context.Context, id string) (*Stage, error)
	GetBlobs(ctx context.Context, id string) (*Blobs, error)
	// ListStages lists stages in a state ("" for all) of a package ("" for
	// all), oldest first, with the total count.
	ListStages(ctx context.Context, state, name string, offset, limit int) ([]Stage, int, error)
	// StagesOf returns every stage of a package that is not rejected.
	StagesOf(ctx context.Context, name string) ([]Stage, error)
	// SetRequest stores the request.json of a bundle made for a staged stage.
	SetRequest(ctx context.Context, id string, request []byte) error
	// Refuse records why a submission was refused; the stage stays staged.
	Refuse(ctx context.Context, id, reason string) error
	// Reject moves a staged stage to rejected.
	Reject(ctx context.Context, id, reason string) error
	// Approve runs check under the writer lock and, if it succeeds, writes
	// its files and moves the stage from staged to approved atomically.
	Approve(ctx context.Context, id string, check ApproveFunc) error
	// Queue moves a staged stage whose request.json is still request to
	// approved with its verified approval, not yet written.
	Queue(ctx context.Context, id string, request []byte, a *Approval, signature string) error
	// WriteQueued takes the writer lock (one writer at a time, across
	// processes sharing the database), runs write over up to max approved
	// stages not yet written and commits its files with the stages' new
	// states in one transaction. It returns how many were written.
	WriteQueued(ctx context.Context, max int, write BatchFunc) (int, error)
	// MarkPublished moves an approved stage to published.
	MarkPublished(ctx context.Context, id string) error
	// TrustRecord keeps verified delegations (TUFReleaser.Record).
	TrustRecord
	Close() error
}

// Open opens a store named by a --store value: sqlite:PATH or
// postgres://... (postgresql://...).
func Open(ctx context.Context, spec string) (Store, error) {
	switch {
	case strings.HasPrefix(spec, "sqlite:"):
		return OpenSQLite(ctx, strings.TrimPrefix(spec, "sqlite:"))
	case strings.HasPrefix(spec, "postgres://"), strings.HasPrefix(spec, "postgresql://"):
		return OpenPostgres(ctx, spec)
	}
	return nil, fmt.Errorf("store %q: want sqlite:PATH or postgres://USER@HOST/DB", redactURL(spec))
}

func redactURL(s string) string {
	if i := strings.Index(s, "@"); i >= 0 {
		if j := strings.Index(s, "://"); j >= 0 && j < i {
			return s[:j+3] + "…" + s[i:]
		}
	}
	return s
}

// latestMetadata picks, from every metadata path, the ones a repository
// operation reads: every root version, root.json, timestamp.json, the
// configuration and the newest version of each other role.
func latestMetadata(paths []string) []string {
	newest := map[string]int64{}
	newestPath := map[string]string{}
	var out []string
	for _, p := range paths {
		name, ok := strings.CutPrefix(p, "metadata/")
		if !ok {
			if p == repoConfigFile {
				out = append(out, p)
			}
			continue
		}
		num, rest, ok := strings.Cut(name, ".")
		v, err := strconv.ParseInt(num, 10, 64)
		if !ok || err != nil {
			out = append(out, p) // root.json, timestamp.json
			continue
		}
		if rest == "root.json" {
			out = append(out, p)
			continue
		}
		if v > newest[rest] {
			newest[rest], newestPath[rest] = v, p
		}
	}
	for _, p := range newestPath {
		out = append(out, p)
	}
	sort.Strings(out)
	return out
}

const repoConfigFile = "airlock-repo.json"
