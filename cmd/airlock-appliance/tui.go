package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	"airlock.dev/airlock/appliance"
	"airlock.dev/airlock/hsm"
	"airlock.dev/airlock/internal/appdemo"
	"airlock.dev/airlock/internal/cli"
	"airlock.dev/airlock/internal/sinks"
	"airlock.dev/airlock/tuf"
	"airlock.dev/airlock/tui"

	"github.com/gdamore/tcell/v2"
	"github.com/theupdateframework/go-tuf/v2/metadata"
	"golang.org/x/term"
)

const tuiUsage = `usage: airlock-appliance --state DIR [--key URI...] (--out DIR | --export-usb DEVICE|ask) [--dev]
           [--bundle DIR | --usb DEVICE_OR_IMAGE | --qr-images DIR] [--export-qr]
       airlock-appliance --demo [--dir DIR]

With no command, runs a signing ceremony on the terminal UI. The bundle is
read from a USB stick chosen on screen (read-only, in user space), unless
--bundle names a folder, --usb a device or image, or --qr-images a folder
of scanned QR frames (request.json only: no content diff). Without --key,
the holders' keys are the ones provisioned in DIR/keys.txt (init-state
--key). The response goes to the --out folder and, with --export-usb, to a
FAT32 stick; --export-usb ask chooses the stick on screen after signing
(the appliance image runs --state /var/lib/airlock --export-usb ask).
After signing,
q on the done screen (or --export-qr) shows the signature response as an
animated QR code with its fingerprint.
--demo prepares a demo release (sigstore 1.3.0 -> 2.0.0 with its real
provenance, two holders with DEMO development keys) in a new folder and
walks through the whole ceremony; the signatures are written to
DIR/signatures. Without --dir the folder is temporary and removed at the end.

examples:
  airlock-appliance --demo
  airlock-appliance --demo --dir airlock-demo
  airlock-appliance --state /var/lib/airlock --key 'yubikey:serial=12345678;slot=9c' \
      --key 'yubikey:serial=23456789;slot=9c' --out /media/out/response
  airlock-appliance --state /var/lib/airlock --export-usb ask
`

// keyList collects repeated --key flags.
type keyList []string

func (k *keyList) String() string     { return strings.Join(*k, ",") }
func (k *keyList) Set(s string) error { *k = append(*k, s); return nil }

// startTUI runs the terminal user interface.
func startTUI(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := cli.NewFlagSet("airlock-appliance", tuiUsage, stderr)
	demo := fs.Bool("demo", false, "run the embedded demo with DEMO development keys")
	dir := fs.String("dir", "", "folder for the demo (default: a new temporary folder)")
	state := fs.String("state", "", "appliance state directory")
	bundleDir := fs.String("bundle", "", "release bundle folder")
	usbDev := fs.String("usb", "", "read the bundle from this USB device or FAT/ext4/ISO image instead of choosing a stick on screen")
	exportUSB := fs.String("export-usb", "", "also write the response folder to this FAT32 USB device or image (read back after writing); ask: choose the stick on screen")
	qrDir := fs.String("qr-images", "", "read request.json from the QR frames (PNG or JPEG files) in this folder")
	out := fs.String("out", "", "folder to export the signature response to")
	exportQR := fs.Bool("export-qr", false, "after signing, show the signature response as an animated QR code (q on the done screen does too)")
	dev := fs.Bool("dev", false, "development mode: software keys may sign")
	var keys keyList
	fs.Var(&keys, "key", "key URI of a holder (repeat)")
	if err := cli.Parse(fs, args); err != nil {
		return err
	}
	if !*demo && len(keys) == 0 && *state != "" {
		k, err := stateKeys(*state)
		if err != nil {
			return err
		}
		keys = k
	}
	if !*demo {
		if _, err := keyStatus(keys, *dev); err != nil {
			return err
		}
		if *state == "" || (*out == "" && *exportUSB == "") || len(keys) == 0 {
			return cli.Usagef("--state, --out or --export-usb, and at least one --key (or a provisioned keys.txt) are needed (or --demo)")
		}
	}
	// The screen itself is drawn on /dev/tty; stdout may be redirected to a
	// log, but the keys must come from a terminal.
	if !term.IsTerminal(int(os.Stdin.Fd())) {
		return errors.New("the terminal ui needs a terminal on stdin: start it on the console, or use airlock-appliance sign for a scripted ceremony")
	}
	var status tui.Status
	if *demo {
		if *dir == "" {
			// A folder of our own is removed at the end: give --dir to keep it.
			d, err := os.MkdirTemp("", "airlock-appliance-demo-")
			if err != nil {
				return err
			}
			*dir = d
			defer func() {
				os.RemoveAll(d)
				fmt.Fprintf(stdout, "demo folder %s removed (airlock-appliance --demo --dir DIR keeps it)\n", d)
			}()
		}
		d, err := appdemo.Prepare(*dir, time.Now())
		if err != nil {
			return fmt.Errorf("demo: %w", err)
		}
		*state, *bundleDir, *out, *dev = d.StateDir, d.Bundle, d.Out, true
		keys = d.Keys
		for i, k := range d.Keys {
			status.Keys = append(status.Keys, tui.KeyStatus{URI: k, Holder: d.KeyHolders[i], Demo: true})
		}
		status.TPM = "not used by the demo"
	} else {
		ks, err := keyStatus(keys, *dev)
		if err != nil {
			return err
		}
		status.Keys = ks
	}
	sources := 0
	for _, f := range []string{*bundleDir, *usbDev, *qrDir} {
		if f != "" {
			sources++
		}
	}
	if sources > 1 && !*demo || sources > 2 {
		return cli.Usagef("give at most one of --bundle, --usb and --qr-images")
	}
	return runTUI(ctx, tuiRun{state: *state, bundleDir: *bundleDir, usbDev: *usbDev, qrDir: *qrDir, out: *out,
		exportUSB: *exportUSB, exportQR: *exportQR, dev: *dev, keys: keys, status: status}, stdout, nil)
}

// keyStatus checks the --key URIs before anything starts (a typo is a
// usage error, not a refusal after the review) and lists them for the
// start screen.
func keyStatus(keys []string, dev bool) ([]tui.KeyStatus, error) {
	var out []tui.KeyStatus
	for _, k := range keys {
		u, err := hsm.ParseURI(k)
		if err != nil {
			return nil, cli.Usagef("--key %s: %v", k, err)
		}
		if u.Kind == hsm.KindFile && !dev {
			return nil, cli.Usagef("--key %s is a software key: software keys sign only with --dev", k)
		}
		out = append(out, tui.KeyStatus{URI: u.String()})
	}
	return out, nil
}

// tuiRun is what a terminal ui ceremony needs, from the flags.
type tuiRun struct {
	state, bundleDir, usbDev, qrDir, out, exportUSB string
	exportQR, dev                                   bool
	keys                                            []string
	status                                          tui.Status
}

// runTUI runs one ceremony on the terminal ui; screen, when not nil,
// replaces the terminal (tests pass a tcell simulation screen).
func runTUI(ctx context.Context, r tuiRun, stdout io.Writer, screen tcell.Screen) error {
	status := r.status
	st, err := appliance.OpenState(r.state, nil)
	if err != nil {
		return err
	}
	defer st.Close()
	status.Dev, status.StateDir = r.dev, r.state
	if v, exp, err := rootFacts(st.Root); err == nil {
		status.RootVersion, status.RootExpires = v, exp
		if days := time.Until(exp).Hours() / 24; days < 30 {
			status.Expiring = append(status.Expiring, fmt.Sprintf("root expires %s (in %.0f days)", exp.Format("2006-01-02"), days))
		}
	}
	work, err := os.MkdirTemp("", "airlock-import-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	quit := make(chan struct{})
	var once sync.Once
	app := tui.New(tui.Options{Refuse: cancel, Quit: func() { once.Do(func() { close(quit) }) }, ExportQR: r.exportQR})
	if screen != nil {
		app.SetScreen(screen)
	}
	app.SetStatus(status)
	cer, err := appliance.New(appliance.Config{
		State: st, UI: app, Listener: app, Dev: r.dev,
		Bundle: bundleSource(app, r.bundleDir, r.usbDev, r.qrDir, work),
		Keys:   appliance.KeyURIs(r.keys), Sink: exportSink{ui: app, dir: r.out, usb: r.exportUSB},
		Retry: exportRetry{ui: app},
	})
	if err != nil {
		return err
	}
	app.StateChanged(cer.State())
	var final appliance.State
	var runErr error
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		final, runErr = cer.Run(ctx)
		select {
		case <-quit:
		case <-ctx.Done():
		}
		app.Stop()
	}()
	err = app.Run()
	cancel()
	<-finished
	if err != nil {
		return fmt.Errorf("terminal: %w", err)
	}
	if runErr != nil {
		var re *appliance.RefusedError
		if errors.As(runErr, &re) {
			return fmt.Errorf("ceremony refused: %s", re.Refusal.Reason)
		}
		return runErr
	}
	fmt.Fprintf(stdout, "signed %s version %d; signature response and ceremony record in %s\n", final.Role, final.Version, final.Export)
	return nil
}

// rootFacts reads the pinned root's version and expiry for the start screen.
func rootFacts(root []byte) (int64, time.Time, error) {
	m, err := tuf.ParseStrict[metadata.RootType](root)
	if err != nil {
		return 0, time.Time{}, err
	}
	return m.Signed.Version, m.Signed.Expires, nil
}

// bundleSource picks where the bundle comes from: a USB device or image
// given, QR frames, a folder, or else a stick chosen on screen.
func bundleSource(app *tui.App, dir, usbDev, qrDir, work string) appliance.BundleSource {
	switch {
	case usbDev != "":
		return senderCheck{usbBundle{ui: app, device: usbDev, work: work}, app}
	case qrDir != "":
		return senderCheck{qrBundle{ui: app, src: qrDirSource(qrDir), what: "QR frames in " + qrDir, work: work}, app}
	case dir != "":
		return folderBundle{dir: dir, work: work}
	}
	return senderCheck{usbBundle{ui: app, work: work}, app}
}

// exportSink writes the response folder, then, when a device is given, the
// same files onto a FAT32 stick or image (read back and compared), and
// shows where they went on the export screen.
type exportSink struct {
	ui  chooser
	dir string
	usb string
}

func (s exportSink) Export(ctx context.Context, e appliance.Export) (string, error) {
	var where string
	if s.dir != "" {
		w, err := appliance.DirSink(s.dir).Export(ctx, e)
		if err != nil {
			return "", err
		}
		where = w
	}
	st := tui.ExportStatus{Path: where, Response: e.Response}
	if s.usb != "" {
		dev := s.usb
		if dev == askUSB {
			d, err := pickDevice(ctx, s.ui, "write the response to a USB stick")
			if err != nil {
				return "", s.usbFailed(where, err)
			}
			dev = d
		}
		w, err := sinks.USBSink{Device: dev}.Export(ctx, e)
		if err != nil {
			return "", s.usbFailed(where, err)
		}
		if where != "" {
			where += " and "
		}
		where += w
		st = tui.ExportStatus{Path: where, ReadBack: true, Response: e.Response}
	}
	s.ui.SetExport(st)
	return where, nil
}

// askUSB as --export-usb chooses the stick on screen after signing.
const askUSB = "ask"

func (s exportSink) usbFailed(where string, err error) error {
	if where == "" {
		return fmt.Errorf("writing the response to usb failed: %w", err)
	}
	return fmt.Errorf("the response is in %s, but writing it to usb failed: %w", where, err)
}
