// Package cli holds what Airlock's command-line programs share: error and
// exit-code conventions, repeatable flags, durations with day units, and a
// terminal prompter for PINs.
package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"airlock.dev/airlock/hsm"
	"airlock.dev/airlock/internal/safetext"
)

// UsageError is a mistake in how a command was called: exit status 2.
type UsageError struct{ Msg string }

func (e *UsageError) Error() string { return e.Msg }

// Usagef returns a UsageError.
func Usagef(format string, args ...any) error { return &UsageError{Msg: fmt.Sprintf(format, args...)} }

// Exit prints err as "name: error: ..." on stderr and returns the exit
// status: 0 for nil, 2 for usage errors, 1 otherwise.
func Exit(name string, stderr io.Writer, err error) int {
	if err == nil {
		return 0
	}
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	// Errors quote file names, URLs and frame text from outside: show
	// them with the escaping every screen uses.
	msg := safetext.String(strings.ReplaceAll(err.Error(), "\n", " "))
	var ue *UsageError
	if errors.As(err, &ue) {
		fmt.Fprintf(stderr, "%s: usage error: %s (see %s -h)\n", name, msg, name)
		return 2
	}
	fmt.Fprintf(stderr, "%s: error: %s\n", name, msg)
	return 1
}

// List is a repeatable string flag.
type List []string

func (l *List) String() string     { return strings.Join(*l, ",") }
func (l *List) Set(v string) error { *l = append(*l, v); return nil }

// ParseDuration accepts Go durations plus a "d" (day) unit: "90d", "36h".
func ParseDuration(s string) (time.Duration, error) {
	if n, ok := strings.CutSuffix(s, "d"); ok {
		days, err := strconv.Atoi(n)
		if err != nil || days <= 0 || days > 3650 {
			return 0, fmt.Errorf("duration %q: want 1d to 3650d", s)
		}
		return time.Duration(days) * 24 * time.Hour, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		return 0, fmt.Errorf("duration %q: want a positive duration such as 90d or 36h", s)
	}
	return d, nil
}

// NewFlagSet returns a flag set that reports errors instead of exiting.
func NewFlagSet(name, usage string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, usage)
		fmt.Fprintln(stderr, "\nflags:")
		fs.SetOutput(stderr)
		fs.PrintDefaults()
	}
	return fs
}

// Parse parses args, turning flag errors into usage errors. The flag
// package's own messages are silenced so a mistake is reported once (by
// Exit); -h prints the usage text with every flag.
func Parse(fs *flag.FlagSet, args []string) error {
	out, usage := fs.Output(), fs.Usage
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	err := fs.Parse(args)
	fs.SetOutput(out)
	fs.Usage = usage
	if errors.Is(err, flag.ErrHelp) {
		if usage != nil {
			usage()
		}
		return err
	}
	if err != nil {
		return &UsageError{Msg: err.Error()}
	}
	return nil
}

// TerminalPrompter asks for PINs on the controlling terminal, never on
// stdout, without echo, and shows retries left before each try.
type TerminalPrompter struct {
	Out io.Writer // where prompts go (stderr)
}

// PIN implements hsm.Prompter.
func (p TerminalPrompter) PIN(_ context.Context, req hsm.PINRequest) ([]byte, error) {
	tty, err := os.OpenFile("/dev/tty", os.O_RDWR, 0)
	if err != nil {
		return nil, fmt.Errorf("a pin is needed for %s but there is no terminal to ask on: %w", req.URI, hsm.ErrCancelled)
	}
	defer tty.Close()
	who := req.URI.String()
	if req.Holder != "" {
		who = req.Holder + " (" + who + ")"
	}
	retries := ""
	if req.Retries >= 0 {
		retries = fmt.Sprintf(" [%d tries left]", req.Retries)
	}
	pin, err := readSecret(tty, fmt.Sprintf("PIN for %s%s: ", who, retries))
	if err != nil {
		return nil, fmt.Errorf("read pin: %w", err)
	}
	if len(pin) == 0 {
		return nil, hsm.ErrCancelled
	}
	return pin, nil
}

// Touch implements hsm.Prompter.
func (p TerminalPrompter) Touch(ctx context.Context, uri hsm.URI) func() {
	return p.TouchFor(ctx, hsm.TouchRequest{URI: uri})
}

// TouchFor implements hsm.HolderTouchPrompter: the prompt names the holder
// and the key.
func (p TerminalPrompter) TouchFor(_ context.Context, req hsm.TouchRequest) func() {
	out := p.Out
	if out == nil {
		out = os.Stderr
	}
	if req.Holder != "" {
		fmt.Fprintf(out, "%s: touch your key %s now (it is blinking)\n", req.Holder, req.URI)
	} else {
		fmt.Fprintf(out, "touch the key %s now (it is blinking)\n", req.URI)
	}
	start := time.Now()
	return func() { fmt.Fprintf(out, "touched after %.1fs\n", time.Since(start).Seconds()) }
}

var _ hsm.HolderTouchPrompter = TerminalPrompter{}

// OpenKeys opens every key URI.
func OpenKeys(ctx context.Context, uris []string, p hsm.Prompter) ([]hsm.Signer, error) {
	var out []hsm.Signer
	for _, s := range uris {
		u, err := hsm.ParseURI(s)
		if err != nil {
			return nil, Usagef("%v", err)
		}
		k, err := hsm.Open(ctx, u, p)
		if err != nil {
			return nil, err
		}
		out = append(out, k)
	}
	return out, nil
}
