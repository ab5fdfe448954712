package usb

import (
	"encoding/binary"
	"errors"
	"os"
	"strings"
	"testing"
)

// TestWriteResponseLyingStick marks every free cluster of a FAT32 image bad
// while its FSInfo record still says they are free: the write must be
// refused, from the table, before anything is written, and the stick must
// stay byte for byte as it was.
func TestWriteResponseLyingStick(t *testing.T) {
	img := fatImage(t, "32", 64<<20, "")
	f, err := os.OpenFile(img, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	bs := make([]byte, 512)
	if _, err := f.ReadAt(bs, 0); err != nil {
		t.Fatal(err)
	}
	g, err := parseFAT(bs)
	if err != nil {
		t.Fatal(err)
	}
	table := make([]byte, g.fatBytes)
	if _, err := f.ReadAt(table, g.fatOffset); err != nil {
		t.Fatal(err)
	}
	marked := 0
	for c := int64(2); c < g.clusters+2; c++ {
		if binary.LittleEndian.Uint32(table[c*4:])&0x0FFFFFFF == 0 {
			binary.LittleEndian.PutUint32(table[c*4:], 0x0FFFFFF7)
			marked++
		}
	}
	for i := int64(0); i < g.numFATs; i++ {
		if _, err := f.WriteAt(table, g.fatOffset+i*g.fatBytes); err != nil {
			t.Fatal(err)
		}
	}
	f.Close()
	if marked < 1000 {
		t.Fatalf("only %d free clusters marked bad", marked)
	}
	before, err := os.ReadFile(img)
	if err != nil {
		t.Fatal(err)
	}
	err = WriteResponse(img, "airlock-response-1", []ResponseFile{{Name: "response.json", Data: []byte(`{"x":1}`)}})
	if !errors.Is(err, ErrNoSpace) || !strings.Contains(err.Error(), "the allocation table shows 0 free clusters") {
		t.Fatalf("WriteResponse = %v, want a refusal counting the table's free clusters", err)
	}
	after, err := os.ReadFile(img)
	if err != nil {
		t.Fatal(err)
	}
	if string(before) != string(after) {
		t.Fatal("the refused write changed the stick")
	}
	// Byte-identical is stronger than fsck.vfat -n, which on this image
	// reports only the lying free-cluster record the test planted.
}
