package appliance

import (
	"bytes"
	"context"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"airlock.dev/airlock/transfer/ur"
	"airlock.dev/airlock/transfer/usb"
	"airlock.dev/airlock/tuf"
)

// fat32Image makes an empty FAT32 image with mkfs.vfat.
func fat32Image(t *testing.T) string {
	t.Helper()
	if _, err := exec.LookPath("mkfs.vfat"); err != nil {
		t.Skip("mkfs.vfat (dosfstools) is not installed")
	}
	img := filepath.Join(t.TempDir(), "stick.img")
	if err := os.WriteFile(img, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(img, 64<<20); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mkfs.vfat", "-F", "32", img).CombinedOutput(); err != nil {
		t.Fatalf("mkfs.vfat: %v\n%s", err, out)
	}
	return img
}

func TestUSBSinkExportsCeremonyToFAT32Image(t *testing.T) {
	img := fat32Image(t)
	s := newScenario(t).role("sigstore", 2, "alice", "bob")
	b := s.release("sigstore", "1.3.0", "", nil)
	ui := &scriptUI{confirm: map[string]bool{"alice": true, "bob": true}}
	c, err := New(Config{State: s.openState(), UI: ui, Clock: fixedClock(), Dev: true, Bundle: dirBundle(b),
		Keys: KeyURIs{"file:" + s.paths["alice"], "file:" + s.paths["bob"]}, Sink: USBSink{Device: img}, ID: "cer-1"})
	if err != nil {
		t.Fatal(err)
	}
	st, err := c.Run(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	want := img + ":/sigstore-v1-cer-1"
	if st.Export != want {
		t.Fatalf("exported to %q, want %q", st.Export, want)
	}
	v, err := usb.Open(img)
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	resp, err := fs.ReadFile(v.FS, "sigstore-v1-cer-1/"+ResponseFile)
	if err != nil {
		t.Fatal(err)
	}
	r, err := tuf.ParseResponse(resp)
	if err != nil || r.SignedSHA256 != st.SHA256 || len(r.Signatures) != 2 {
		t.Fatalf("response on the stick %+v %v", r, err)
	}
	rec, err := fs.ReadFile(v.FS, "sigstore-v1-cer-1/"+RecordFile)
	if err != nil {
		t.Fatal(err)
	}
	if tuf.SHA256Hex(rec) != r.RecordSHA256 {
		t.Fatal("the record on the stick is not the one the response names")
	}
	// The same ceremony folder is never overwritten.
	if _, err := (USBSink{Device: img}).Export(context.Background(), Export{CeremonyID: "cer-1", Role: "sigstore", Version: 1, Response: resp, Record: rec}); err == nil {
		t.Fatal("a second export over the same folder was accepted")
	}
}

func TestUSBSinkRefusesMissingDevice(t *testing.T) {
	_, err := (USBSink{Device: filepath.Join(t.TempDir(), "nope")}).Export(context.Background(), Export{Role: "r", Version: 1, CeremonyID: "x", Response: []byte("{}"), Record: []byte("{}")})
	if err == nil {
		t.Fatal("export to a missing device succeeded")
	}
}

func TestExportFolderNameIsPlain(t *testing.T) {
	for _, e := range []Export{
		{Role: "sigstore", Version: 3, CeremonyID: "20250602T120000Z-0011"},
		{Role: "../../etc", Version: -1, CeremonyID: "a/b\x00c\u202e"},
		{Role: string(bytes.Repeat([]byte("x"), 300)), Version: 1, CeremonyID: "id"},
	} {
		n := ExportFolderName(e)
		if n == "" || len(n) > MaxExportNameLen || n[0] == '.' {
			t.Errorf("%q -> %q", e.Role, n)
		}
		for _, r := range n {
			if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '-' || r == '_') {
				t.Errorf("%q -> %q has %q", e.Role, n, r)
			}
		}
	}
}

func TestQRSinkFramesDecodeToResponse(t *testing.T) {
	s := newScenario(t).role("sigstore", 2, "alice", "bob")
	var frames []string
	q := &QRSink{Frames: func(enc *ur.Encoder) {
		for range enc.SeqLen() + 5 {
			frames = append(frames, enc.NextPart())
		}
	}}
	ui := &scriptUI{confirm: map[string]bool{"alice": true, "bob": true}}
	c, err := New(Config{State: s.openState(), UI: ui, Clock: fixedClock(), Dev: true, Bundle: dirBundle(s.release("sigstore", "1.3.0", "", nil)),
		Keys: KeyURIs{"file:" + s.paths["alice"], "file:" + s.paths["bob"]}, Sink: q})
	if err != nil {
		t.Fatal(err)
	}
	st, err := c.Run(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(frames) < 2 || q.Encoder == nil {
		t.Fatalf("%d frames", len(frames))
	}
	d := ur.NewDecoder(ur.Limits{})
	for _, f := range frames[1:] { // one frame lost
		if err := d.Receive(f); err != nil {
			t.Fatal(err)
		}
		if d.Done() {
			break
		}
	}
	msg, err := d.Message()
	if err != nil {
		t.Fatal(err)
	}
	r, err := tuf.ParseResponse(msg)
	if err != nil || r.SignedSHA256 != st.SHA256 {
		t.Fatalf("decoded response %+v %v", r, err)
	}
	fr, err := QRFrames(msg, ur.EncoderOptions{}, 1<<30)
	if err != nil || len(fr) != MaxQRFrames {
		t.Fatalf("QRFrames: %d frames, %v", len(fr), err)
	}
}
