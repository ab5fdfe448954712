package appliance

import (
	"bytes"
	"crypto"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"

	"airlock.dev/airlock/appliance/audit"
	"airlock.dev/airlock/appliance/ledger"
	"airlock.dev/airlock/appliance/store"
	"airlock.dev/airlock/tuf"

	"github.com/theupdateframework/go-tuf/v2/metadata"
)

// File names in the appliance state directory (besides the ledger's and the
// audit log's own files).
const (
	RootFile        = "root.json"         // the pinned TUF root
	PolicyFile      = "policy.json"       // the appliance policy
	TrustedRootFile = "trusted_root.json" // the pinned Sigstore trusted root
	NPMKeysFile     = "npm-keys.json"     // npm registry attestation keys (optional)
	TPMAKFile       = "tpm-ak.pem"        // pinned TPM attestation key(s), PEM PUBLIC KEY blocks (optional)
	PIVRootsFile    = "piv-roots.pem"     // PIV attestation roots trusted besides Yubico's, PEM CERTIFICATE blocks (optional)
)

// Caps on state files.
const (
	MaxRootBytes        = 1 << 20
	MaxTrustedRootBytes = 1 << 20
	MaxNPMKeysBytes     = 64 << 10
	MaxTPMAKBytes       = 64 << 10
	MaxTPMAKs           = 16
	MaxPIVRootsBytes    = 256 << 10
	MaxPIVRoots         = 32
)

// StateDir is the appliance's open, locked state directory: pinned root,
// policy, Sigstore trust, ledger and audit log. It is owned by one process
// (see package store).
type StateDir struct {
	dir         *store.Dir
	Root        []byte // pinned root metadata, as written
	Policy      *Policy
	TrustedRoot []byte // nil when none is pinned: provenance then cannot verify
	NPMKeys     []byte
	// TPMAttestationKeys are the pinned TPM attestation keys (tpm-ak.pem)
	// that certify TPM-resident signing keys; the ceremony adds them to
	// its attest.Options.
	TPMAttestationKeys []crypto.PublicKey
	// PIVAttestationRoots are PIV attestation roots (piv-roots.pem)
	// trusted besides Yubico's: an organisation's own CA or another PIV
	// vendor's. The ceremony adds them to its attest.Options.
	PIVAttestationRoots []*x509.Certificate
	Ledger              *ledger.Ledger
	Audit               *audit.Log

	clock   Clock
	counter Counter // set by BindCounter
}

// Provision is what InitState writes into a new state directory.
type Provision struct {
	Root        []byte // a signed TUF root (trusted on first use, by the officers provisioning it)
	Policy      []byte
	TrustedRoot []byte // Sigstore trusted_root.json; optional
	NPMKeys     []byte // optional
	TPMAK       []byte // PEM public key(s) of the TPM attestation key; optional
	PIVRoots    []byte // PEM certificates of PIV attestation roots besides Yubico's; optional
}

// InitState provisions a new state directory. It refuses a directory that
// already holds a ledger, audit log or pinned root.
func InitState(path string, p Provision, clock Clock) error {
	root, err := tuf.ParseStrict[metadata.RootType](p.Root)
	if err != nil {
		return fmt.Errorf("init state: root: %w", err)
	}
	if err := tuf.VerifyTrustedRoot(root); err != nil {
		return fmt.Errorf("init state: root: %w", err)
	}
	if _, err := ParsePolicy(p.Policy); err != nil {
		return fmt.Errorf("init state: %w", err)
	}
	if len(p.TrustedRoot) > MaxTrustedRootBytes || len(p.NPMKeys) > MaxNPMKeysBytes {
		return errors.New("init state: trusted root or npm keys over their caps")
	}
	if len(p.TPMAK) > 0 {
		if _, err := ParseTPMAK(p.TPMAK); err != nil {
			return fmt.Errorf("init state: %w", err)
		}
	}
	if len(p.PIVRoots) > 0 {
		if _, err := ParsePIVRoots(p.PIVRoots); err != nil {
			return fmt.Errorf("init state: %w", err)
		}
	}
	d, err := store.OpenDir(path)
	if err != nil {
		return fmt.Errorf("init state: %w", err)
	}
	defer d.Close()
	if ok, err := d.Exists(RootFile); err != nil || ok {
		return fmt.Errorf("init state: %s already holds a pinned root: a state directory is provisioned once", d.Path())
	}
	if err := ledger.Init(d); err != nil {
		return fmt.Errorf("init state: %w", err)
	}
	if err := audit.Init(d); err != nil {
		return fmt.Errorf("init state: %w", err)
	}
	files := []struct {
		name string
		b    []byte
	}{{PolicyFile, p.Policy}, {TrustedRootFile, p.TrustedRoot}, {NPMKeysFile, p.NPMKeys}, {TPMAKFile, p.TPMAK}, {PIVRootsFile, p.PIVRoots}, {RootFile, p.Root}}
	for _, f := range files {
		if len(f.b) == 0 {
			continue
		}
		if err := d.WriteFile(f.name, f.b); err != nil {
			return fmt.Errorf("init state: %w", err)
		}
	}
	log, err := audit.Open(d, clock.Now)
	if err != nil {
		return fmt.Errorf("init state: %w", err)
	}
	_, _, err = log.Append(audit.Entry{
		Time: clock.Now(), Ceremony: audit.ApplianceCeremony, Step: "provision", Outcome: audit.OutcomeOK,
		Hashes: []audit.Hash{{Name: "root", Sum: sha(p.Root)}, {Name: "policy", Sum: sha(p.Policy)}},
		Detail: fmt.Sprintf("state provisioned with root version %d", root.Signed.Version),
	})
	return err
}

// OpenState opens and locks a provisioned state directory and reads and
// verifies everything in it.
func OpenState(path string, clock Clock) (*StateDir, error) {
	if clock == nil {
		clock = SystemClock
	}
	// A mistyped path must not become a new, empty state directory.
	if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("state %s does not exist: give the appliance state directory, or provision one with airlock-appliance init-state", path)
	}
	d, err := store.OpenDir(path)
	if err != nil {
		return nil, err
	}
	s := &StateDir{dir: d, clock: clock}
	fail := func(err error) (*StateDir, error) {
		d.Close()
		return nil, err
	}
	if s.Root, err = d.ReadFile(RootFile, MaxRootBytes); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return fail(fmt.Errorf("state %s has no pinned root: provision it with airlock-appliance init-state", d.Path()))
		}
		return fail(fmt.Errorf("state: %w", err))
	}
	if _, err := tuf.ParseStrict[metadata.RootType](s.Root); err != nil {
		return fail(fmt.Errorf("state: pinned root: %w", err))
	}
	pb, err := d.ReadFile(PolicyFile, MaxPolicyBytes)
	if err != nil {
		return fail(fmt.Errorf("state: %w", err))
	}
	if s.Policy, err = ParsePolicy(pb); err != nil {
		return fail(fmt.Errorf("state: %w", err))
	}
	if s.TrustedRoot, err = readOptional(d, TrustedRootFile, MaxTrustedRootBytes); err != nil {
		return fail(err)
	}
	if s.NPMKeys, err = readOptional(d, NPMKeysFile, MaxNPMKeysBytes); err != nil {
		return fail(err)
	}
	ak, err := readOptional(d, TPMAKFile, MaxTPMAKBytes)
	if err != nil {
		return fail(err)
	}
	if len(ak) > 0 {
		if s.TPMAttestationKeys, err = ParseTPMAK(ak); err != nil {
			return fail(fmt.Errorf("state: %w", err))
		}
	}
	roots, err := readOptional(d, PIVRootsFile, MaxPIVRootsBytes)
	if err != nil {
		return fail(err)
	}
	if len(roots) > 0 {
		if s.PIVAttestationRoots, err = ParsePIVRoots(roots); err != nil {
			return fail(fmt.Errorf("state: %w", err))
		}
	}
	if s.Ledger, err = ledger.Open(d); err != nil {
		return fail(fmt.Errorf("state: %w", err))
	}
	if s.Audit, err = audit.Open(d, clock.Now); err != nil {
		return fail(fmt.Errorf("state: %w", err))
	}
	if err := checkBinding(s.Ledger, s.Audit); err != nil {
		return fail(fmt.Errorf("state: %w", err))
	}
	return s, nil
}

// LedgerHashName names the hash, in audit entries, of the ledger file
// current when the entry was written.
const LedgerHashName = "ledger"

// checkBinding checks that the ledger and the audit log belong together:
// the newest audit entry that names a ledger names this ledger file (or,
// after a crash between writing the ledger and the next audit entry, the
// file this one replaced, with no audit entry after the head the ledger
// recorded), and the audit head the ledger recorded is still in the log.
// It detects an older copy of ledger.json, and an audit log rewritten
// before the last signing.
func checkBinding(l *ledger.Ledger, log *audit.Log) error {
	b := l.Binding()
	es := log.Entries()
	if b.HasAuditHead {
		n := b.AuditHead.Entries
		if n > int64(len(es)) {
			return fmt.Errorf("%w: the ledger was written after audit entry %d, the audit log holds %d: the audit log lost entries or the ledger is not this log's", ledger.ErrCorrupt, n, len(es))
		}
		if audit.EntrySum(es[n-1]) != b.AuditHead.Last {
			return fmt.Errorf("%w: audit entry %d is not the one the ledger recorded: the audit log was rewritten", ledger.ErrCorrupt, n-1)
		}
	}
	sum := l.Sum()
	for i := len(es) - 1; i >= 0; i-- {
		for _, h := range es[i].Hashes {
			if h.Name != LedgerHashName {
				continue
			}
			if h.Sum == sum {
				return nil
			}
			if b.HasPrev && h.Sum == b.Prev && b.HasAuditHead && int64(i) < b.AuditHead.Entries {
				return nil // crash between the ledger write and the next audit entry
			}
			return fmt.Errorf("%w: ledger.json is not the ledger the audit log last recorded (audit entry %d names ledger sha256:%x, the file is sha256:%x): an older copy may have been restored; signing is refused, have the security officer compare it with the exported ceremony records", ledger.ErrCorrupt, i, h.Sum, sum)
		}
	}
	return nil
}

// ParseTPMAK parses the pinned TPM attestation keys: one or more PEM
// "PUBLIC KEY" blocks (PKIX), nothing else.
func ParseTPMAK(b []byte) ([]crypto.PublicKey, error) {
	return parsePEMFile(TPMAKFile, b, pemRule{typ: "PUBLIC KEY", maxBytes: MaxTPMAKBytes, max: MaxTPMAKs,
		what: "keys", hint: " (export the attestation key with airlock-tpm)"},
		func(n int, der []byte) (crypto.PublicKey, error) {
			k, err := x509.ParsePKIXPublicKey(der)
			if err != nil {
				return nil, fmt.Errorf("key %d: %w", n, err)
			}
			return k, nil
		})
}

// ParsePIVRoots parses the PIV attestation roots trusted besides Yubico's:
// one or more PEM "CERTIFICATE" blocks of CA certificates, nothing else.
func ParsePIVRoots(b []byte) ([]*x509.Certificate, error) {
	return parsePEMFile(PIVRootsFile, b, pemRule{typ: "CERTIFICATE", maxBytes: MaxPIVRootsBytes, max: MaxPIVRoots, what: "certificates"},
		func(n int, der []byte) (*x509.Certificate, error) {
			c, err := x509.ParseCertificate(der)
			if err != nil {
				return nil, fmt.Errorf("certificate %d: %w", n, err)
			}
			if !c.IsCA {
				return nil, fmt.Errorf("certificate %d (%s) is not a CA certificate: give the vendor's attestation root", n, c.Subject)
			}
			return c, nil
		})
}

// pemRule is what a state file of PEM blocks must be.
type pemRule struct {
	typ      string // the only block type allowed
	maxBytes int    // cap on the file
	max      int    // cap on the blocks
	what     string // the blocks, in errors ("keys")
	hint     string // appended to the error for an empty or mixed file
}

// parsePEMFile parses one or more PEM blocks of r.typ, each with parse
// (given its 1-based number), and refuses anything else in the file.
func parsePEMFile[T any](name string, b []byte, r pemRule, parse func(n int, der []byte) (T, error)) ([]T, error) {
	if len(b) > r.maxBytes {
		return nil, fmt.Errorf("%s: %d bytes, over the %d-byte cap", name, len(b), r.maxBytes)
	}
	var out []T
	rest := b
	for {
		var blk *pem.Block
		blk, rest = pem.Decode(rest)
		if blk == nil {
			break
		}
		if blk.Type != r.typ {
			return nil, fmt.Errorf("%s: pem block %q: want %s blocks only", name, blk.Type, r.typ)
		}
		if len(out) == r.max {
			return nil, fmt.Errorf("%s: more than %d %s", name, r.max, r.what)
		}
		v, err := parse(len(out)+1, blk.Bytes)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		out = append(out, v)
	}
	if len(out) == 0 || len(bytes.TrimSpace(rest)) != 0 {
		return nil, fmt.Errorf("%s: want one or more PEM %s blocks and nothing else%s", name, r.typ, r.hint)
	}
	return out, nil
}

func readOptional(d *store.Dir, name string, limit int64) ([]byte, error) {
	b, err := d.ReadFile(name, limit)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("state: %w", err)
	}
	return b, nil
}

// Path is the state directory's path.
func (s *StateDir) Path() string { return s.dir.Path() }

// Close releases the state directory's lock.
func (s *StateDir) Close() error { return s.dir.Close() }

// pinRootVerified replaces the pinned root. Callers must have verified that
// next is signed by a threshold of the pinned root's keys and of its own.
func (s *StateDir) pinRootVerified(next []byte) error {
	if err := s.dir.WriteFile(RootFile, next); err != nil {
		return fmt.Errorf("pin new root: %w", err)
	}
	s.Root = next
	return nil
}
