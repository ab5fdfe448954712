// Command airlock-appliance is the offline side of Airlock: with no
// arguments it starts the terminal UI of the signing appliance; review shows
// the review model of a release bundle, sign runs a scripted ceremony under
// exactly the same rules, and init-state provisions the appliance state.
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"airlock.dev/airlock/appliance"
	"airlock.dev/airlock/appliance/content"
	"airlock.dev/airlock/appliance/provenance"
	"airlock.dev/airlock/hsm"
	_ "airlock.dev/airlock/hsm/piv"
	"airlock.dev/airlock/hsm/tpm"
	"airlock.dev/airlock/internal/cli"
	"airlock.dev/airlock/internal/sinks"
	"airlock.dev/airlock/transfer/bundle"
)

// Version is set at release build time with -ldflags "-X main.Version=...".
var Version = ""

const usage = `airlock-appliance: the offline Airlock signing appliance

usage: airlock-appliance [--demo]            start the terminal ui
       airlock-appliance COMMAND [flags]

commands:
  review      verify a release bundle and print its review model (no signing)
  sign        run a scripted signing ceremony with the same rules as the ui
  export      write a kept signed response out again (nothing is signed)
  init-state  provision a new appliance state directory
  self-test   check the machine: TPM, no network, module lock, lockdown,
              read-only verity root, writable state, USB read without mounting

examples:
  airlock-appliance init-state --state /var/lib/airlock --root 1.root.json --policy policy.json \
      --trusted-root trusted_root.json
  airlock-appliance review --state /var/lib/airlock bundle --json
  airlock-appliance sign --state /var/lib/airlock bundle --key 'yubikey:serial=12345678;slot=9c' \
      --key tpm:handle=0x81000010 --out response
  airlock-appliance sign --dev --date 2025-06-02 --confirm-fingerprint HEX --state st bundle \
      --key file:alice.pem --key file:bob.pem --out response
  airlock-appliance sign --state /var/lib/airlock bundle --key ... --export-usb /dev/sdb
  airlock-appliance export --state /var/lib/airlock --out response-again
  airlock-appliance --demo

Input and output flags are named the same everywhere: --bundle and --usb
name where the bundle comes from, --out and --export-usb where the response
goes. Run airlock-appliance COMMAND -h for a command's flags.
Exit status: 0 success, 1 refused or failed, 2 usage error.
`

func main() {
	appliance.LimitMemory()
	os.Exit(run(context.Background(), os.Args[1:], os.Stdout, os.Stderr))
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "--demo" || args[0] == "-demo" {
		return cli.Exit("airlock-appliance", stderr, startTUI(ctx, args, stdout, stderr))
	}
	switch args[0] {
	case "-h", "--help", "help":
		fmt.Fprint(stderr, usage)
		return 0
	case "-version", "--version", "version":
		fmt.Fprintln(stdout, "airlock-appliance", version())
		return 0
	case "review":
		return cli.Exit("airlock-appliance review", stderr, cmdReview(ctx, args[1:], stdout, stderr))
	case "sign":
		return cli.Exit("airlock-appliance sign", stderr, cmdSign(ctx, args[1:], stdout, stderr))
	case "init-state":
		return cli.Exit("airlock-appliance init-state", stderr, cmdInitState(args[1:], stdout, stderr))
	case "export":
		return cli.Exit("airlock-appliance export", stderr, cmdExport(ctx, args[1:], stdout, stderr))
	case "self-test":
		return cli.Exit("airlock-appliance self-test", stderr, cmdSelfTest(ctx, args[1:], stdout, stderr))
	}
	if strings.HasPrefix(args[0], "-") {
		return cli.Exit("airlock-appliance", stderr, startTUI(ctx, args, stdout, stderr))
	}
	return cli.Exit("airlock-appliance", stderr, cli.Usagef("unknown command %q (commands: review, sign, export, init-state, self-test)", args[0]))
}

func version() string { return cli.Version(Version) }

// parseInterleaved parses flags that may come before or after positional
// arguments.
func parseInterleaved(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := cli.Parse(fs, args); err != nil {
			return nil, err
		}
		args = fs.Args()
		if len(args) == 0 {
			return pos, nil
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
}

const initStateUsage = `usage: airlock-appliance init-state --state DIR --root ROOT.json --policy POLICY.json --trusted-root trusted_root.json
           [--npm-keys npm-keys.json] [--tpm-ak tpm-ak.pem] [--piv-roots ROOTS.pem] [--key URI...] [--reprovision]

Provisions the appliance state: the pinned TUF root, the policy (its format
is in README.md, "The policy file") and the Sigstore trusted root that
provenance is verified against. A state directory is provisioned once;
--reprovision replaces the root, policy and trust of a provisioned one after
copying it whole into DIR.backup-TIME, and keeps its ledger and audit log.
--key (repeat) writes the holders' key URIs into DIR/keys.txt; the terminal
ui started without --key (as the appliance image starts it) uses them.
File names are relative to the working directory.

examples:
  airlock-appliance init-state --state /var/lib/airlock --root repo/metadata/1.root.json \
      --policy policy.json --trusted-root trusted_root.json --tpm-ak tpm-ak.pem \
      --key tpm:handle=0x81000010 --key 'yubikey:serial=12345678;slot=9c'
  airlock-appliance init-state --state /var/lib/airlock --root repo/metadata/2.root.json \
      --policy policy.json --trusted-root trusted_root.json --reprovision
`

func cmdInitState(args []string, stdout, stderr io.Writer) error {
	fs := cli.NewFlagSet("airlock-appliance init-state", initStateUsage, stderr)
	state := fs.String("state", "", "state directory to create")
	root := fs.String("root", "", "signed TUF root to pin")
	policy := fs.String("policy", "", "appliance policy file")
	trusted := fs.String("trusted-root", "", "sigstore trusted_root.json to pin (provenance is verified against it)")
	npm := fs.String("npm-keys", "", "npm registry keys (optional)")
	tpmAK := fs.String("tpm-ak", "", "PEM public key of the appliance TPM's attestation key, to verify TPM key attestations (optional)")
	pivRoots := fs.String("piv-roots", "", "PEM CA certificates of PIV attestation roots to trust besides Yubico's: your own CA or another PIV vendor's (optional)")
	reprovision := fs.Bool("reprovision", false, "replace the root, policy and trust of a provisioned state, after a backup; the ledger and audit log stay")
	var keys cli.List
	fs.Var(&keys, "key", "key URI of a holder, kept in the state's keys.txt for the terminal ui (repeat; optional)")
	pos, err := parseInterleaved(fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return cli.Usagef("init-state takes no arguments, got %q", pos[0])
	}
	var keyList []string
	if len(keys) > 0 {
		if keyList, err = parseKeyList([]byte(strings.Join(keys, "\n"))); err != nil {
			return cli.Usagef("--key: %v", err)
		}
	}
	var missing []string
	for _, f := range []struct{ name, v string }{{"--state", *state}, {"--root", *root}, {"--policy", *policy}, {"--trusted-root", *trusted}} {
		if f.v == "" {
			missing = append(missing, f.name)
		}
	}
	if len(missing) > 0 {
		return cli.Usagef("init-state needs %s (a state without a sigstore trusted root cannot verify provenance)", strings.Join(missing, ", "))
	}
	var p appliance.Provision
	for _, f := range []struct {
		path string
		dst  *[]byte
	}{{*root, &p.Root}, {*policy, &p.Policy}, {*trusted, &p.TrustedRoot}, {*npm, &p.NPMKeys}, {*tpmAK, &p.TPMAK}, {*pivRoots, &p.PIVRoots}} {
		if f.path == "" {
			continue
		}
		b, err := readCapped(f.path, 1<<20)
		if err != nil {
			return err
		}
		*f.dst = b
	}
	if err := checkTrustedRoot(*trusted, p.TrustedRoot); err != nil {
		return err
	}
	if *reprovision {
		backup, err := appliance.Reprovision(*state, p, appliance.SystemClock)
		if err != nil {
			return err
		}
		if keyList != nil {
			if err := writeStateKeys(*state, keyList); err != nil {
				return err
			}
		}
		fmt.Fprintf(stdout, "state %s re-provisioned; the previous state is in %s\n", *state, backup)
		return nil
	}
	if err := appliance.InitState(*state, p, appliance.SystemClock); err != nil {
		if strings.Contains(err.Error(), "already holds a pinned root") {
			return fmt.Errorf("%w: to replace its root, policy and trust, add --reprovision (the old state is backed up first)", err)
		}
		return err
	}
	if keyList != nil {
		if err := writeStateKeys(*state, keyList); err != nil {
			return err
		}
	}
	fmt.Fprintf(stdout, "state provisioned in %s\n", *state)
	return nil
}

// checkTrustedRoot checks that b is a Sigstore trusted root the provenance
// verifier can load.
func checkTrustedRoot(path string, b []byte) error {
	if _, err := provenance.New(provenance.Config{TrustedRoot: b}); err != nil {
		return fmt.Errorf("--trusted-root %s: %w", path, err)
	}
	return nil
}

func readCapped(path string, limit int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("%s is over the %d-byte cap", path, limit)
	}
	return b, nil
}

// folderBundle imports a bundle folder through transfer/bundle (names,
// types and sizes checked) into a private working directory.
type folderBundle struct{ dir, work string }

func (b folderBundle) Load(context.Context) (*appliance.Bundle, error) {
	root, err := os.OpenRoot(b.dir)
	if err != nil {
		return nil, fmt.Errorf("bundle folder: %w", err)
	}
	defer root.Close()
	m, err := bundle.Import(root.FS(), b.work, bundle.Options{Limits: importLimits})
	if err != nil {
		return nil, err
	}
	wr, err := os.OpenRoot(m.Dir)
	if err != nil {
		return nil, err
	}
	return &appliance.Bundle{Source: b.dir, Request: m.Document, Files: wr.FS()}, nil
}

type commonFlags struct {
	state, date string
	dev         bool
	counter     string
}

func (c *commonFlags) add(fs *flag.FlagSet) {
	fs.StringVar(&c.state, "state", "", "appliance state directory (required)")
	fs.StringVar(&c.date, "date", "", "today's date YYYY-MM-DD, confirmed by the operator (asked on the terminal when absent)")
	fs.BoolVar(&c.dev, "dev", false, "development mode: software keys may sign; the record and response say so")
	fs.StringVar(&c.counter, "tpm-counter", "", "bind the state to the NV counter of this TPM (/dev/tpmrm0, tcp:HOST:PORT): an older copy of the state is refused")
}

func (c *commonFlags) parseDate() (time.Time, error) {
	if c.date == "" {
		return time.Time{}, nil
	}
	t, err := time.Parse("2006-01-02", c.date)
	if err != nil {
		return time.Time{}, cli.Usagef("--date %q: want YYYY-MM-DD", c.date)
	}
	return t, nil
}

func cmdReview(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := cli.NewFlagSet("airlock-appliance review", `usage: airlock-appliance review --state DIR BUNDLE [--json] [--date YYYY-MM-DD] [--dev]

Verifies a release bundle folder exactly as a ceremony does and prints what
would be signed; nothing is signed and no key is needed.

examples:
  airlock-appliance review --state /var/lib/airlock bundle
  airlock-appliance review --state /var/lib/airlock --date 2025-06-02 bundle --json
`, stderr)
	var c commonFlags
	c.add(fs)
	asJSON := fs.Bool("json", false, "print the review model as json")
	pos, err := parseInterleaved(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 || c.state == "" {
		return cli.Usagef("review needs --state DIR and one bundle folder")
	}
	date, st, work, done, err := c.open("review")
	if err != nil {
		return err
	}
	defer done()
	ui := &termUI{out: stderr}
	cer, err := appliance.New(appliance.Config{State: st, UI: ui, Dev: c.dev, Date: date,
		Bundle: folderBundle{dir: pos[0], work: filepath.Join(work, "bundle")}})
	if err != nil {
		return err
	}
	s, err := cer.Review(ctx)
	if err != nil {
		return err
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(s.Review)
	}
	printReview(stdout, s.Review)
	return nil
}

func cmdSign(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := cli.NewFlagSet("airlock-appliance sign", `usage: airlock-appliance sign --state DIR BUNDLE --key URI... (--out NEW_FOLDER | --export-usb DEVICE)
           [--dev] [--date YYYY-MM-DD] [--confirm-fingerprint HEX]

A scripted ceremony under the same rules as the terminal ui: each holder
confirms the fingerprint on the terminal (or --confirm-fingerprint gives the
sha256 every holder checked). The signed response is kept in the state
directory before it is written out; if writing fails, airlock-appliance
export writes it later without signing again.

examples:
  airlock-appliance sign --state /var/lib/airlock bundle --key 'yubikey:serial=12345678;slot=9c' \
      --key 'yubikey:serial=23456789;slot=9c' --out response
  airlock-appliance sign --state /var/lib/airlock bundle --key 'yubikey:serial=12345678;slot=9c' \
      --key tpm:handle=0x81000010 --export-usb /dev/sdb
`, stderr)
	var c commonFlags
	c.add(fs)
	var keys cli.List
	fs.Var(&keys, "key", "key URI to sign with (repeat; one or more per holder)")
	out := fs.String("out", "", "folder to write response.json and record.json to (must not exist)")
	usbDev := fs.String("export-usb", "", "USB stick device or FAT32 image to write the response folder to (instead of --out)")
	usbIn := fs.String("usb", "", "not for sign: the bundle is the folder argument (write the response to a stick with --export-usb)")
	confirm := fs.String("confirm-fingerprint", "", "sha256 of the bytes every holder confirms, for non-interactive runs")
	pos, err := parseInterleaved(fs, args)
	if err != nil {
		return err
	}
	if *usbIn != "" {
		return cli.Usagef("--usb names where a bundle is read from; sign reads the bundle folder given as argument and writes the response with --out NEW_FOLDER or --export-usb DEVICE")
	}
	if len(pos) != 1 || c.state == "" || (*out == "") == (*usbDev == "") || len(keys) == 0 {
		return cli.Usagef("sign needs --state DIR, one bundle folder, --key URI (repeated) and one of --out NEW_FOLDER or --export-usb DEVICE")
	}
	var sink appliance.Sink = appliance.DirSink(*out)
	if *usbDev != "" {
		sink = sinks.USBSink{Device: *usbDev}
	}
	if *confirm != "" && c.date == "" {
		return cli.Usagef("--confirm-fingerprint runs without a terminal, so give --date too")
	}
	for _, k := range keys {
		u, err := hsm.ParseURI(k)
		if err != nil {
			return cli.Usagef("%v", err)
		}
		if u.Kind == hsm.KindFile && !c.dev {
			return cli.Usagef("%s is a software key: software keys sign only with --dev", k)
		}
	}
	date, st, work, done, err := c.open("sign")
	if err != nil {
		return err
	}
	defer done()
	ui := &termUI{out: stderr, confirmSHA: strings.ToLower(*confirm)}
	cer, err := appliance.New(appliance.Config{State: st, UI: ui, Dev: c.dev, Date: date,
		Bundle: folderBundle{dir: pos[0], work: filepath.Join(work, "bundle")},
		Keys:   appliance.KeyURIs(keys), Sink: sink})
	if err != nil {
		return err
	}
	s, err := cer.Run(ctx)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "signed %s version %d (sha256 %s) by %d holders; response and record in %s\n", s.Role, s.Version, s.SHA256, len(s.Approvals), s.Export)
	return nil
}

// termUI is the appliance UI on a plain terminal: messages on stderr,
// questions and PINs on /dev/tty.
type termUI struct {
	out        io.Writer
	confirmSHA string
}

func (u *termUI) Show(_ context.Context, m appliance.Message) {
	if m.Level == appliance.Error {
		// An error ends the run; cli.Exit prints it once.
		return
	}
	fmt.Fprintf(u.out, "%s: %s\n", m.Level, m.Text)
}

func (u *termUI) readLine(prompt string) (string, error) {
	tty, err := os.OpenFile("/dev/tty", os.O_RDWR, 0)
	if err != nil {
		return "", fmt.Errorf("no terminal to ask on (%v): give --date and --confirm-fingerprint: %w", err, hsm.ErrCancelled)
	}
	defer tty.Close()
	fmt.Fprint(tty, prompt)
	line, err := bufio.NewReader(io.LimitReader(tty, 1024)).ReadString('\n')
	if err != nil {
		return "", err
	}
	return strings.TrimSpace(line), nil
}

func (u *termUI) Ask(_ context.Context, q appliance.Question) (string, error) {
	ans, err := u.readLine(fmt.Sprintf("%s\n%s [%s]: ", q.Title, q.Text, q.Default))
	if err != nil {
		return "", err
	}
	if ans == "" {
		return q.Default, nil
	}
	return ans, nil
}

func (u *termUI) Confirm(_ context.Context, c appliance.Confirmation) (bool, error) {
	if u.confirmSHA != "" {
		ok := c.SHA256 != "" && u.confirmSHA == c.SHA256
		if !ok {
			fmt.Fprintf(u.out, "the fingerprint given (%s) is not the one of the bytes to sign (%s)\n", u.confirmSHA, c.SHA256)
		}
		return ok, nil
	}
	prompt := fmt.Sprintf("%s\n%s\ntype %q to %s, %q to %s: ", c.Title, c.Text, "yes", c.Yes, "refuse", c.No)
	for range maxConfirmAsks {
		ans, err := u.readLine(prompt)
		if err != nil {
			return false, err
		}
		switch strings.ToLower(ans) {
		case "yes":
			return true, nil
		case "refuse":
			return false, nil
		}
		prompt = fmt.Sprintf("%q is neither %q nor %q: type %q to %s, %q to %s: ", content.Visible(ans), "yes", "refuse", "yes", c.Yes, "refuse", c.No)
	}
	return false, fmt.Errorf("no answer after %d questions: %w", maxConfirmAsks, hsm.ErrCancelled)
}

// maxConfirmAsks caps how often a confirmation is asked again on the
// plain terminal.
const maxConfirmAsks = 5

func (u *termUI) Secret(ctx context.Context, r appliance.SecretRequest) ([]byte, error) {
	uri, err := hsm.ParseURI(r.Key)
	if err != nil {
		return nil, err
	}
	return cli.TerminalPrompter{Out: u.out}.PIN(ctx, hsm.PINRequest{URI: uri, Holder: r.Holder, Retries: r.Retries})
}

func (u *termUI) WaitTouch(_ context.Context, r appliance.TouchRequest) func() {
	fmt.Fprintf(u.out, "%s: touch the key %s now (it is blinking)\n", r.Holder, r.Key)
	return func() { fmt.Fprintf(u.out, "touched\n") }
}

var _ appliance.UI = (*termUI)(nil)

func printReview(w io.Writer, r *appliance.Review) {
	if r == nil {
		return
	}
	v := content.Visible
	fmt.Fprintf(w, "%s of role %s: version %d -> %d, expires %s\n", v(r.Kind), v(r.Role), r.OldVersion, r.NewVersion, r.NewExpires.Format("2006-01-02"))
	fmt.Fprintf(w, "sha256 %s\nfingerprint %s\n", r.SHA256, r.Fingerprint)
	if r.Dev {
		fmt.Fprintln(w, "DEVELOPMENT MODE: software keys may sign")
	}
	for _, t := range r.Targets {
		fmt.Fprintf(w, "target %s: %s\n", t.Change, v(t.Path))
	}
	for _, rc := range r.Roles {
		fmt.Fprintf(w, "role %s %s\n", v(rc.Name), rc.Change)
		if rc.Old != nil {
			fmt.Fprintf(w, "  old: threshold %d of %d keys\n", rc.Old.Threshold, len(rc.Old.Keys))
		}
		if rc.New != nil {
			fmt.Fprintf(w, "  new: threshold %d of %d keys\n", rc.New.Threshold, len(rc.New.Keys))
		}
	}
	for _, a := range r.Artifacts {
		fmt.Fprintf(w, "artifact %s (%d bytes, bytes verified: %v)\n", v(a.Target), a.Length, a.BytesVerified)
		if p := a.Provenance; p != nil {
			fmt.Fprintf(w, "  provenance verified %v: %s %s %s %s\n", p.Verified, v(p.Repository), v(p.Workflow), v(p.Ref), v(p.Commit))
		}
		if d := a.Content; d != nil {
			fmt.Fprintf(w, "  content: %d added, %d removed, %d changed, %d signals\n", d.Added, d.Removed, d.Changed, len(d.Signals))
			for _, s := range d.Signals {
				fmt.Fprintf(w, "    %s %s %s: %s\n", s.Severity, s.Kind, v(s.File), v(s.Detail))
			}
		}
		if a.ContentNote != "" {
			fmt.Fprintf(w, "  note: %s\n", v(a.ContentNote))
		}
	}
	if r.ContentNote != "" {
		fmt.Fprintln(w, v(r.ContentNote))
	}
	for _, s := range r.Risks {
		fmt.Fprintf(w, "risk %s %s %s: %s\n", s.Severity, s.Kind, v(s.File), v(s.Detail))
	}
	for _, x := range r.Warnings {
		fmt.Fprintf(w, "warning: %s\n", v(x))
	}
	if r.Note != "" {
		fmt.Fprintf(w, "note from CI (untrusted): %s\n", v(r.Note))
	}
}

// open parses the confirmed date, opens (and locks) the appliance state and
// makes a work area; done releases both.
func (c *commonFlags) open(purpose string) (time.Time, *appliance.StateDir, string, func(), error) {
	date, err := c.parseDate()
	if err != nil {
		return time.Time{}, nil, "", nil, err
	}
	st, err := appliance.OpenState(c.state, appliance.SystemClock)
	if err != nil {
		return time.Time{}, nil, "", nil, err
	}
	if c.counter != "" {
		if err := st.BindCounter(tpm.Counter{Device: c.counter}); err != nil {
			st.Close()
			return time.Time{}, nil, "", nil, err
		}
	}
	work, err := os.MkdirTemp("", "airlock-"+purpose+"-")
	if err != nil {
		st.Close()
		return time.Time{}, nil, "", nil, err
	}
	return date, st, work, func() { os.RemoveAll(work); st.Close() }, nil
}
