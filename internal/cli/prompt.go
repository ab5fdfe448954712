package cli

import (
	"fmt"
	"os"

	"golang.org/x/term"
)

// readSecret turns echo off on the terminal, and only then shows the
// prompt, so that nothing typed early (a holder typing ahead of the prompt)
// ever appears on screen. term.ReadPassword alone would print the prompt
// while echo is still on.
func readSecret(tty *os.File, prompt string) ([]byte, error) {
	fd := int(tty.Fd())
	state, err := term.GetState(fd)
	if err != nil {
		return nil, fmt.Errorf("not a terminal: %w", err)
	}
	if err := noEcho(fd); err != nil {
		return nil, fmt.Errorf("turning echo off: %w", err)
	}
	defer func() { _ = term.Restore(fd, state) }()
	fmt.Fprint(tty, prompt)
	pin, err := term.ReadPassword(fd)
	fmt.Fprintln(tty)
	return pin, err
}

// ReadSecret asks for a secret on tty with echo off before the prompt is
// shown.
func ReadSecret(tty *os.File, prompt string) ([]byte, error) { return readSecret(tty, prompt) }
