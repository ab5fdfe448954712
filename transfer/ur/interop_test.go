package ur

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// interopScript returns the path of a Node script of the interop peer
// package (test/interop), found by walking up to the repository root.
func interopScript(t testing.TB, name string) string {
	t.Helper()
	if _, err := exec.LookPath("node"); err != nil {
		t.Skip("node is not installed; scripts/install-test-deps.sh installs it")
	}
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			break
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("repository root (go.mod) not found above the test's directory")
		}
		dir = parent
	}
	script := filepath.Join(dir, "test", "interop", name)
	if _, err := os.Stat(filepath.Join(dir, "test", "interop", "node_modules", "@ngraveio", "bc-ur")); err != nil {
		t.Fatalf("@ngraveio/bc-ur is not installed in test/interop (run npm ci there): %v", err)
	}
	return script
}

// jsDecode feeds parts to the reference decoder and returns the message
// and how many parts it consumed.
func jsDecode(t testing.TB, parts []string) ([]byte, int) {
	t.Helper()
	cmd := exec.Command("node", interopScript(t, "ur-decode.js"))
	cmd.Stdin = strings.NewReader(strings.Join(parts, "\n") + "\n")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("reference decoder: %v: %s", err, stderr.String())
	}
	var res struct {
		Hex   string `json:"hex"`
		Lines int    `json:"lines"`
	}
	if err := json.Unmarshal(out, &res); err != nil {
		t.Fatalf("reference decoder output %q: %v", out, err)
	}
	msg, err := hex.DecodeString(res.Hex)
	if err != nil {
		t.Fatal(err)
	}
	return msg, res.Lines
}

func jsEncode(t testing.TB, msg []byte, maxFrag, count int) []string {
	t.Helper()
	f := filepath.Join(t.TempDir(), "msg.hex")
	if err := os.WriteFile(f, []byte(hex.EncodeToString(msg)), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("node", interopScript(t, "ur-encode.js"), f, strconv.Itoa(maxFrag), strconv.Itoa(count))
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("reference encoder: %v: %s", err, stderr.String())
	}
	return strings.Fields(string(out))
}

func dropFrames(parts []string, loss float64, seed uint64) []string {
	rng := rand.New(rand.NewPCG(seed, 7))
	var kept []string
	for _, p := range parts {
		if rng.Float64() >= loss {
			kept = append(kept, p)
		}
	}
	return kept
}

// TestInteropOursToReference: our frames, a third of them dropped, decode
// with the reference JavaScript decoder, for both schedules and cases.
func TestInteropOursToReference(t *testing.T) {
	for _, tc := range []struct {
		name    string
		size    int
		maxFrag int
		opts    EncoderOptions
	}{
		{"dense uppercase", 3000, 100, EncoderOptions{}},
		{"reference schedule lowercase", 2000, 60, EncoderOptions{Schedule: ScheduleReference, Lowercase: true}},
		{"single part", 50, 200, EncoderOptions{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			msg := makeMessage(tc.size, tc.name)
			tc.opts.MaxFragmentLen = tc.maxFrag
			e, err := NewEncoder(msg, tc.opts)
			if err != nil {
				t.Fatal(err)
			}
			var parts []string
			for range 20*e.SeqLen() + 5 {
				parts = append(parts, e.NextPart())
			}
			got, _ := jsDecode(t, dropFrames(parts, 0.3, uint64(tc.size)))
			if !bytes.Equal(got, msg) {
				t.Fatalf("reference decoder returned a different message")
			}
		})
	}
}

// TestInteropReferenceToOurs: the reference encoder's frames, a third of
// them dropped and the rest reversed, decode with ours.
func TestInteropReferenceToOurs(t *testing.T) {
	msg := makeMessage(2500, "from-js")
	parts := jsEncode(t, msg, 90, 120)
	kept := dropFrames(parts, 0.3, 3)
	for i, j := 0, len(kept)-1; i < j; i, j = i+1, j-1 {
		kept[i], kept[j] = kept[j], kept[i]
	}
	d := NewDecoder(Limits{})
	for i, p := range kept {
		if err := d.Receive(p); err != nil {
			t.Fatalf("reference part %d: %v", i, err)
		}
		if d.Done() {
			break
		}
	}
	got, err := d.Message()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, msg) {
		t.Fatal("decoded message differs")
	}
	// The reference's single-part form decodes too.
	single := jsEncode(t, []byte("tiny"), 200, 1)
	if got, err := DecodeSingle(single[0], 0); err != nil || string(got) != "tiny" {
		t.Fatalf("DecodeSingle(%q) = %q, %v", single[0], got, err)
	}
}
