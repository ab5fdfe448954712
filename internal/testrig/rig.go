// Package testrig is the two-holder hardware setup of the end-to-end tests,
// imported only by tests: an emulated YubiKey reached through piv-go,
// libpcsclite, a private pcscd and vsmartcard-vpcd (hsm/piv/pivtest,
// hsm/piv/pivemu), and a key in a TPM (the simulator or swtpm,
// hsm/tpm/tpmtest), each enrolled for its holder; a development repository
// whose role is delegated 2 of 2 to the two keys; an appliance state that
// trusts the emulator's attestation CA and the TPM's attestation key; and
// a driver for the appliance's signing ceremony with a scripted UI.
//
// Nothing of the signing path is replaced: keys are enrolled and opened by
// URI through the product's hsm packages, and the ceremony is appliance.New
// and Run. Start needs what pivtest.Start and the TPM helper need (root,
// pcscd, vpcd, swtpm); it fails the test naming what is missing.
package testrig

import (
	"context"
	"crypto"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/theupdateframework/go-tuf/v2/metadata"

	"airlock.dev/airlock/appliance"
	"airlock.dev/airlock/hsm"
	"airlock.dev/airlock/hsm/attest"
	"airlock.dev/airlock/hsm/hsmtest"
	"airlock.dev/airlock/hsm/piv"
	"airlock.dev/airlock/hsm/piv/pivemu"
	"airlock.dev/airlock/hsm/piv/pivtest"
	"airlock.dev/airlock/hsm/tpm"
	"airlock.dev/airlock/tuf"
)

// The two holders.
const (
	Alice = "Alice Example" // holds the YubiKey
	Bob   = "Bob Example"   // holds the TPM key
)

// YubiKeyPIN is the emulated card's PIN (the YubiKey default).
const YubiKeyPIN = "123456"

// Config chooses the hardware of a rig.
type Config struct {
	// Serial is the emulated YubiKey's serial number.
	Serial uint32
	// TPM starts the TPM and returns its device: tpmtest.Simulator or
	// tpmtest.Swtpm.
	TPM func(testing.TB) string
	// TPMHandle is the persistent handle of Bob's key; TPMPIN its PIN.
	TPMHandle uint32
	TPMPIN    string
	// TouchPolicy, when not 0, is forced on the YubiKey's key (as a card
	// configured otherwise would make it): pivemu.TouchPolicyNever, ...
	TouchPolicy byte
}

// Hardware is the two holders' enrolled keys.
type Hardware struct {
	cfg        Config
	Env        *pivtest.Env
	Card       *pivemu.Card
	CA         *pivemu.AttestationCA // the emulator's attestation CA (not Yubico's)
	YubiKeyURI hsm.URI
	TPMURI     hsm.URI
	TPMDevice  string
	TPMAK      crypto.PublicKey // the TPM's attestation key

	// OnTouch, when set, runs while the card waits for a touch; TimeOut
	// makes the next touch time out (the card answers as a YubiKey whose
	// touch timeout passed).
	OnTouch atomic.Pointer[func()]
	TimeOut atomic.Bool
}

// Start starts pcscd with vpcd and the TPM, inserts an emulated YubiKey and
// enrols a key on each: Alice's on the card (PIN and touch always), Bob's
// in the TPM (PIN always). Everything is stopped when the test ends.
func Start(t testing.TB, cfg Config) *Hardware {
	t.Helper()
	if cfg.Serial == 0 || cfg.TPM == nil || cfg.TPMHandle == 0 || cfg.TPMPIN == "" {
		t.Fatal("testrig.Start: Serial, TPM, TPMHandle and TPMPIN are required")
	}
	ctx := context.Background()
	h := &Hardware{cfg: cfg}
	h.Env = pivtest.Start(t)
	ca, err := pivemu.NewAttestationCA()
	if err != nil {
		t.Fatal(err)
	}
	h.CA = ca
	h.Card, err = pivemu.New(pivemu.Config{Serial: cfg.Serial, CA: ca,
		Touch: func() {
			if f := h.OnTouch.Load(); f != nil {
				(*f)()
			}
		},
		TouchTimedOut:    func() bool { return h.TimeOut.CompareAndSwap(true, false) },
		ForceTouchPolicy: cfg.TouchPolicy,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.Card.Remove)
	h.Env.Insert(t, h.Card, 0)
	ye, err := piv.Enroll(ctx, cfg.Serial, piv.EnrollOptions{Holder: Alice, Prompter: &hsmtest.ScriptedPrompter{PINs: PINs(YubiKeyPIN, 1)}})
	if err != nil {
		t.Fatalf("enrol yubikey: %v", err)
	}
	if err := ye.Signer.(hsm.Closer).Close(); err != nil {
		t.Fatal(err)
	}
	h.YubiKeyURI = ye.URI

	h.TPMDevice = cfg.TPM(t)
	te, err := tpm.Enroll(ctx, h.TPMDevice, tpm.EnrollOptions{Handle: cfg.TPMHandle, PIN: []byte(cfg.TPMPIN), Holder: Bob})
	if err != nil {
		t.Fatalf("enrol tpm: %v", err)
	}
	h.TPMURI = te.URI
	if h.TPMAK, err = tpm.AttestationKey(ctx, h.TPMDevice); err != nil {
		t.Fatal(err)
	}
	return h
}

// PINs is p repeated n times, for a hsmtest.ScriptedPrompter.
func PINs(p string, n int) [][]byte {
	var out [][]byte
	for range n {
		out = append(out, []byte(p))
	}
	return out
}

// PINsByHolder is each holder's right PIN, for a ScriptedUI.
func (h *Hardware) PINsByHolder() map[string][]string {
	return map[string][]string{Alice: {YubiKeyPIN}, Bob: {h.cfg.TPMPIN}}
}

// URIs are the two keys, YubiKey first, as the appliance is given them.
func (h *Hardware) URIs() appliance.KeyURIs {
	return appliance.KeyURIs{h.YubiKeyURI.String(), h.TPMURI.String()}
}

// Open opens a key by URI through hsm.Open and closes it when the test
// ends.
func Open(t testing.TB, uri hsm.URI, p hsm.Prompter) hsm.Signer {
	t.Helper()
	s, err := hsm.Open(context.Background(), uri, p)
	if err != nil {
		t.Fatalf("open %s: %v", uri, err)
	}
	t.Cleanup(func() {
		if c, ok := s.(hsm.Closer); ok {
			c.Close()
		}
	})
	return s
}

// Keys returns the two keys as TUF keys, with their holders and
// attestations, YubiKey first. The keys are closed again: a YubiKey is
// held exclusively while open.
func (h *Hardware) Keys(t testing.TB) []*metadata.Key {
	t.Helper()
	var keys []*metadata.Key
	for _, u := range []hsm.URI{h.YubiKeyURI, h.TPMURI} {
		s, err := hsm.Open(context.Background(), u, &hsmtest.ScriptedPrompter{})
		if err != nil {
			t.Fatalf("open %s: %v", u, err)
		}
		k, err := tuf.KeyFromSigner(s)
		if c, ok := s.(hsm.Closer); ok {
			c.Close()
		}
		if err != nil {
			t.Fatal(err)
		}
		keys = append(keys, k)
	}
	return keys
}

// AttestOptions trust the emulator's attestation CA in place of Yubico's
// roots, and pin no TPM attestation key (the appliance takes it from its
// state).
func (h *Hardware) AttestOptions() attest.Options {
	pool := x509.NewCertPool()
	pool.AddCert(h.CA.Root)
	return attest.Options{YubicoRoots: pool}
}

// PIVRootsPEM is the emulator's attestation CA as airlock-appliance
// init-state --piv-roots takes it.
func (h *Hardware) PIVRootsPEM() []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: h.CA.Root.Raw})
}

// TPMAKPEM is the TPM's attestation key as airlock-appliance init-state
// --tpm-ak takes it.
func (h *Hardware) TPMAKPEM(t testing.TB) []byte {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(h.TPMAK)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
}

// RolePolicy is the appliance policy of a role the two hold: both must
// approve, with a YubiKey and a TPM key whose attestations show hardware,
// PIN always and touch always (a TPM, having no touch sensor, is waived).
func RolePolicy() appliance.RolePolicy {
	return appliance.RolePolicy{
		Holders:     []string{Alice, Bob},
		KeyKinds:    []hsm.Kind{hsm.KindYubiKey, hsm.KindTPM},
		Attestation: attest.Policy{RequireHardware: true, RequirePINAlways: true, RequireTouchAlways: true},
	}
}

// Repo is a development repository whose role is delegated to the two
// hardware keys; root, targets and the online role have file keys.
type Repo struct {
	*tuf.Repository
	Dir       string     // the repository folder (metadata/, targets/)
	RootFile  string     // metadata/1.root.json
	Online    hsm.Signer // the online role's key
	OnlineURI string     // its URI, as airlock gate --online-key takes it
}

// Repository makes a repository in a new folder under dir whose top-level
// targets delegate d to the two hardware keys, 2 of 2 unless d says
// otherwise. d.Keys must be empty.
func (h *Hardware) Repository(t testing.TB, dir string, now time.Time, d tuf.DelegationSpec) *Repo {
	t.Helper()
	if len(d.Keys) != 0 {
		t.Fatal("testrig: Repository delegates to the hardware keys; leave DelegationSpec.Keys empty")
	}
	d.Keys = h.Keys(t)
	if d.Threshold == 0 {
		d.Threshold = 2
	}
	key := func(name string) hsm.Signer {
		s, err := hsm.GenerateFileKey(filepath.Join(dir, name+".pem"), hsm.ECDSAP256, name, nil)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	root, targets, onl := key("root"), key("targets"), key("online")
	r := &Repo{Dir: filepath.Join(dir, "repo"), Online: onl, OnlineURI: "file:" + filepath.Join(dir, "online.pem")}
	r.RootFile = filepath.Join(r.Dir, "metadata", "1.root.json")
	var err error
	r.Repository, err = tuf.Init(r.Dir, tuf.InitOptions{
		Root: []hsm.Signer{root}, RootThreshold: 1, Targets: []hsm.Signer{targets}, TargetsThreshold: 1,
		Online: onl, Now: now,
	})
	if err != nil {
		t.Fatal(err)
	}
	next, err := r.NextTargets("targets", now.Add(30*24*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if err := tuf.SetDelegation(next, d); err != nil {
		t.Fatal(err)
	}
	td, err := r.Delegation("targets")
	if err != nil {
		t.Fatal(err)
	}
	if err := tuf.SignAll(next, td, []hsm.Signer{targets}); err != nil {
		t.Fatal(err)
	}
	if err := r.CommitTargets("targets", next, onl, now); err != nil {
		t.Fatal(err)
	}
	return r
}

// Provision is what an appliance state is provisioned with.
type Provision struct {
	RootFile string           // the signed root to pin
	Policy   appliance.Policy // the appliance policy
	// PinAK pins the TPM's attestation key (init-state --tpm-ak);
	// PIVRoots trusts the emulator's attestation CA (init-state
	// --piv-roots).
	PinAK, PIVRoots bool
	// Edit, when set, changes what init-state writes.
	Edit func(*appliance.Provision)
}

// State provisions a new appliance state directory under dir, as
// airlock-appliance init-state does, opens it and closes it when the test
// ends.
func (h *Hardware) State(t testing.TB, dir string, p Provision, clock appliance.Clock) *appliance.StateDir {
	t.Helper()
	root, err := os.ReadFile(p.RootFile)
	if err != nil {
		t.Fatal(err)
	}
	pol, err := json.Marshal(p.Policy)
	if err != nil {
		t.Fatal(err)
	}
	ap := appliance.Provision{Root: root, Policy: pol}
	if p.PinAK {
		ap.TPMAK = h.TPMAKPEM(t)
	}
	if p.PIVRoots {
		ap.PIVRoots = h.PIVRootsPEM()
	}
	if p.Edit != nil {
		p.Edit(&ap)
	}
	parent, err := os.MkdirTemp(dir, "state-")
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(parent, "state")
	if err := appliance.InitState(path, ap, clock); err != nil {
		t.Fatal(err)
	}
	st, err := appliance.OpenState(path, clock)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}
