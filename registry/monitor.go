package registry

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"time"

	"airlock.dev/airlock/tuf"
)

// Alarm kinds.
const (
	AlarmUnsigned  = "unsigned"  // no threshold-signed target for the version
	AlarmMismatch  = "mismatch"  // the registry serves other bytes than the signed target
	AlarmDowngrade = "downgrade" // published without provenance after versions with it
	AlarmFetch     = "fetch"     // the registry's tarball could not be read
)

// Alarm is one finding of the monitor, printed as a JSON line.
type Alarm struct {
	Time    string `json:"time"`
	Kind    string `json:"kind"`
	Package string `json:"package"`
	Version string `json:"version"`
	Target  string `json:"target,omitempty"`
	Reason  string `json:"reason"`
}

// Monitor checks what an npm registry serves against a TUF repository:
// every version must be a threshold-signed target with the same bytes.
type Monitor struct {
	Registry *url.URL
	// Repo reads the TUF repository ("metadata/...", "targets/...").
	Repo tuf.Fetcher
	Root []byte // trusted root
	// Client reaches the registry (default: a client with a timeout).
	Client *http.Client
	Now    func() time.Time
}

type monVersion struct {
	Dist struct {
		Tarball      string          `json:"tarball"`
		Integrity    string          `json:"integrity"`
		Attestations json.RawMessage `json:"attestations"`
	} `json:"dist"`
}

// Check reports the alarms for one package. An error means the registry
// or the repository could not be read at all.
func (m *Monitor) Check(ctx context.Context, name string) ([]Alarm, error) {
	if err := CheckName(name); err != nil {
		return nil, err
	}
	client := m.Client
	if client == nil {
		client = &http.Client{Timeout: upstreamTimeout}
	}
	now := time.Now
	if m.Now != nil {
		now = m.Now
	}
	var doc struct {
		Versions           map[string]monVersion `json:"versions"`
		Time               map[string]string     `json:"time"`
		PolicyRestrictions struct {
			Versions map[string]bool `json:"versions"`
		} `json:"policyRestrictions"`
	}
	u := strings.TrimSuffix(m.Registry.String(), "/") + "/" + EscapedName(name)
	b, status, err := getCapped(ctx, client, u, MaxUpstreamJSON)
	if err != nil {
		return nil, err
	}
	if status == http.StatusNotFound {
		return nil, nil
	}
	if status != http.StatusOK {
		return nil, fmt.Errorf("the registry answered %d for %s", status, name)
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		return nil, fmt.Errorf("the registry's document for %s is not JSON: %v", name, err)
	}
	store := tuf.MemStore{}
	if err := tuf.InitStore(store, m.Root); err != nil {
		return nil, err
	}
	up := &tuf.Updater{Store: store, Remote: tuf.PrefixFetcher{Fetcher: m.Repo, Prefix: "metadata/"}, RefTime: now()}
	if err := up.Refresh(ctx); err != nil {
		return nil, fmt.Errorf("the TUF repository fails the client check: %w", err)
	}
	var versions []string
	for v := range doc.Versions {
		if !doc.PolicyRestrictions.Versions[v] { // staged at a gate, not installable
			versions = append(versions, v)
		}
	}
	// Publication order: by the registry's time, then by name.
	sort.Slice(versions, func(i, j int) bool {
		ti, tj := doc.Time[versions[i]], doc.Time[versions[j]]
		if ti != tj {
			return ti < tj
		}
		return versions[i] < versions[j]
	})
	stamp := now().UTC().Format(time.RFC3339)
	var alarms []Alarm
	withProvenance := ""
	for _, v := range versions {
		mv := doc.Versions[v]
		target := TargetPath(name, v)
		alarm := func(kind, format string, args ...any) {
			alarms = append(alarms, Alarm{Time: stamp, Kind: kind, Package: name, Version: v, Target: target, Reason: fmt.Sprintf(format, args...)})
		}
		if len(mv.Dist.Attestations) > 0 && string(mv.Dist.Attestations) != "null" {
			withProvenance = v
		} else if withProvenance != "" {
			alarm(AlarmDowngrade, "%s@%s has no provenance, %s@%s had: trust downgrade", name, v, name, withProvenance)
		}
		info, err := up.GetTargetInfo(ctx, target)
		if err != nil {
			alarm(AlarmUnsigned, "%s@%s is served by the registry but has no threshold-signed target %s: %v", name, v, target, err)
			continue
		}
		tu, err := url.Parse(mv.Dist.Tarball)
		if err != nil || (tu.Scheme != "http" && tu.Scheme != "https") {
			alarm(AlarmFetch, "%s@%s: dist.tarball %q is not an http(s) URL", name, v, clip(mv.Dist.Tarball))
			continue
		}
		data, status, err := getCapped(ctx, client, tu.String(), MaxTarballBytes)
		if err != nil || status != http.StatusOK {
			alarm(AlarmFetch, "%s@%s: reading the tarball %s: status %d %v", name, v, tu.Redacted(), status, err)
			continue
		}
		if err := info.Check(data); err != nil {
			alarm(AlarmMismatch, "%s@%s: the registry serves other bytes than the signed target %s: %v", name, v, target, err)
		}
	}
	return alarms, nil
}

func getCapped(ctx context.Context, c *http.Client, u string, max int64) ([]byte, int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, 0, err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := c.Do(req)
	if err != nil {
		return nil, 0, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, max+1))
	if err != nil {
		return nil, resp.StatusCode, err
	}
	if int64(len(b)) > max {
		return nil, resp.StatusCode, fmt.Errorf("%s is over %d bytes", u, max)
	}
	return b, resp.StatusCode, nil
}
