package registry

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/theupdateframework/go-tuf/v2/metadata"

	"airlock.dev/airlock/tuf"
)

// TrustRecord keeps, in the store, the delegations a gate established by
// verifying the chain of trust, by the hash of every byte they depend on,
// so that a restarted gate or another replica reloads a delegation with
// one read instead of parsing and verifying the roots and the delegating
// role again. The record is as trusted as the repository files next to
// it in the same store: both come from a gate's own verification.
type TrustRecord interface {
	// LoadTrusted returns what SaveTrusted kept under key, or an error
	// wrapping ErrNotFound.
	LoadTrusted(ctx context.Context, key string) ([]byte, error)
	// SaveTrusted keeps data under key; a key already kept is left as it
	// is (the same key always means the same data).
	SaveTrusted(ctx context.Context, key string, data []byte) error
}

// Caps on a kept delegation.
const (
	maxTrustedBytes = 1 << 20
	trustTimeout    = 10 * time.Second
)

// trustedDelegation is a delegation as the store keeps it.
type trustedDelegation struct {
	Role      string                   `json:"role"`
	Delegator string                   `json:"delegator"`
	Keys      map[string]*metadata.Key `json:"keys"`
	KeyIDs    []string                 `json:"keyids"`
	Threshold int                      `json:"threshold"`
	Groups    []tuf.Group              `json:"groups,omitempty"`
}

func encodeTrusted(d *tuf.Delegation) ([]byte, error) {
	keys := make(map[string]*metadata.Key, len(d.KeyIDs))
	for _, id := range d.KeyIDs {
		keys[id] = d.Keys[id]
	}
	return json.Marshal(trustedDelegation{Role: d.Role, Delegator: d.Delegator, Keys: keys, KeyIDs: d.KeyIDs, Threshold: d.Threshold, Groups: d.Groups})
}

// decodeTrusted reads a kept delegation of role, with the checks every
// delegation gets (tuf.NewDelegation).
func decodeTrusted(data []byte, role string) (*tuf.Delegation, error) {
	if len(data) > maxTrustedBytes {
		return nil, fmt.Errorf("kept delegation of %s is over %d bytes", role, maxTrustedBytes)
	}
	var td trustedDelegation
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&td); err != nil {
		return nil, fmt.Errorf("kept delegation of %s: %w", role, err)
	}
	if dec.More() {
		return nil, fmt.Errorf("kept delegation of %s: data after the object", role)
	}
	if td.Role != role {
		return nil, fmt.Errorf("kept delegation is of role %q, not %q", td.Role, role)
	}
	d, err := tuf.NewDelegation(td.Role, td.Delegator, td.Keys, td.KeyIDs, td.Threshold, td.Groups)
	if err != nil {
		return nil, fmt.Errorf("kept delegation: %w", err)
	}
	return d, nil
}

// trustKey sums up what the delegation of a role that targets (or root)
// delegates directly depends on: every root version and the newest
// targets metadata. ok is false when the repository has no targets.
func (v metaView) trustKey(role string) (key [32]byte, ok bool) {
	roots, err := v.roots()
	if err != nil {
		return key, false
	}
	_, targets := v.role(metadata.TARGETS)
	if targets == nil {
		return key, false
	}
	h := sha256.New()
	h.Write([]byte("airlock gate delegation 1\x00" + role + "\x00"))
	for _, b := range roots {
		h.Write([]byte(strconv.Itoa(len(b)) + ":"))
		h.Write(b)
	}
	h.Write([]byte(strconv.Itoa(len(targets)) + ":"))
	h.Write(targets)
	h.Sum(key[:0])
	return key, true
}

// directlyDelegated reports whether the delegation of role is decided by
// the roots and targets alone: role is targets, or targets delegates it
// itself (the breadth-first search stops there).
func (v metaView) directlyDelegated(role string) bool {
	if role == metadata.TARGETS {
		return true
	}
	_, raw := v.role(metadata.TARGETS)
	t, err := parseTargetsCached(raw)
	if err != nil || t.Delegations == nil {
		return false
	}
	for _, d := range t.Delegations.Roles {
		if d.Name == role {
			return true
		}
	}
	sr := t.Delegations.SuccinctRoles
	return sr != nil && sr.IsDelegatedRole(role)
}

// trustedDelegation is delegation with a role that targets delegates
// directly looked up first by trustKey: in this process, then in rec
// (nil: none). A delegation verified here is kept in both.
func (v metaView) trustedDelegation(rec TrustRecord, role string) (*tuf.Delegation, error) {
	key, ok := v.trustKey(role)
	if !ok {
		return v.delegation(role)
	}
	verified.Lock()
	d, hit := verified.kept[key]
	verified.Unlock()
	if hit {
		return d.Clone(), nil
	}
	hkey := hex.EncodeToString(key[:])
	if rec != nil {
		ctx, cancel := context.WithTimeout(context.Background(), trustTimeout)
		data, err := rec.LoadTrusted(ctx, hkey)
		cancel()
		if err == nil {
			if d, err = decodeTrusted(data, role); err == nil {
				keep(key, d)
				return d.Clone(), nil
			}
		}
		// Not kept, unreadable or refused: the chain is verified below.
	}
	d, err := v.delegation(role)
	if err != nil {
		return nil, err
	}
	if v.directlyDelegated(role) {
		keep(key, d)
		if rec != nil {
			if data, err := encodeTrusted(d); err == nil {
				ctx, cancel := context.WithTimeout(context.Background(), trustTimeout)
				rec.SaveTrusted(ctx, hkey, data) // a later gate verifies again if this fails
				cancel()
			}
		}
	}
	return d, nil
}

func keep(key [32]byte, d *tuf.Delegation) {
	verified.Lock()
	if len(verified.kept) >= maxCached {
		clear(verified.kept)
	}
	verified.kept[key] = d.Clone()
	verified.Unlock()
}

// loadOnly reads a TrustRecord and keeps nothing in it: the writer runs
// inside the store's writer transaction, where a write of its own would
// wait for that very transaction (SQLite's one writer).
type loadOnly struct{ TrustRecord }

func (loadOnly) SaveTrusted(context.Context, string, []byte) error { return nil }
