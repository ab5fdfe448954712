package qr

import (
	"bytes"
	"context"
	"errors"
	"io"
	"strings"
	"testing"
)

// FuzzLineSource feeds hostile zbarcam output to the line reader: every
// line handed out is one non-empty line of the input without its line
// ending, in order, and the source ends with io.EOF or the over-long-line
// error.
func FuzzLineSource(f *testing.F) {
	for _, s := range []string{"UR:BYTES/1-3/ABC\nUR:BYTES/2-3/DEF\r\n\n", "", "\n\n\r\n", "no newline", "a\rb\n", strings.Repeat("A", MaxLineLen+1) + "\nB\n", strings.Repeat("A", MaxLineLen) + "\nB\n", strings.Repeat("A", MaxLineLen-1) + "\r\n", "\x00\xff\n"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		src := NewLineSource(bytes.NewReader(in))
		defer src.Close()
		var want [][]byte
		for _, l := range bytes.Split(in, []byte("\n")) {
			if l = bytes.TrimSuffix(l, []byte("\r")); len(l) > 0 {
				want = append(want, l)
			}
		}
		for i := 0; ; i++ {
			line, err := src.Next(context.Background())
			if errors.Is(err, io.EOF) {
				if i != len(want) {
					t.Fatalf("%d lines handed out, the input has %d", i, len(want))
				}
				return
			}
			if err != nil {
				if !strings.Contains(err.Error(), "longer than the cap") {
					t.Fatalf("line %d: %v", i, err)
				}
				if i >= len(want) || len(want[i]) <= MaxLineLen {
					t.Fatalf("line %d refused as too long, but it is not", i)
				}
				return
			}
			if i >= len(want) || !bytes.Equal(line, want[i]) {
				t.Fatalf("line %d is %q, not the input's", i, line)
			}
			if len(line) > MaxLineLen {
				t.Fatalf("line %d is %d bytes, over the cap", i, len(line))
			}
		}
	})
}
