package main

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"airlock.dev/airlock/hsm"
)

// keysFile is the file in the appliance state directory that lists the
// holders' key URIs, one a line, written by init-state --key. The terminal
// ui reads it when no --key is given (the appliance image starts the ui
// that way: its command line is fixed in the read-only root).
const keysFile = "keys.txt"

// Caps on the key list.
const (
	maxKeyListBytes = 8 << 10
	maxKeyListKeys  = 32
)

// parseKeyList parses a key list: one key URI a line; blank lines and lines
// starting with # are skipped. Every URI must parse, none may repeat, and
// there must be at least one. The URIs are returned in canonical form.
func parseKeyList(b []byte) ([]string, error) {
	if len(b) > maxKeyListBytes {
		return nil, fmt.Errorf("key list is %d bytes, over the %d-byte cap", len(b), maxKeyListBytes)
	}
	var out []string
	seen := map[string]int{}
	for i, line := range bytes.Split(b, []byte("\n")) {
		s := strings.TrimSpace(string(line))
		if s == "" || strings.HasPrefix(s, "#") {
			continue
		}
		u, err := hsm.ParseURI(s)
		if err != nil {
			return nil, fmt.Errorf("key list line %d: %w", i+1, err)
		}
		c := u.String()
		if first, ok := seen[c]; ok {
			return nil, fmt.Errorf("key list line %d: %s repeats line %d: list each key once", i+1, c, first)
		}
		if len(out) == maxKeyListKeys {
			return nil, fmt.Errorf("key list line %d: more than %d keys", i+1, maxKeyListKeys)
		}
		seen[c] = i + 1
		out = append(out, c)
	}
	if len(out) == 0 {
		return nil, errors.New("key list names no key: one key URI a line, e.g. tpm:handle=0x81000010")
	}
	return out, nil
}

// stateKeys reads the key list provisioned in a state directory.
func stateKeys(state string) ([]string, error) {
	path := filepath.Join(state, keysFile)
	b, err := readCapped(path, maxKeyListBytes)
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("no --key given and %s does not exist: provision the holders' keys with init-state --key URI, or give --key", path)
	}
	if err != nil {
		return nil, err
	}
	keys, err := parseKeyList(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return keys, nil
}

// writeStateKeys writes the key list into a state directory (mode 0600,
// through a temporary file, synced), replacing an older one.
func writeStateKeys(state string, keys []string) error {
	var b strings.Builder
	b.WriteString("# key URIs of the holders, one a line (airlock-appliance init-state --key)\n")
	for _, k := range keys {
		b.WriteString(k + "\n")
	}
	if _, err := parseKeyList([]byte(b.String())); err != nil {
		return err
	}
	tmp := filepath.Join(state, keysFile+".new")
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("key list: %w", err)
	}
	_, werr := f.WriteString(b.String())
	if werr == nil {
		werr = f.Sync()
	}
	if cerr := f.Close(); werr == nil {
		werr = cerr
	}
	if werr != nil {
		os.Remove(tmp)
		return fmt.Errorf("key list: %w", werr)
	}
	if err := os.Rename(tmp, filepath.Join(state, keysFile)); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("key list: %w", err)
	}
	d, err := os.Open(state)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
