package sinks

import (
	"bytes"
	"context"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"airlock.dev/airlock/appliance"
	"airlock.dev/airlock/transfer/ur"
	"airlock.dev/airlock/transfer/usb"
)

// fat32Image makes an empty FAT32 image with mkfs.vfat.
func fat32Image(t *testing.T) string {
	t.Helper()
	if _, err := exec.LookPath("mkfs.vfat"); err != nil {
		t.Fatal("mkfs.vfat is missing: run scripts/install-test-deps.sh (package dosfstools)")
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

func export() appliance.Export {
	return appliance.Export{CeremonyID: "cer-1", Role: "sigstore", Version: 1,
		Response: []byte(`{"airlock_response":1,"role":"sigstore","version":1}`),
		Record:   []byte(strings.Repeat(`{"step":"signed"}`+"\n", 50))}
}

func TestUSBSinkExportsToFAT32Image(t *testing.T) {
	img := fat32Image(t)
	e := export()
	where, err := USBSink{Device: img}.Export(context.Background(), e)
	if err != nil {
		t.Fatal(err)
	}
	if want := img + ":/sigstore-v1-cer-1"; where != want {
		t.Fatalf("exported to %q, want %q", where, want)
	}
	v, err := usb.Open(img)
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	for name, want := range map[string][]byte{appliance.ResponseFile: e.Response, appliance.RecordFile: e.Record} {
		got, err := fs.ReadFile(v.FS, "sigstore-v1-cer-1/"+name)
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("%s on the stick: %q, %v", name, got, err)
		}
	}
	// The same ceremony folder is never overwritten.
	if _, err := (USBSink{Device: img}).Export(context.Background(), e); err == nil {
		t.Fatal("a second export over the same folder was accepted")
	}
}

func TestUSBSinkRefusesMissingDevice(t *testing.T) {
	_, err := (USBSink{Device: filepath.Join(t.TempDir(), "nope")}).Export(context.Background(), export())
	if err == nil || !strings.Contains(err.Error(), "usb sink") {
		t.Fatalf("export to a missing device: %v", err)
	}
	if _, err := (USBSink{}).Export(context.Background(), export()); err == nil || !strings.Contains(err.Error(), "no device given") {
		t.Fatalf("export without a device: %v", err)
	}
}

func TestExportFolderNameIsPlain(t *testing.T) {
	for _, e := range []appliance.Export{
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
	var frames []string
	q := &QRSink{Frames: func(enc *ur.Encoder) {
		for range enc.SeqLen() + 5 {
			frames = append(frames, enc.NextPart())
		}
	}}
	e := export()
	e.Response = bytes.Repeat(e.Response, 20)
	if _, err := q.Export(context.Background(), e); err != nil {
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
	if err != nil || !bytes.Equal(msg, e.Response) {
		t.Fatalf("decoded %d bytes, %v; want the response", len(msg), err)
	}
	fr, err := QRFrames(msg, ur.EncoderOptions{}, 1<<30)
	if err != nil || len(fr) != MaxQRFrames {
		t.Fatalf("QRFrames: %d frames, %v", len(fr), err)
	}
}
