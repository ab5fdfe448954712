//go:build !linux

package cli

// noEcho does nothing where termios is not wired up; term.ReadPassword
// still reads without echo.
func noEcho(int) error { return nil }
