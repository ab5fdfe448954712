package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"airlock.dev/airlock/appliance"
	"airlock.dev/airlock/internal/appdemo"
	"airlock.dev/airlock/internal/cli"
	"airlock.dev/airlock/tuf"
	"airlock.dev/airlock/tui"

	"github.com/theupdateframework/go-tuf/v2/metadata"
)

const tuiUsage = `usage: airlock-appliance [--state DIR --bundle DIR --key URI... --out DIR [--dev]]
       airlock-appliance --demo [--dir DIR]

With no command, runs a signing ceremony on the terminal UI.
--demo prepares a demo release (sigstore 1.3.0 -> 2.0.0 with its real
provenance, two holders with DEMO development keys) in a new folder and
walks through the whole ceremony; the signatures are written to
DIR/signatures.
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
	out := fs.String("out", "", "folder to export the signature response to")
	dev := fs.Bool("dev", false, "development mode: software keys may sign")
	var keys keyList
	fs.Var(&keys, "key", "key URI of a holder (repeat)")
	if err := cli.Parse(fs, args); err != nil {
		return err
	}
	var status tui.Status
	if *demo {
		if *dir == "" {
			d, err := os.MkdirTemp("", "airlock-appliance-demo-")
			if err != nil {
				return err
			}
			*dir = d
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
	} else if *state == "" || *bundleDir == "" || *out == "" || len(keys) == 0 {
		return cli.Usagef("--state, --bundle, --out and at least one --key are needed (or --demo)")
	}
	st, err := appliance.OpenState(*state, nil)
	if err != nil {
		return err
	}
	defer st.Close()
	status.Dev, status.StateDir = *dev, *state
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
	app := tui.New(tui.Options{Refuse: cancel, Quit: func() { once.Do(func() { close(quit) }) }})
	app.SetStatus(status)
	cer, err := appliance.New(appliance.Config{
		State: st, UI: app, Listener: app, Dev: *dev,
		Bundle: folderBundle{dir: *bundleDir, work: work},
		Keys:   appliance.KeyURIs(keys), Sink: appliance.DirSink(*out),
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
	fmt.Fprintf(stdout, "signed %s version %d; signature response and ceremony record in %s\n", final.Role, final.Version, filepath.Clean(*out))
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
