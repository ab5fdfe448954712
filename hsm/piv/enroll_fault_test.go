//go:build cgo && linux

package piv_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"airlock.dev/airlock/hsm"
	"airlock.dev/airlock/hsm/piv"
	"airlock.dev/airlock/hsm/piv/pivemu"
	"airlock.dev/airlock/hsm/piv/pivtest"
)

// enrolmentWrites are the commands of an enrolment on a factory card that
// change the card, in the order sent, with what a card pulled out around
// each leaves behind. docs/hardware.md states the same table. Every other
// command only reads. Once GENERATE has run, the slot holds a key and the
// next enrolment must be told to overwrite it (--really-overwrite-slot,
// with the typed serial); before, running enrolment again is enough.
var enrolmentWrites = []struct {
	cmd    string
	leaves string
}{
	{"PUT DATA 5fc109", "new management key stored PIN-protected; the card still opens with the factory key: the next enrolment finishes the switch"},
	{"SET MANAGEMENT KEY", "the card opens with the stored key (or still the factory one): the next enrolment goes on from there"},
	{"PUT DATA 5fff00", "the ykman flag set or not: the next enrolment sets it if missing"},
	{"GENERATE 9c", "a key in the slot, no certificate: enrol again with --really-overwrite-slot"},
	{"PUT DATA 5fc10a (chained)", "as above"},
	{"PUT DATA", "as above (last part of the certificate)"},
}

// TestEnrollInterruptedAtEveryCommand pulls the card out at every command
// APDU of an enrolment — once before the card acts on it, once after it
// acted but before the answer reached the host — and checks that the
// failed enrolment says to insert the key and try again, and that the next
// enrolment succeeds and leaves a card that signs, with the management key
// stored PIN-protected and flagged for ykman.
func TestEnrollInterruptedAtEveryCommand(t *testing.T) {
	env := pivtest.Start(t)
	ca, err := pivemu.NewAttestationCA()
	if err != nil {
		t.Fatal(err)
	}
	serial := uint32(2_000_000)
	fresh := func(t *testing.T) *pivemu.Card {
		serial++
		card := newCard(t, pivemu.Config{Serial: serial, CA: ca})
		env.Insert(t, card, 0)
		card.ResetCommands()
		return card
	}

	// A clean enrolment gives the command sequence.
	card := fresh(t)
	e, err := piv.Enroll(context.Background(), card.Serial(), piv.EnrollOptions{Prompter: newRecorder(pins(testPIN)...)})
	if err != nil {
		t.Fatalf("clean enrolment: %v", err)
	}
	e.Signer.(hsm.Closer).Close()
	steps := card.Commands()
	env.Remove(t, card)
	var writes []string
	generateAt := -1
	for i, c := range steps {
		if strings.HasPrefix(c, "PUT DATA") || c == "SET MANAGEMENT KEY" || strings.HasPrefix(c, "GENERATE") {
			writes = append(writes, c)
		}
		if c == "GENERATE 9c" {
			generateAt = i
		}
	}
	var want []string
	for _, w := range enrolmentWrites {
		want = append(want, w.cmd)
	}
	if d := cmp.Diff(want, writes); d != "" {
		t.Fatalf("an enrolment writes other commands than the table states (-table +sent):\n%s\nall commands: %q", d, steps)
	}

	for i, cmd := range steps {
		for _, fault := range []pivemu.Fault{pivemu.PullBefore, pivemu.PullAfter} {
			t.Run(fmt.Sprintf("%02d %s %s", i+1, fault, cmd), func(t *testing.T) {
				card := fresh(t)
				card.PullAt(i+1, fault)
				if got := enrollInChild(t, card.Serial()); !strings.HasPrefix(got, "not found: ") || !strings.Contains(got, "insert the key and try again") {
					t.Fatalf("enrolment with the card pulled: %q, want ErrNotFound saying to insert the key and try again", got)
				}
				if card.Inserted() {
					t.Fatal("the card was not pulled: the enrolment sent fewer commands than the clean one")
				}
				env.WaitGone(t, card)
				env.Replug(t, card, 0)

				slotTaken := i > generateAt || (i == generateAt && fault == pivemu.PullAfter)
				if card.HasKey(0x9c) != slotTaken {
					t.Fatalf("slot 9c holds a key: %v, want %v", card.HasKey(0x9c), slotTaken)
				}
				var asked int
				e, err := piv.Enroll(context.Background(), card.Serial(), piv.EnrollOptions{
					Prompter: newRecorder(pins(testPIN, testPIN)...), ReallyOverwriteExistingKey: true,
					ConfirmOverwrite: func(string) error { asked++; return nil },
				})
				if err != nil {
					t.Fatalf("enrolment after the pull: %v", err)
				}
				defer e.Signer.(hsm.Closer).Close()
				if want := map[bool]int{true: 1, false: 0}[slotTaken]; asked != want {
					t.Errorf("typed confirmation asked %d times, want %d", asked, want)
				}
				d, sig, err := signDigest(e.Signer, "after the pull")
				if err != nil || !ecdsa.VerifyASN1(e.Public.(*ecdsa.PublicKey), d, sig) {
					t.Fatalf("signing after the pull: %v", err)
				}
				checkManagementKeyStored(t, card)
			})
		}
	}
}

// The interrupted enrolment runs in a child process, as airlock key enroll
// does: piv-go v2.6.0 keeps its exclusive hold on a reader when the card
// goes away during the SELECT that opens a connection, and only the end of
// the process releases it.
const enrollChildEnv = "AIRLOCK_PIVTEST_ENROLL_SERIAL"

func TestMain(m *testing.M) {
	if v := os.Getenv(enrollChildEnv); v != "" {
		os.Exit(enrollChild(v))
	}
	os.Exit(m.Run())
}

// enrollChild enrols the card with this serial and prints the outcome:
// "enrolled", "not found: ERR" or "error: ERR".
func enrollChild(serial string) int {
	n, err := strconv.ParseUint(serial, 10, 32)
	if err != nil {
		fmt.Println("error: bad serial", serial)
		return 1
	}
	p := &onePINPrompter{pin: []byte(testPIN)}
	e, err := piv.Enroll(context.Background(), uint32(n), piv.EnrollOptions{Prompter: p})
	switch {
	case err == nil:
		e.Signer.(hsm.Closer).Close()
		fmt.Println("enrolled")
	case errors.Is(err, hsm.ErrNotFound):
		fmt.Println("not found:", err)
	default:
		fmt.Println("error:", err)
	}
	return 0
}

// onePINPrompter answers every PIN prompt with one PIN.
type onePINPrompter struct{ pin []byte }

func (p *onePINPrompter) PIN(context.Context, hsm.PINRequest) ([]byte, error) {
	return bytes.Clone(p.pin), nil
}

func (p *onePINPrompter) Touch(context.Context, hsm.URI) func() { return func() {} }

func enrollInChild(t *testing.T, serial uint32) string {
	t.Helper()
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), enrollChildEnv+"="+strconv.FormatUint(uint64(serial), 10))
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("enrolment process: %v\n%s", err, out)
	}
	return strings.TrimSpace(string(out))
}

// checkManagementKeyStored reads back what enrolment leaves on the card:
// a random management key, the same key in the PIN-protected object
// 5FC109 (88 { 89 KEY }), and the ADMIN DATA object 5FFF00 exactly as
// ykman writes it for a PIN-protected stored key: 80 03 81 01 02.
func checkManagementKeyStored(t *testing.T, card *pivemu.Card) {
	t.Helper()
	mk := card.ManagementKey()
	if bytes.Equal(mk, pivemu.DefaultManagementKey) {
		t.Error("the card still has the factory management key")
	}
	if got, want := card.Object(0x5fc109), append([]byte{0x88, 0x1a, 0x89, 0x18}, mk...); !bytes.Equal(got, want) {
		t.Errorf("object 5fc109 = % x, want 88 1a 89 18 and the card's management key", got)
	}
	if got, want := card.Object(0x5fff00), []byte{0x80, 0x03, 0x81, 0x01, 0x02}; !bytes.Equal(got, want) {
		t.Errorf("object 5fff00 = % x, want % x (ykman: management key stored, pin-protected)", got, want)
	}
}

// TestEnrollWritesAdminDataAsYkman: enrolment sets the "management key
// stored, PIN-protected" flag in ADMIN DATA (5FFF00) the way ykman writes
// it, keeping what ykman wrote there before (here the PUK-blocked flag and
// a PIN timestamp), and writes nothing when the flag is already set.
func TestEnrollWritesAdminDataAsYkman(t *testing.T) {
	env := pivtest.Start(t)
	card := newCard(t, pivemu.Config{Serial: 1014})
	card.PutObjectInsecure(0x5fff00, []byte{0x80, 0x09, 0x81, 0x01, 0x01, 0x83, 0x04, 0x00, 0x00, 0x01, 0x00})
	env.Insert(t, card, 0)
	e := enroll(t, card.Serial(), "", newRecorder(pins(testPIN)...))
	e.Signer.(hsm.Closer).Close()
	if got, want := card.Object(0x5fff00), []byte{0x80, 0x09, 0x81, 0x01, 0x03, 0x83, 0x04, 0x00, 0x00, 0x01, 0x00}; !bytes.Equal(got, want) {
		t.Fatalf("5fff00 = % x, want % x (flags 01|02, timestamp kept)", got, want)
	}
	card.ResetCommands()
	e, err := piv.Enroll(context.Background(), card.Serial(), piv.EnrollOptions{
		Prompter: newRecorder(pins(testPIN)...), ReallyOverwriteExistingKey: true,
		ConfirmOverwrite: func(string) error { return nil },
	})
	if err != nil {
		t.Fatal(err)
	}
	e.Signer.(hsm.Closer).Close()
	for _, c := range card.Commands() {
		if c == "PUT DATA 5fff00" {
			t.Error("a second enrolment rewrote 5fff00 although the flag was set")
		}
	}
}
