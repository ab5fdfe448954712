package tuf

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"unicode/utf8"
)

// Caps on metadata and request input. Every byte of a bundle is hostile.
const (
	// MaxMetadataBytes caps one metadata file.
	MaxMetadataBytes = 32 << 20
	// MaxRequestBytes caps request.json (it embeds several metadata files).
	MaxRequestBytes = 64 << 20
	// MaxResponseBytes caps a signature response; it fits one QR code.
	MaxResponseBytes = 64 << 10
	// MaxJSONDepth caps object and array nesting.
	MaxJSONDepth = 32
	// MaxTargets caps the targets of one role.
	MaxTargets = 1_000_000
	// MaxKeys caps the keys of one role or delegation set.
	MaxKeys = 1024
	// MaxSignatures caps the signatures on one metadata file.
	MaxSignatures = 1024
	// MaxRootChain caps how many root versions one update may walk.
	MaxRootChain = 1024
)

// checkStrictJSON refuses JSON that parsers might read differently: invalid
// UTF-8, duplicate object keys, floating point or out-of-range numbers,
// nesting past MaxJSONDepth, and trailing data after the value.
func checkStrictJSON(data []byte, limit int) error {
	if len(data) > limit {
		return fmt.Errorf("%d bytes is over the %d-byte cap", len(data), limit)
	}
	if !utf8.Valid(data) {
		return errors.New("invalid utf-8")
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	if err := strictValue(dec, 0, ""); err != nil {
		return err
	}
	if _, err := dec.Token(); err != io.EOF {
		return errors.New("trailing data after the json value")
	}
	return nil
}

func strictValue(dec *json.Decoder, depth int, path string) error {
	tok, err := dec.Token()
	if err != nil {
		return fmt.Errorf("malformed json at %s: %w", pathOr(path), err)
	}
	switch t := tok.(type) {
	case json.Delim:
		if depth >= MaxJSONDepth {
			return fmt.Errorf("json nested deeper than %d at %s", MaxJSONDepth, pathOr(path))
		}
		switch t {
		case '{':
			seen := map[string]bool{}
			for dec.More() {
				kt, err := dec.Token()
				if err != nil {
					return fmt.Errorf("malformed json at %s: %w", pathOr(path), err)
				}
				k, ok := kt.(string)
				if !ok {
					return fmt.Errorf("malformed json at %s: object key is not a string", pathOr(path))
				}
				if seen[k] {
					return fmt.Errorf("duplicate key %q at %s", k, pathOr(path))
				}
				seen[k] = true
				if err := strictValue(dec, depth+1, path+"."+k); err != nil {
					return err
				}
			}
		case '[':
			for i := 0; dec.More(); i++ {
				if err := strictValue(dec, depth+1, fmt.Sprintf("%s[%d]", path, i)); err != nil {
					return err
				}
			}
		}
		if _, err := dec.Token(); err != nil {
			return fmt.Errorf("malformed json at %s: %w", pathOr(path), err)
		}
	case json.Number:
		s := t.String()
		if strings.ContainsAny(s, ".eE") {
			return fmt.Errorf("number %s at %s is not an integer (canonical json has integers only)", s, pathOr(path))
		}
		if _, err := t.Int64(); err != nil {
			return fmt.Errorf("number %s at %s overflows a 64-bit integer", s, pathOr(path))
		}
	}
	return nil
}

func pathOr(p string) string {
	if p == "" {
		return "top level"
	}
	return strings.TrimPrefix(p, ".")
}
