package tuf

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"path"
	"path/filepath"
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
	u := h.Base.JoinPath(name)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
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

// Verify runs the TUF client workflow from a trusted root: the root chain,
// timestamp, snapshot, targets and, when target is not "", the delegations
// that lead to it and its bytes (returned).
func (c *Client) Verify(ctx context.Context, trustedRoot []byte, target string) (*ClientReport, []byte, error) {
	if c.RefTime.IsZero() {
		c.RefTime = time.Now()
	}
	root, err := ParseStrict[metadata.RootType](trustedRoot)
	if err != nil {
		return nil, nil, fmt.Errorf("trusted root: %w", err)
	}
	if err := VerifyTrustedRoot(root); err != nil {
		return nil, nil, fmt.Errorf("trusted root: %w", err)
	}
	var next [][]byte
	for v := root.Signed.Version + 1; len(next) < MaxRootChain; v++ {
		b, err := c.Fetch.Fetch(ctx, fmt.Sprintf("metadata/%d.root.json", v), MaxMetadataBytes)
		if errors.Is(err, fs.ErrNotExist) {
			break
		}
		if err != nil {
			return nil, nil, fmt.Errorf("root version %d: %w", v, err)
		}
		next = append(next, b)
	}
	root, err = VerifyRootChain(root, next, c.RefTime)
	if err != nil {
		return nil, nil, err
	}
	rep := &ClientReport{RootVersion: root.Signed.Version}

	tsBytes, err := c.Fetch.Fetch(ctx, "metadata/timestamp.json", MaxMetadataBytes)
	if err != nil {
		return nil, nil, fmt.Errorf("timestamp: %w", err)
	}
	ts, err := ParseStrict[metadata.TimestampType](tsBytes)
	if err != nil {
		return nil, nil, fmt.Errorf("timestamp: %w", err)
	}
	if err := c.verifyTop(rep, root, metadata.TIMESTAMP, ts); err != nil {
		return nil, nil, err
	}
	snapMeta := ts.Signed.Meta["snapshot.json"]
	if snapMeta == nil || len(ts.Signed.Meta) != 1 {
		return nil, nil, errors.New("timestamp: meta must list exactly snapshot.json")
	}
	snapBytes, err := c.Fetch.Fetch(ctx, c.metaName(root, snapMeta.Version, metadata.SNAPSHOT), MaxMetadataBytes)
	if err != nil {
		return nil, nil, fmt.Errorf("snapshot: %w", err)
	}
	if err := checkMetaFile("snapshot", snapMeta, snapBytes); err != nil {
		return nil, nil, err
	}
	snap, err := ParseStrict[metadata.SnapshotType](snapBytes)
	if err != nil {
		return nil, nil, fmt.Errorf("snapshot: %w", err)
	}
	if snap.Signed.Version != snapMeta.Version {
		return nil, nil, fmt.Errorf("snapshot: version %d, timestamp says %d", snap.Signed.Version, snapMeta.Version)
	}
	if err := c.verifyTop(rep, root, metadata.SNAPSHOT, snap); err != nil {
		return nil, nil, err
	}
	loadRole := func(role string, d *Delegation) (*metadata.Metadata[metadata.TargetsType], error) {
		mf := snap.Signed.Meta[role+".json"]
		if mf == nil {
			return nil, fmt.Errorf("role %s: not listed in snapshot", role)
		}
		b, err := c.Fetch.Fetch(ctx, c.metaName(root, mf.Version, role), MaxMetadataBytes)
		if err != nil {
			return nil, fmt.Errorf("role %s: %w", role, err)
		}
		if err := checkMetaFile(role, mf, b); err != nil {
			return nil, err
		}
		m, err := ParseStrict[metadata.TargetsType](b)
		if err != nil {
			return nil, fmt.Errorf("role %s: %w", role, err)
		}
		if m.Signed.Version != mf.Version {
			return nil, fmt.Errorf("role %s: version %d, snapshot says %d (mixed versions)", role, m.Signed.Version, mf.Version)
		}
		v, err := VerifyRole(m, d, RoleCheck{RefTime: c.RefTime})
		if err != nil {
			return nil, err
		}
		rep.Roles = append(rep.Roles, RoleCheckReport{Role: role, Version: m.Signed.Version, Expires: m.Signed.Expires, Signers: v.Signers})
		return m, nil
	}
	td, err := DelegationFromRoot(root, metadata.TARGETS)
	if err != nil {
		return nil, nil, err
	}
	targets, err := loadRole(metadata.TARGETS, td)
	if err != nil {
		return nil, nil, err
	}
	if target == "" {
		return rep, nil, nil
	}
	if err := checkTargetPath(target); err != nil {
		return nil, nil, err
	}
	info, role, err := c.findTarget(targets, target, loadRole)
	if err != nil {
		return nil, nil, err
	}
	rep.Target, rep.TargetRole, rep.TargetInfo = target, role, info
	dir, base := path.Split(target)
	name := "targets/" + dir + base
	if root.Signed.ConsistentSnapshot {
		h, ok := info.Hashes["sha256"]
		if !ok {
			return nil, nil, fmt.Errorf("target %s has no sha256 hash", target)
		}
		name = "targets/" + dir + hex.EncodeToString(h) + "." + base
	}
	if info.Length > MaxTargetBytes {
		return nil, nil, fmt.Errorf("target %s is %d bytes, over the %d-byte cap", target, info.Length, int64(MaxTargetBytes))
	}
	data, err := c.Fetch.Fetch(ctx, name, info.Length)
	if err != nil {
		return nil, nil, fmt.Errorf("target %s: %w", target, err)
	}
	if err := info.VerifyLengthHashes(data); err != nil {
		return nil, nil, fmt.Errorf("target %s: bytes do not match the signed length and hashes: %w", target, err)
	}
	return rep, data, nil
}

func (c *Client) metaName(root *metadata.Metadata[metadata.RootType], v int64, role string) string {
	if root.Signed.ConsistentSnapshot {
		return fmt.Sprintf("metadata/%d.%s.json", v, role)
	}
	return "metadata/" + role + ".json"
}

func (c *Client) verifyTop(rep *ClientReport, root *metadata.Metadata[metadata.RootType], role string, m any) error {
	d, err := DelegationFromRoot(root, role)
	if err != nil {
		return err
	}
	var v *Verified
	var h Header
	switch m := m.(type) {
	case *metadata.Metadata[metadata.TimestampType]:
		v, err = VerifyRole(m, d, RoleCheck{RefTime: c.RefTime})
		h = header(m)
	case *metadata.Metadata[metadata.SnapshotType]:
		v, err = VerifyRole(m, d, RoleCheck{RefTime: c.RefTime})
		h = header(m)
	}
	if err != nil {
		return err
	}
	rep.Roles = append(rep.Roles, RoleCheckReport{Role: role, Version: h.Version, Expires: h.Expires, Signers: v.Signers})
	return nil
}

func checkMetaFile(role string, mf *metadata.MetaFiles, b []byte) error {
	if mf.Length != 0 && int64(len(b)) != mf.Length {
		return fmt.Errorf("%s: %d bytes, the signed length is %d", role, len(b), mf.Length)
	}
	if len(mf.Hashes) > 0 {
		if err := mf.VerifyLengthHashes(b); err != nil {
			return fmt.Errorf("%s: bytes do not match the signed hashes", role)
		}
	}
	return nil
}

// findTarget searches the delegation graph in pre-order, depth first, as
// the TUF specification describes, honouring terminating delegations.
func (c *Client) findTarget(top *metadata.Metadata[metadata.TargetsType], target string,
	load func(string, *Delegation) (*metadata.Metadata[metadata.TargetsType], error)) (*metadata.TargetFiles, string, error) {
	type item struct {
		name string
		m    *metadata.Metadata[metadata.TargetsType]
	}
	stack := []item{{metadata.TARGETS, top}}
	visited := map[string]bool{}
	for len(stack) > 0 && len(visited) <= MaxDelegations {
		it := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if visited[it.name] {
			continue
		}
		visited[it.name] = true
		if tf, ok := it.m.Signed.Targets[target]; ok {
			return tf, it.name, nil
		}
		dg := it.m.Signed.Delegations
		if dg == nil {
			continue
		}
		var children []item
		var roles []metadata.RoleResult
		if dg.SuccinctRoles != nil {
			roles = dg.SuccinctRoles.GetRolesForTarget(target)
		} else {
			roles = dg.GetRolesForTarget(target)
		}
		for _, rr := range roles {
			if visited[rr.Name] {
				continue
			}
			d, err := DelegationFromTargets(it.m, it.name, rr.Name)
			if err != nil {
				return nil, "", err
			}
			m, err := load(rr.Name, d)
			if err != nil {
				return nil, "", err
			}
			children = append(children, item{rr.Name, m})
			if rr.Terminating {
				// A terminating delegation ends the search after its subtree.
				stack = nil
				break
			}
		}
		for i := len(children) - 1; i >= 0; i-- {
			stack = append(stack, children[i])
		}
	}
	return nil, "", fmt.Errorf("target %s is not signed by any role", target)
}
