package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"

	"golang.org/x/term"

	"airlock.dev/airlock/hsm"
	"airlock.dev/airlock/hsm/tpm" // also registers tpm: URIs with hsm.Open
	"airlock.dev/airlock/internal/cli"
)

// readNewPIN asks for a new PIN twice on the terminal.
func readNewPIN(what string) ([]byte, error) {
	tty, err := os.OpenFile("/dev/tty", os.O_RDWR, 0)
	if err != nil {
		return nil, fmt.Errorf("a new pin is needed for %s but there is no terminal to ask on (for automation only: --pin-file): %w", what, hsm.ErrCancelled)
	}
	defer tty.Close()
	ask := func(prompt string) ([]byte, error) {
		fmt.Fprint(tty, prompt)
		pin, err := term.ReadPassword(int(tty.Fd()))
		fmt.Fprintln(tty)
		if err != nil {
			return nil, fmt.Errorf("read pin: %w", err)
		}
		return pin, nil
	}
	first, err := ask(fmt.Sprintf("new PIN for %s (%d to %d characters): ", what, tpm.MinPINLen, tpm.MaxPINLen))
	if err != nil {
		return nil, err
	}
	if len(first) == 0 {
		return nil, hsm.ErrCancelled
	}
	if len(first) < tpm.MinPINLen || len(first) > tpm.MaxPINLen {
		clear(first)
		return nil, fmt.Errorf("the pin must be %d to %d characters; run enroll again", tpm.MinPINLen, tpm.MaxPINLen)
	}
	second, err := ask("type the new PIN again: ")
	if err != nil {
		clear(first)
		return nil, err
	}
	defer clear(second)
	if !bytes.Equal(first, second) {
		clear(first)
		return nil, errors.New("the two pins differ; nothing was enrolled, run enroll again")
	}
	return first, nil
}

// confirmTyped asks on the terminal for an exact typed answer.
func confirmTyped(stderr io.Writer, prompt, want string) error {
	tty, err := os.OpenFile("/dev/tty", os.O_RDWR, 0)
	if err != nil {
		return fmt.Errorf("destroying a key needs a typed confirmation but there is no terminal to ask on: %w", hsm.ErrCancelled)
	}
	defer tty.Close()
	fmt.Fprint(tty, prompt)
	line, err := bufio.NewReader(io.LimitReader(tty, maxConfirmBytes)).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("read confirmation: %w", err)
	}
	if strings.TrimSpace(line) != want {
		return fmt.Errorf("confirmation did not match; nothing was changed: %w", hsm.ErrCancelled)
	}
	return nil
}

// keyPrompter returns the terminal prompter, or a PIN-file prompter when a
// PIN file is named by flag or environment (automation only).
func keyPrompter(pinFile string, stderr io.Writer) (hsm.Prompter, error) {
	if pinFile == "" {
		pinFile = os.Getenv(pinFileEnv)
	}
	if pinFile == "" {
		return cli.TerminalPrompter{Out: stderr}, nil
	}
	return newFilePrompter(pinFile, stderr)
}

// filePrompter answers PIN prompts from a file, for automation. It never
// retries: once the device reports fewer retries than at the previous
// prompt (the file's PIN was refused), it cancels.
type filePrompter struct {
	file string
	pin  []byte
	out  io.Writer

	mu   sync.Mutex
	last map[string]int
}

func newFilePrompter(file string, stderr io.Writer) (*filePrompter, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, fmt.Errorf("pin file: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("pin file: %w", err)
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("pin file %s is not a regular file", file)
	}
	if st.Mode().Perm()&0o004 != 0 {
		fmt.Fprintf(stderr, "warning: pin file %s is readable by everyone; chmod 600 it\n", file)
	}
	raw, err := io.ReadAll(io.LimitReader(f, maxPINFileBytes+1))
	if err != nil {
		return nil, fmt.Errorf("pin file: %w", err)
	}
	defer clear(raw)
	pin, err := parsePINFile(raw)
	if err != nil {
		return nil, fmt.Errorf("pin file %s: %w", file, err)
	}
	return &filePrompter{file: file, pin: pin, out: stderr, last: map[string]int{}}, nil
}

// parsePINFile returns the first line of a PIN file.
func parsePINFile(raw []byte) ([]byte, error) {
	if len(raw) > maxPINFileBytes {
		return nil, fmt.Errorf("over the %d-byte cap", maxPINFileBytes)
	}
	line, _, _ := bytes.Cut(raw, []byte("\n"))
	line = bytes.TrimSuffix(line, []byte("\r"))
	if len(line) == 0 {
		return nil, errors.New("first line is empty; write the pin on it")
	}
	for _, c := range line {
		if c < 0x20 || c == 0x7f {
			return nil, errors.New("the pin has a control character")
		}
	}
	return bytes.Clone(line), nil
}

// PIN implements hsm.Prompter.
func (p *filePrompter) PIN(_ context.Context, req hsm.PINRequest) ([]byte, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	key := req.URI.String()
	if prev, ok := p.last[key]; ok && req.Retries >= 0 && prev >= 0 && req.Retries < prev {
		return nil, fmt.Errorf("the pin in %s was refused (%d tries left); not trying it again: %w", p.file, req.Retries, hsm.ErrCancelled)
	}
	p.last[key] = req.Retries
	return bytes.Clone(p.pin), nil
}

// Touch implements hsm.Prompter.
func (p *filePrompter) Touch(ctx context.Context, uri hsm.URI) func() {
	return cli.TerminalPrompter{Out: p.out}.Touch(ctx, uri)
}

// TouchFor implements hsm.HolderTouchPrompter.
func (p *filePrompter) TouchFor(ctx context.Context, req hsm.TouchRequest) func() {
	return cli.TerminalPrompter{Out: p.out}.TouchFor(ctx, req)
}

var _ hsm.HolderTouchPrompter = (*filePrompter)(nil)
