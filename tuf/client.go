package tuf

import (
	"context"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/theupdateframework/go-tuf/v2/metadata"
)

// Fetcher returns the bytes of a repository file (metadata/..., targets/...)
// reading at most max bytes; a missing file is fs.ErrNotExist.
type Fetcher interface {
	Fetch(ctx context.Context, name string, max int64) ([]byte, error)
}

// DirFetcher reads a repository from a local folder.
type DirFetcher string

// Fetch implements Fetcher.
func (d DirFetcher) Fetch(_ context.Context, name string, max int64) ([]byte, error) {
	f, err := os.Open(filepath.Join(string(d), filepath.FromSlash(name)))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return readCapped(f, name, max)
}

// HTTPFetcher reads a repository from a base URL.
type HTTPFetcher struct {
	Base   *url.URL
	Client *http.Client
}

// Fetch implements Fetcher.
func (h HTTPFetcher) Fetch(ctx context.Context, name string, max int64) ([]byte, error) {
	// name is already escaped segment by segment by the caller.
	u := strings.TrimSuffix(h.Base.String(), "/") + "/" + name
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	c := h.Client
	if c == nil {
		c = &http.Client{Timeout: 60 * time.Second}
	}
	resp, err := c.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusNotFound || resp.StatusCode == http.StatusForbidden:
		return nil, fmt.Errorf("%s: %w", name, fs.ErrNotExist)
	case resp.StatusCode != http.StatusOK:
		return nil, fmt.Errorf("%s: http status %d", name, resp.StatusCode)
	}
	return readCapped(resp.Body, name, max)
}

func readCapped(r io.Reader, name string, max int64) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r, max+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > max {
		return nil, fmt.Errorf("%s is over the %d-byte cap", name, max)
	}
	return b, nil
}

// MaxDelegations caps how many delegated roles one target search visits.
const MaxDelegations = 32

// MaxTargetBytes caps a downloaded target.
const MaxTargetBytes = 4 << 30

// ClientReport is what a full client check verified.
type ClientReport struct {
	RootVersion int64                 `json:"root_version"`
	Roles       []RoleCheckReport     `json:"roles"`
	Target      string                `json:"target,omitempty"`
	TargetRole  string                `json:"target_role,omitempty"`
	TargetInfo  *metadata.TargetFiles `json:"target_info,omitempty"`
}

// RoleCheckReport is one verified role.
type RoleCheckReport struct {
	Role    string    `json:"role"`
	Version int64     `json:"version"`
	Expires time.Time `json:"expires"`
	Signers []Signer  `json:"signers"`
}

// Client is a TUF client stricter than go-tuf and tuf-js: every role is
// verified with distinct-key thresholds, approval groups, exact snapshot
// versions and hashes, and expiry at RefTime.
type Client struct {
	Fetch   Fetcher
	RefTime time.Time
}

// Verify runs the TUF client workflow from a trusted root, keeping no
// state: the root chain, timestamp, snapshot, targets and, when target is
// not "", the delegations that lead to it and its bytes (returned). The
// repository is read as "metadata/..." and "targets/..." of Fetch. It is
// the Updater with a memory store.
func (c *Client) Verify(ctx context.Context, trustedRoot []byte, target string) (*ClientReport, []byte, error) {
	if c.RefTime.IsZero() {
		c.RefTime = time.Now()
	}
	store := MemStore{}
	if err := InitStore(store, trustedRoot); err != nil {
		return nil, nil, err
	}
	u := &Updater{Store: store, Remote: PrefixFetcher{c.Fetch, "metadata/"}, Targets: PrefixFetcher{c.Fetch, "targets/"}, RefTime: c.RefTime}
	if err := u.Refresh(ctx); err != nil {
		return nil, nil, err
	}
	if target == "" {
		return u.Report(), nil, nil
	}
	info, err := u.GetTargetInfo(ctx, target)
	if err != nil {
		return nil, nil, err
	}
	data, err := u.FetchTarget(ctx, info)
	if err != nil {
		return nil, nil, err
	}
	return u.Report(), data, nil
}
