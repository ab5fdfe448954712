package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strings"

	"airlock.dev/airlock/appliance"
	"airlock.dev/airlock/internal/cli"
	"airlock.dev/airlock/internal/sinks"
	"airlock.dev/airlock/tui"
)

const exportUsage = `usage: airlock-appliance export --state DIR [--ceremony ID] (--out NEW_FOLDER | --usb DEVICE)
       airlock-appliance export --state DIR --list

Writes a signed response that the appliance kept (every ceremony keeps its
response in the state directory before exporting it) to a new folder or a
FAT32 USB stick, again: nothing is signed, no key is needed. Without
--ceremony the newest kept response is written. Every attempt is recorded
in the audit log.

examples:
  airlock-appliance export --state /var/lib/airlock --list
  airlock-appliance export --state /var/lib/airlock --out /media/stick/response-again
  airlock-appliance export --state /var/lib/airlock --ceremony 20250602T120000Z-0a1b2c3d4e5f6a7b --usb /dev/sdb

`

func cmdExport(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := cli.NewFlagSet("airlock-appliance export", exportUsage, stderr)
	state := fs.String("state", "", "appliance state directory (required)")
	id := fs.String("ceremony", "", "ceremony id of the kept response (default: the newest)")
	out := fs.String("out", "", "folder to create for response.json and record.json (must not exist)")
	usbDev := fs.String("usb", "", "USB stick device or FAT32 image to write the response folder to")
	list := fs.Bool("list", false, "list the ceremonies whose response is kept")
	pos, err := parseInterleaved(fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return cli.Usagef("export takes no arguments, got %q: name the folder with --out", pos[0])
	}
	if *state == "" {
		return cli.Usagef("export needs --state DIR")
	}
	if !*list && (*out == "") == (*usbDev == "") {
		return cli.Usagef("export needs one of --out NEW_FOLDER or --usb DEVICE (or --list)")
	}
	st, err := appliance.OpenState(*state, appliance.SystemClock)
	if err != nil {
		return err
	}
	defer st.Close()
	ids, err := st.KeptList()
	if err != nil {
		return err
	}
	if *list {
		if len(ids) == 0 {
			fmt.Fprintf(stdout, "no kept responses in %s\n", st.Path())
		}
		for _, k := range ids {
			e, err := st.Kept(k)
			if err != nil {
				return err
			}
			fmt.Fprintf(stdout, "%s  %s version %d\n", k, e.Role, e.Version)
		}
		return nil
	}
	if *id == "" {
		if len(ids) == 0 {
			return fmt.Errorf("no kept responses in %s: nothing was signed with this state directory yet", st.Path())
		}
		*id = ids[len(ids)-1]
	}
	var sink appliance.Sink = appliance.DirSink(*out)
	if *usbDev != "" {
		sink = sinks.USBSink{Device: *usbDev}
	}
	where, err := appliance.ExportKept(ctx, st, *id, sink, appliance.SystemClock)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "response and record of ceremony %s written to %s\n", *id, where)
	return nil
}

// exportRetry asks the operator, on the terminal UI, where to write the
// kept response after an export failed: another folder, a USB stick, QR
// codes on the screen, or nowhere for now.
type exportRetry struct{ ui chooser }

// Export choices, in the order shown.
var retryChoices = []string{
	"write to another folder",
	"write to a USB stick",
	"show as QR codes on this screen",
	"stop: the response stays kept on the appliance (airlock-appliance export writes it later)",
}

func (r exportRetry) RetryExport(ctx context.Context, failed error) (appliance.Sink, error) {
	text := "Signed; the response is kept; export failed: " + failed.Error() + "\nWrite it somewhere else; nothing is signed again."
	i, err := r.ui.Choose(ctx, "export failed: the signed response is kept", text, retryChoices)
	if err != nil {
		return nil, err
	}
	switch i {
	case 0:
		for {
			ans, err := r.ui.Ask(ctx, appliance.Question{Title: "write to another folder",
				Text: "Type the path of a new folder for response.json and record.json (it must not exist yet)."})
			if err != nil {
				return nil, err
			}
			if ans = strings.TrimSpace(ans); ans != "" {
				return uiSink{ui: r.ui, sink: appliance.DirSink(ans)}, nil
			}
			r.ui.Show(ctx, appliance.Message{Level: appliance.Warning, Text: "no folder typed: type a path, e.g. /media/stick/response"})
		}
	case 1:
		dev, err := pickDevice(ctx, r.ui, "write the response to a USB stick")
		if err != nil {
			return nil, err
		}
		return uiSink{ui: r.ui, sink: sinks.USBSink{Device: dev}, readBack: true}, nil
	case 2:
		return qrSink{ui: r.ui}, nil
	}
	return nil, nil
}

// uiSink writes through sink and shows where on the export screen.
type uiSink struct {
	ui       chooser
	sink     appliance.Sink
	readBack bool
}

func (s uiSink) Export(ctx context.Context, e appliance.Export) (string, error) {
	where, err := s.sink.Export(ctx, e)
	if err != nil {
		return "", err
	}
	if abs, err := filepath.Abs(where); err == nil && !strings.Contains(where, ":/") {
		where = abs
	}
	s.ui.SetExport(tui.ExportStatus{Path: where, ReadBack: s.readBack, Response: e.Response})
	return where, nil
}

// qrSink shows the response as animated QR codes once the ceremony is done.
type qrSink struct{ ui chooser }

func (s qrSink) Export(_ context.Context, e appliance.Export) (string, error) {
	if len(e.Response) == 0 {
		return "", errors.New("qr: empty response")
	}
	s.ui.SetExport(tui.ExportStatus{Path: "QR codes on the export screen", Response: e.Response, ShowQR: true})
	return "QR codes on the export screen (the record stays kept on the appliance)", nil
}
