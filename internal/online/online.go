// Package online implements the online side of a release: building a
// release bundle from a repository, development signing of a request, and
// combining signature responses back into the repository. cmd/airlock and
// the demo both use it.
package online

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/theupdateframework/go-tuf/v2/metadata"

	"airlock.dev/airlock/hsm"
	"airlock.dev/airlock/transfer/bundle"
	"airlock.dev/airlock/tuf"
)

// FileArg is a local file and the target (or role path) it stands for.
type FileArg struct {
	File   string
	Target string
}

// ParseFileArg parses FILE[=TARGET]; without a target the file's base name
// is used.
func ParseFileArg(s string) FileArg {
	if f, t, ok := strings.Cut(s, "="); ok {
		return FileArg{File: f, Target: t}
	}
	return FileArg{File: s, Target: filepath.Base(s)}
}

// BundleOptions describes a release bundle to build.
type BundleOptions struct {
	Role       string
	Kind       string // default: derived from what the new version changes
	Add        []FileArg
	Remove     []string
	Provenance []FileArg // Target "" maps to the only added target
	Previous   []FileArg
	Expires    time.Duration
	Note       string
	Now        time.Time
}

// Bundle is a built bundle before it is written.
type Bundle struct {
	Request *tuf.Request
	// Files maps bundle paths (artifacts/..., previous/..., provenance/...)
	// to local files.
	Files map[string]string
}

// CreateBundle builds the next version of a targets role with the given
// changes and the signing request for it.
func CreateBundle(repo *tuf.Repository, o BundleOptions) (*Bundle, error) {
	if o.Now.IsZero() {
		o.Now = time.Now()
	}
	if o.Expires == 0 {
		o.Expires = 90 * 24 * time.Hour
	}
	if o.Role == metadata.ROOT {
		return nil, errors.New("root changes are built with airlock root, not bundle create")
	}
	next, err := repo.NextTargets(o.Role, o.Now.Add(o.Expires))
	if err != nil {
		return nil, err
	}
	b := &Bundle{Files: map[string]string{}}
	var targets []tuf.TargetFile
	used := map[string]bool{}
	bundlePath := func(dir, file string) string {
		p := dir + "/" + filepath.Base(file)
		for i := 2; used[p]; i++ {
			p = fmt.Sprintf("%s/%d-%s", dir, i, filepath.Base(file))
		}
		used[p] = true
		return p
	}
	for _, a := range o.Add {
		f, err := os.Open(a.File)
		if err != nil {
			return nil, err
		}
		tf, err := tuf.HashReader(f)
		f.Close()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", a.File, err)
		}
		if err := tuf.SetTarget(next, a.Target, tf, nil); err != nil {
			return nil, err
		}
		bp := bundlePath("artifacts", a.File)
		b.Files[bp] = a.File
		targets = append(targets, tuf.TargetFile{Path: a.Target, Length: tf.Length, Hashes: hexHashes(tf.Hashes), File: bp})
	}
	for _, t := range o.Remove {
		if err := tuf.RemoveTarget(next, t); err != nil {
			return nil, err
		}
	}
	if err := repo.CheckPaths(o.Role, next); err != nil {
		return nil, fmt.Errorf("%w: name the target under the role's paths (airlock delegate --paths sets them)", err)
	}
	// The kind is what the new bytes change; the appliance derives it the
	// same way and refuses a label that disagrees.
	cur, err := repo.Role(o.Role)
	if errors.Is(err, fs.ErrNotExist) {
		cur = nil
	} else if err != nil {
		return nil, err
	}
	kind, why := tuf.DeriveTargetsKind(cur, next)
	if o.Kind != "" {
		if err := tuf.CheckKindLabel(o.Kind, kind, why); err != nil {
			return nil, fmt.Errorf("--kind %s: %w; leave --kind out to use the derived kind", o.Kind, err)
		}
		kind = o.Kind
	}
	raw, err := next.ToBytes(false)
	if err != nil {
		return nil, err
	}
	req, err := repo.BuildRequest(kind, o.Role, raw, o.Now)
	if err != nil {
		return nil, err
	}
	req.Targets = targets
	req.Note = o.Note
	mapRefs := func(args []FileArg, dir string) ([]tuf.FileRef, error) {
		var refs []tuf.FileRef
		for _, a := range args {
			target := a.Target
			if target == filepath.Base(a.File) || target == "" {
				if len(o.Add) != 1 {
					return nil, fmt.Errorf("%s: say which target it belongs to with FILE=TARGET", a.File)
				}
				target = o.Add[0].Target
			}
			if _, ok := next.Signed.Targets[target]; !ok {
				return nil, fmt.Errorf("%s: target %q is not in the new version of %s", a.File, target, o.Role)
			}
			bp := bundlePath(dir, a.File)
			b.Files[bp] = a.File
			refs = append(refs, tuf.FileRef{Target: target, File: bp})
		}
		return refs, nil
	}
	if req.Provenance, err = mapRefs(o.Provenance, "provenance"); err != nil {
		return nil, err
	}
	if req.Previous, err = mapRefs(o.Previous, "previous"); err != nil {
		return nil, err
	}
	b.Request = req
	if _, err := req.Payload(); err != nil {
		return nil, err
	}
	if err := req.CheckUniqueKeys(); err != nil {
		return nil, err
	}
	return b, nil
}

func hexHashes(h metadata.Hashes) map[string]string {
	out := map[string]string{}
	for k, v := range h {
		out[k] = hex.EncodeToString(v)
	}
	return out
}

// WriteDir writes the bundle as a folder that must not exist yet, then
// reads it back with transfer/bundle's rules, so that what CI writes is what
// the appliance accepts; a folder that fails the check is removed.
func (b *Bundle) WriteDir(dir string) error {
	if err := os.Mkdir(dir, 0o755); err != nil {
		return fmt.Errorf("bundle folder: %w", err)
	}
	if err := b.writeFiles(dir); err != nil {
		os.RemoveAll(dir)
		return err
	}
	if _, err := bundle.Open(dir, bundle.Options{}); err != nil {
		os.RemoveAll(dir)
		return err
	}
	return nil
}

func (b *Bundle) writeFiles(dir string) error {
	raw, err := b.Request.Marshal()
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "request.json"), append(raw, '\n'), 0o644); err != nil {
		return err
	}
	paths := make([]string, 0, len(b.Files))
	for p := range b.Files {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	for _, p := range paths {
		dst := filepath.Join(dir, filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			return err
		}
		if err := copyFile(b.Files[p], dst); err != nil {
			return err
		}
	}
	return nil
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return err
	}
	if _, err := io.CopyBuffer(out, in, make([]byte, 1<<20)); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// ReadRequest reads and parses request.json of a bundle folder.
func ReadRequest(bundleDir string) (*tuf.Request, error) {
	req, _, err := OpenBundle(bundleDir)
	return req, err
}

// OpenBundle checks a bundle folder in place with transfer/bundle's rules
// (caps, no links or traversal, known layout), hashes every file, and
// parses its request.
func OpenBundle(bundleDir string) (*tuf.Request, *bundle.Manifest, error) {
	m, err := bundle.Open(bundleDir, bundle.Options{})
	if err != nil {
		return nil, nil, err
	}
	req, err := tuf.ParseRequest(m.Document)
	if err != nil {
		return nil, nil, err
	}
	return req, m, nil
}

// Sign signs the request's payload with each key (development signing; the
// appliance is the production path) and returns the response.
func Sign(req *tuf.Request, keys []hsm.Signer, now time.Time) (*tuf.Response, error) {
	p, err := req.Payload()
	if err != nil {
		return nil, err
	}
	if err := req.CheckUniqueKeys(); err != nil {
		return nil, err
	}
	d, cur, err := req.Delegation(nil, now)
	if err != nil {
		return nil, err
	}
	if p.Root != nil {
		// Keys of the current and of the new root sign a rotation.
		if d, _, _, err = tuf.RootRotationSigners(cur, p.Root); err != nil {
			return nil, err
		}
	}
	id := make([]byte, 8)
	_, _ = rand.Read(id)
	resp := &tuf.Response{Format: tuf.ResponseFormat, Role: req.Role, Version: p.Version, SignedSHA256: p.SHA256, CeremonyID: "dev-" + hex.EncodeToString(id)}
	for _, k := range keys {
		if k.Kind() == hsm.KindFile {
			resp.Dev = true
		}
		sig, err := tuf.SignPayload(d, k, p.Canonical)
		if err != nil {
			return nil, err
		}
		resp.Signatures = append(resp.Signatures, tuf.Signature{KeyID: sig.KeyID, Sig: hex.EncodeToString(sig.Signature)})
		if k.Holder() != "" {
			resp.Holders = append(resp.Holders, k.Holder())
		}
	}
	return resp, nil
}

// ReadResponse reads and parses a response file.
func ReadResponse(file string) (*tuf.Response, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	raw, err := io.ReadAll(io.LimitReader(f, tuf.MaxResponseBytes+1))
	if err != nil {
		return nil, err
	}
	r, err := tuf.ParseResponse(raw)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	return r, nil
}

// CombineResult says what a combine wrote.
type CombineResult struct {
	Role    string       `json:"role"`
	Version int64        `json:"version"`
	Signers []tuf.Signer `json:"signers"`
	Dropped []string     `json:"dropped,omitempty"`
	Targets []string     `json:"targets_stored"`
}

// Combine merges responses into the bundle's metadata, verifies it against
// the repository's own view of the role's delegation, stores the target
// bytes the bundle carries, writes the role and refreshes snapshot and
// timestamp with the online key.
func Combine(repo *tuf.Repository, bundleDir string, responses []*tuf.Response, online hsm.Signer, now time.Time) (*CombineResult, error) {
	req, m, err := OpenBundle(bundleDir)
	if err != nil {
		return nil, err
	}
	p, err := req.Payload()
	if err != nil {
		return nil, err
	}
	if err := req.CheckUniqueKeys(); err != nil {
		return nil, err
	}
	if err := CheckRepositoryUniqueKeys(repo, req.Role); err != nil {
		return nil, err
	}
	if p.Root != nil {
		cur, err := repo.Root()
		if err != nil {
			return nil, err
		}
		c, err := tuf.CombineRoot(p, cur, nil, responses)
		if err != nil {
			return nil, err
		}
		p.Root.Signatures = c.Signatures
		res := &CombineResult{Role: req.Role, Version: p.Version, Signers: c.Verified.Signers, Dropped: c.Dropped}
		return res, repo.CommitRoot(p.Root, online, now)
	}
	d, err := repo.Delegation(req.Role)
	if err != nil {
		return nil, err
	}
	c, err := tuf.Combine(p, req.Role, d, nil, responses)
	if err != nil {
		return nil, err
	}
	res := &CombineResult{Role: req.Role, Version: p.Version, Signers: c.Verified.Signers, Dropped: c.Dropped}
	for _, t := range req.Targets {
		tf, ok := p.Targets.Signed.Targets[t.Path]
		if !ok {
			return nil, fmt.Errorf("bundle file %s backs target %s, which the metadata does not list", t.File, t.Path)
		}
		f, ok := m.File(t.File)
		if !ok {
			return nil, fmt.Errorf("bundle file %s backs target %s but is not in the bundle", t.File, t.Path)
		}
		if err := checkManifestFile(f, tf); err != nil {
			return nil, fmt.Errorf("bundle file %s does not match target %s: %w", t.File, t.Path, err)
		}
		data, err := readInBundle(bundleDir, t.File)
		if err != nil {
			return nil, err
		}
		if err := tf.VerifyLengthHashes(data); err != nil {
			return nil, fmt.Errorf("bundle file %s does not match target %s: %w", t.File, t.Path, err)
		}
		if err := repo.AddTargetFile(t.Path, data); err != nil {
			return nil, err
		}
		res.Targets = append(res.Targets, t.Path)
	}
	p.Targets.Signatures = c.Signatures
	return res, repo.CommitTargets(req.Role, p.Targets, online, now)
}

// checkManifestFile compares the length and hashes transfer/bundle measured
// with the target's signed ones before any bytes are read into memory.
func checkManifestFile(f bundle.File, tf *metadata.TargetFiles) error {
	if f.Size != tf.Length {
		return fmt.Errorf("%d bytes, the target says %d", f.Size, tf.Length)
	}
	for alg, want := range tf.Hashes {
		var got []byte
		switch alg {
		case "sha256":
			got = f.SHA256[:]
		case "sha512":
			got = f.SHA512[:]
		default:
			continue
		}
		if !bytes.Equal(got, want) {
			return fmt.Errorf("%s differs", alg)
		}
	}
	return nil
}

// readInBundle reads a file below dir without following links out of it.
func readInBundle(dir, name string) ([]byte, error) {
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, err
	}
	defer root.Close()
	return root.ReadFile(name)
}
