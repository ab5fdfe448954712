package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"

	"golang.org/x/term"

	"airlock.dev/airlock/internal/cli"
	"airlock.dev/airlock/internal/safetext"
	"airlock.dev/airlock/transfer/bundle"
	"airlock.dev/airlock/transfer/qr"
	"airlock.dev/airlock/transfer/ur"
)

const qrUsage = `usage: airlock qr show FILE|BUNDLE [--png DIR] [--fps N] [--fragment N] [--frames N] [--loop]
       airlock qr scan (--images DIR | --zbarcam [--device /dev/videoN] | --device /dev/videoN | --lines FILE|-) --out FILE

show sends FILE (a request or a signature response), or the QR part of the
release bundle folder BUNDLE (request.json and the provenance bundles packed
together; artifacts stay behind and go by USB when the content is to be
reviewed), as an animated,
fountain-coded QR code (Blockchain Commons UR): in the terminal, drawn with
half blocks in explicit black and white, or as PNG frames written into DIR.
Each frame carries part of the message; the receiver needs only enough of
them, in any order. Compare the fingerprint (four words) shown on both sides.

scan reads frames until the message is complete and writes it to FILE,
showing progress (percent, frames seen) and the fingerprint on stderr.
Sources: a folder of PNG/JPEG images, zbarcam on a camera, a V4L2 camera
read directly, or lines of decoded symbols (zbarcam --raw output; - is stdin).

examples:
  airlock qr show bundle
  airlock qr show response.json
  airlock qr show response.json --png frames --frames 60
  airlock qr scan --zbarcam --device /dev/video0 --out response.json
  airlock qr scan --images frames --out response.json
`

const (
	// maxFPS caps the animation rate; cameras read 5-10 fps reliably.
	maxFPS = 60
	// maxPNGFrames caps how many PNG frames show --png writes.
	maxPNGFrames = 100_000
	// pngScale is the pixels per module of PNG frames.
	pngScale = 4
)

func cmdQR(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return cli.Usagef("airlock qr needs a subcommand: show, scan")
	}
	switch args[0] {
	case "-h", "-help", "--help", "help":
		fmt.Fprint(stderr, qrUsage)
		fmt.Fprintln(stderr, "\nRun airlock qr show -h or airlock qr scan -h for each subcommand's flags.")
		return nil
	case "show":
		return qrShow(ctx, args[1:], stdout, stderr)
	case "scan":
		return qrScan(ctx, args[1:], stderr)
	default:
		return cli.Usagef("unknown qr subcommand %q (show, scan)", args[0])
	}
}

// errShown ends an animation that showed the frames it was asked for.
var errShown = errors.New("frames shown")

func qrShow(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := cli.NewFlagSet("airlock qr show", qrUsage, stderr)
	pngDir := fs.String("png", "", "write PNG frames into this folder (new or empty) instead of animating")
	fps := fs.Float64("fps", 5, "frames per second in the terminal")
	fragment := fs.Int("fragment", ur.DefaultMaxFragmentLen, "bytes of the message per frame (smaller: smaller QR codes, more frames)")
	frames := fs.Int("frames", 0, "frames to show or write (default: three times the fragment count, plus 10)")
	loop := fs.Bool("loop", false, "animate until interrupted (terminal only)")
	if err := cli.Parse(fs, flagsFirst(fs, args)); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return cli.Usagef("want one FILE to show")
	}
	if *fps <= 0 || *fps > maxFPS {
		return cli.Usagef("--fps %g: want more than 0 and at most %d", *fps, maxFPS)
	}
	if *fragment < ur.DefaultMinFragmentLen || *fragment > ur.MaxFragmentLen {
		return cli.Usagef("--fragment %d: want %d to %d", *fragment, ur.DefaultMinFragmentLen, ur.MaxFragmentLen)
	}
	if *frames < 0 || *frames > maxPNGFrames {
		return cli.Usagef("--frames %d: want 0 to %d", *frames, maxPNGFrames)
	}
	if *loop && *pngDir != "" {
		return cli.Usagef("--loop animates in the terminal; it cannot be used with --png")
	}
	if *loop && *frames != 0 {
		return cli.Usagef("--loop shows frames until interrupted; drop --frames or --loop")
	}
	file := fs.Arg(0)
	var msg []byte
	if st, err := os.Stat(file); err == nil && st.IsDir() {
		msg, err = packQR(file, stderr)
		if err != nil {
			return err
		}
	} else if msg, err = readCapped(file, ur.MaxEncodeLen); err != nil {
		return err
	}
	if len(msg) == 0 {
		return fmt.Errorf("%s is empty; nothing to show", file)
	}
	enc, err := ur.NewEncoder(msg, ur.EncoderOptions{MaxFragmentLen: *fragment})
	if err != nil {
		return fmt.Errorf("%s: %w", file, err)
	}
	n := *frames
	if n == 0 {
		// Enough for a receiver to finish with a third of the frames
		// lost: each frame beyond the fragment count roughly halves the
		// chance that the received frames do not determine the message.
		n = 3*enc.SeqLen() + 10
		if enc.SinglePart() {
			n = 1
		}
	}
	if *pngDir != "" {
		return writePNGFrames(*pngDir, enc, n, stderr)
	}

	ctx, stop := signal.NotifyContext(ctx, os.Interrupt)
	defer stop()
	width := 0
	if f, ok := stdout.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		if w, _, err := term.GetSize(int(f.Fd())); err == nil {
			width = w
		}
	}
	shown := 0
	err = qr.Send(ctx, enc, *fps, func(part string) error {
		sym, err := qr.Encode([]byte(part), qr.M)
		if err != nil {
			return err
		}
		if need := sym.Size() + 2*qr.QuietZone; width > 0 && need > width {
			return fmt.Errorf("the qr code is %d columns wide but the terminal has %d: enlarge the window or pass a smaller --fragment", need, width)
		}
		shown++
		counter := fmt.Sprintf("frame %d", shown)
		if !*loop {
			counter = fmt.Sprintf("frame %d/%d", shown, n)
		}
		// Home the cursor and clear the screen, then draw.
		fmt.Fprintf(stdout, "\x1b[H\x1b[2J%s%s · %d fragments · fingerprint: %s\n", sym.ANSI(qr.QuietZone), counter, enc.SeqLen(), enc.Fingerprint())
		if !*loop && shown >= n {
			return errShown
		}
		return nil
	})
	switch {
	case errors.Is(err, errShown):
		return nil
	case *loop && errors.Is(err, context.Canceled) && ctx.Err() != nil:
		fmt.Fprintln(stderr, "airlock qr show: stopped")
		return nil
	}
	return err
}

func writePNGFrames(dir string, enc *ur.Encoder, n int, stderr io.Writer) error {
	if err := os.Mkdir(dir, 0o755); err != nil && !errors.Is(err, os.ErrExist) {
		return err
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	if len(entries) > 0 {
		return fmt.Errorf("%s is not empty; give a new or empty folder for the frames", dir)
	}
	for i := 1; i <= n; i++ {
		png, err := qr.RenderPNG([]byte(enc.NextPart()), pngScale)
		if err != nil {
			return fmt.Errorf("frame %d: %w", i, err)
		}
		if err := writeNewFile(filepath.Join(dir, fmt.Sprintf("frame-%06d.png", i)), png, 0o644); err != nil {
			return err
		}
	}
	fmt.Fprintf(stderr, "airlock qr show: %d frames (%d fragments of %d bytes) in %s; fingerprint: %s\n", n, enc.SeqLen(), enc.FragmentLen(), dir, enc.Fingerprint())
	return nil
}

func qrScan(ctx context.Context, args []string, stderr io.Writer) error {
	fs := cli.NewFlagSet("airlock qr scan", qrUsage, stderr)
	images := fs.String("images", "", "folder of PNG/JPEG frames")
	zbarcam := fs.Bool("zbarcam", false, "read frames with zbarcam from --device (default /dev/video0)")
	device := fs.String("device", "", "V4L2 camera, e.g. /dev/video0")
	lines := fs.String("lines", "", "file of decoded symbols, one per line (- for stdin)")
	out := fs.String("out", "", "file to write the message to (must not exist)")
	maxBytes := fs.Int("max-bytes", ur.DefaultMaxMessageLen, "refuse messages larger than this")
	if err := cli.Parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 0 {
		return cli.Usagef("unexpected argument %q", fs.Arg(0))
	}
	sources := 0
	for _, set := range []bool{*images != "", *zbarcam || *device != "", *lines != ""} {
		if set {
			sources++
		}
	}
	if sources != 1 {
		return cli.Usagef("want exactly one source: --images DIR, --zbarcam, --device /dev/videoN or --lines FILE")
	}
	if *out == "" {
		return cli.Usagef("--out FILE is required")
	}
	if *maxBytes <= 0 || *maxBytes > ur.DefaultMaxMessageLen {
		return cli.Usagef("--max-bytes %d: want 1 to %d", *maxBytes, ur.DefaultMaxMessageLen)
	}
	if _, err := os.Lstat(*out); err == nil {
		return fmt.Errorf("%s exists; choose a new file for --out", *out)
	}
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt)
	defer stop()

	var src qr.Source
	what := ""
	switch {
	case *images != "":
		z, err := qr.NewZbar()
		if err != nil {
			return err
		}
		defer z.Close()
		ds, err := qr.NewDirSource(*images, z)
		if err != nil {
			return err
		}
		src, what = ds, "images in "+*images
	case *zbarcam:
		dev := *device
		if dev == "" {
			dev = "/dev/video0"
		}
		zc, err := qr.StartZbarcam(dev)
		if err != nil {
			return err
		}
		defer zc.Close()
		src, what = zc, "zbarcam on "+dev
	case *device != "":
		z, err := qr.NewZbar()
		if err != nil {
			return err
		}
		defer z.Close()
		cam, err := qr.OpenCamera(*device, z)
		if err != nil {
			return err
		}
		defer cam.Close()
		src, what = cam, "camera "+*device
	default:
		var r io.Reader = os.Stdin
		name := "stdin"
		if *lines != "-" {
			f, err := os.Open(*lines)
			if err != nil {
				return err
			}
			defer f.Close()
			r, name = f, *lines
		}
		ls := qr.NewLineSource(r)
		defer ls.Close()
		src, what = ls, "lines from "+name
	}

	fmt.Fprintf(stderr, "airlock qr scan: reading %s\n", safetext.String(what))
	dec := ur.NewDecoder(ur.Limits{MaxMessageLen: *maxBytes})
	lastPct := -1
	msg, err := qr.Receive(ctx, src, dec, func(p ur.Progress, ferr error) {
		pct := int(p.Fraction * 100)
		if pct == lastPct && ferr == nil {
			return
		}
		lastPct = pct
		line := fmt.Sprintf("airlock qr scan: %3d%% · %d frames seen", pct, p.Frames)
		if p.Rejected > 0 {
			line += fmt.Sprintf(" (%d refused)", p.Rejected)
		}
		if p.Fragments > 0 {
			line += fmt.Sprintf(" · %d/%d fragments", p.Known, p.Fragments)
		}
		if ferr != nil {
			line += " · frame refused: " + safetext.String(oneLine(ferr.Error()))
		}
		fmt.Fprintln(stderr, line)
	})
	if err != nil {
		p := dec.Progress()
		return fmt.Errorf("scan stopped at %d%% after %d frames: %w", int(p.Fraction*100), p.Frames, err)
	}
	if err := writeNewFile(*out, msg, 0o644); err != nil {
		return err
	}
	fmt.Fprintf(stderr, "airlock qr scan: complete: %d bytes written to %s; fingerprint: %s (compare it with the sender's)\n", len(msg), *out, ur.Fingerprint(msg))
	return nil
}

func oneLine(s string) string { return strings.ReplaceAll(s, "\n", " ") }

// packQR packs the QR part of the bundle folder dir and says what it holds
// and what it leaves behind.
func packQR(dir string, stderr io.Writer) ([]byte, error) {
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, err
	}
	defer root.Close()
	msg, m, err := bundle.WriteQR(root.FS())
	if err != nil {
		return nil, fmt.Errorf("%s: %w", dir, err)
	}
	fmt.Fprintf(stderr, "airlock qr show: %s: request.json and %d provenance files, %d bytes packed; artifacts are not sent: carry the bundle by USB for a content review\n",
		dir, len(m.Files)-1, len(msg))
	fmt.Fprintf(stderr, "airlock qr show: request fingerprint: %s (the appliance shows it after the import: compare)\n", ur.Fingerprint(m.Document))
	return msg, nil
}
