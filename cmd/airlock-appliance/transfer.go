package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"sync"
	"time"

	"airlock.dev/airlock/appliance"
	"airlock.dev/airlock/appliance/content"
	"airlock.dev/airlock/transfer/bundle"
	"airlock.dev/airlock/transfer/qr"
	"airlock.dev/airlock/transfer/ur"
	"airlock.dev/airlock/transfer/usb"
	"airlock.dev/airlock/tuf"
	"airlock.dev/airlock/tui"
)

// Where sysfs and device nodes are; tests do not change them (they pass
// image files with --usb and --export-usb instead).
const (
	sysRoot = "/sys"
	devRoot = "/dev"
)

// devicePollInterval is how often the stick list is refreshed while no
// removable device is present.
const devicePollInterval = time.Second

// progressInterval throttles progress updates to the screen.
const progressInterval = 100 * time.Millisecond

// chooser is what the transfer code needs of the terminal UI.
type chooser interface {
	appliance.UI
	Choose(ctx context.Context, title, text string, options []string) (int, error)
	SetImport(tui.ImportStatus)
	SetExport(tui.ExportStatus)
}

// describeDevice is one line of the device picker.
// importLimits caps a bundle on import: no file larger than the review
// reads is copied in, so an oversized artifact is refused from its size
// before a byte of it is read.
var importLimits = bundle.Limits{MaxFileBytes: content.DefaultMaxArchiveBytes}

func describeDevice(d usb.Device) string {
	name := d.Vendor + " " + d.Model
	if d.Vendor == "" && d.Model == "" {
		name = "(no name)"
	}
	ro := ""
	if d.ReadOnly {
		ro = ", write-protected"
	}
	return fmt.Sprintf("%s  %s  %.1f GB%s", d.Path, name, float64(d.Size)/1e9, ro)
}

// pickDevice waits for removable devices and lets the operator choose one.
func pickDevice(ctx context.Context, ui chooser, title string) (string, error) {
	for {
		devs, err := usb.ListRemovable(sysRoot, devRoot)
		if err != nil {
			return "", fmt.Errorf("listing usb devices: %w", err)
		}
		if len(devs) > 0 {
			var opts []string
			for _, d := range devs {
				opts = append(opts, describeDevice(d))
			}
			ui.SetImport(tui.ImportStatus{Devices: opts})
			i, err := ui.Choose(ctx, title, "Choose the USB stick. Only sticks with a medium are listed.", opts)
			if err != nil {
				return "", err
			}
			return devs[i].Path, nil
		}
		ui.SetImport(tui.ImportStatus{Devices: []string{"no USB stick found: insert one (F10 refuses)"}})
		select {
		case <-ctx.Done():
			return "", ctx.Err()
		case <-time.After(devicePollInterval):
		}
	}
}

// throttle calls f at most once per progressInterval, and always for last.
type throttle struct {
	mu   sync.Mutex
	next time.Time
}

func (t *throttle) ok(last bool) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	now := time.Now()
	if !last && now.Before(t.next) {
		return false
	}
	t.next = now.Add(progressInterval)
	return true
}

// usbBundle imports a bundle from a USB stick or an image file, read in user
// space, into a private working directory, showing the progress on the
// import screen. With no device it lists removable devices and asks.
type usbBundle struct {
	ui     chooser
	device string // empty: ask
	work   string
}

func (b usbBundle) Load(ctx context.Context) (*appliance.Bundle, error) {
	dev := b.device
	if dev == "" {
		d, err := pickDevice(ctx, b.ui, "import from USB")
		if err != nil {
			return nil, err
		}
		dev = d
	}
	shown := []string{dev}
	b.ui.SetImport(tui.ImportStatus{Devices: shown})
	vol, err := usb.Open(dev)
	if err != nil {
		return nil, fmt.Errorf("usb %s: %w", dev, err)
	}
	defer vol.Close()
	found, err := usb.FindBundles(vol.FS)
	if err != nil {
		return nil, fmt.Errorf("usb %s: %w", dev, err)
	}
	if len(found) == 0 {
		return nil, fmt.Errorf("usb %s: no release bundle on the stick (no %s at the top or in a top-level folder): copy the bundle folder onto it", dev, bundle.RequestFile)
	}
	dir := found[0]
	if len(found) > 1 {
		i, err := b.ui.Choose(ctx, "import from USB", "The stick holds several bundles. Choose the one to sign.", found)
		if err != nil {
			return nil, err
		}
		dir = found[i]
	}
	src := vol.FS
	if dir != "." {
		if src, err = fs.Sub(vol.FS, dir); err != nil {
			return nil, err
		}
	}
	where := fmt.Sprintf("usb %s (%s): %s", dev, vol.Type, path.Clean(dir))
	shown = []string{where}
	var th throttle
	m, err := bundle.Import(src, b.work, bundle.Options{Limits: importLimits, Progress: func(p bundle.Progress) {
		if th.ok(p.Done >= p.Total) {
			b.ui.SetImport(tui.ImportStatus{Devices: shown, File: p.Entry, Done: p.Done, Total: p.Total})
		}
	}})
	if err != nil {
		return nil, err
	}
	var total int64
	for _, f := range m.Files {
		total += f.Size
	}
	b.ui.SetImport(tui.ImportStatus{Devices: shown, File: "all files", Done: total, Total: total})
	wr, err := os.OpenRoot(m.Dir)
	if err != nil {
		return nil, err
	}
	return &appliance.Bundle{Source: where, Request: m.Document, Files: wr.FS()}, nil
}

// qrBundle receives a release as animated QR codes: a bare request.json,
// or request.json with the provenance bundles packed by airlock qr show
// DIR. Artifacts never travel this way: the review has no bytes to compare
// and says so, and the policy decides whether that may be signed.
type qrBundle struct {
	ui  chooser
	src func() (qr.Source, func(), error)
	// what describes the source ("qr images in DIR").
	what string
	work string
}

// qrDirSource reads frames from the PNG and JPEG files of a folder.
func qrDirSource(dir string) func() (qr.Source, func(), error) {
	return func() (qr.Source, func(), error) {
		z, err := qr.NewZbar()
		if err != nil {
			return nil, nil, err
		}
		s, err := qr.NewDirSource(dir, z)
		if err != nil {
			z.Close()
			return nil, nil, err
		}
		return s, func() { z.Close() }, nil
	}
}

func (b qrBundle) Load(ctx context.Context) (*appliance.Bundle, error) {
	src, closeSrc, err := b.src()
	if err != nil {
		return nil, fmt.Errorf("qr: %w", err)
	}
	defer closeSrc()
	dec := ur.NewDecoder(ur.Limits{})
	var th throttle
	b.ui.SetImport(tui.ImportStatus{Devices: []string{b.what}, QR: true})
	msg, err := qr.Receive(ctx, src, dec, func(p ur.Progress, _ error) {
		if th.ok(p.Done) {
			b.ui.SetImport(tui.ImportStatus{Devices: []string{b.what}, QR: true,
				Percent: 100 * p.Fraction, Frames: p.Frames + p.Rejected, Fingerprint: dec.Fingerprint()})
		}
	})
	if err != nil {
		if errors.Is(err, context.Canceled) {
			return nil, err
		}
		return nil, fmt.Errorf("qr: %w: show the request again and rescan", err)
	}
	b.ui.SetImport(tui.ImportStatus{Devices: []string{b.what}, QR: true, Percent: 100,
		Frames: dec.Progress().Frames + dec.Progress().Rejected, Fingerprint: ur.Fingerprint(msg)})
	if !bundle.IsQRTar(msg) {
		return &appliance.Bundle{Source: "qr", Request: msg, MetadataOnly: true}, nil
	}
	m, err := bundle.ImportQR(msg, b.work, bundle.Options{Limits: importLimits})
	if err != nil {
		return nil, fmt.Errorf("qr: %w", err)
	}
	wr, err := os.OpenRoot(m.Dir)
	if err != nil {
		return nil, err
	}
	return &appliance.Bundle{Source: fmt.Sprintf("qr (request and %d provenance files)", len(m.Files)-1),
		Request: m.Document, Files: wr.FS(), MetadataOnly: true}, nil
}

// senderCheck asks the operator to compare the fingerprint of the request
// that arrived with the one the sender printed (airlock bundle create,
// airlock gate bundle and airlock qr show print it), before anything of the
// bundle is reviewed: a stick or a QR stream swapped on the way stops here.
// Going on and stopping each take a deliberate answer (y or r, then Enter).
type senderCheck struct {
	inner appliance.BundleSource
	ui    chooser
}

func (s senderCheck) Load(ctx context.Context) (*appliance.Bundle, error) {
	b, err := s.inner.Load(ctx)
	if err != nil {
		return nil, err
	}
	fp, sum := ur.Fingerprint(b.Request), tuf.SHA256Hex(b.Request)
	ok, err := s.ui.Confirm(ctx, appliance.Confirmation{
		Title: "compare the request fingerprint",
		Text: fmt.Sprintf("From %s. Compare with the request fingerprint the sender printed; "+
			"another one means the bundle was changed or swapped on the way.", b.Source),
		Yes: "the same: review it", No: "different: stop",
		Fingerprint: fp, SHA256: sum,
	})
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, fmt.Errorf("the request fingerprint %s (sha256 %s) was not confirmed as the sender's: nothing was reviewed or signed; "+
			"ask the sender for the bundle again and compare before going on", fp, sum)
	}
	b.Source += ", request fingerprint " + fp + " confirmed as the sender's"
	return b, nil
}
