package tpm

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"unicode/utf8"

	"github.com/google/go-tpm/tpm2"
	"github.com/google/go-tpm/tpm2/transport"

	"airlock.dev/airlock/hsm"
)

// Every Airlock key has a record in an NV index beside it: the holder's
// name and the key's certification, so that opening the key needs no PIN and
// no file outside the TPM. The record is public (the certification is
// verified offline; the holder name is informational). The index for key
// handle 0x81XXXXXX is 0x01XXXXXX, in the owner's NV range, which is why
// Airlock keys live at 0x81000000–0x813FFFFF.

const (
	// recordMagic starts an Airlock key record.
	recordMagic = "ALTK\x01"
	// Caps on record fields.
	maxHolderLen    = 128
	maxStatementLen = 1024
	maxSignatureLen = 512
	maxPublicLen    = 1024
	// maxRecordLen caps the record (and the NV index's size).
	maxRecordLen = len(recordMagic) + 2*5 + maxHolderLen + maxStatementLen + maxSignatureLen + 2*maxPublicLen
	// nvChunk is how much one NV read or write moves (every TPM allows 512).
	nvChunk = 512

	// Handle range Airlock keys may use.
	minKeyHandle = 0x81000000
	maxKeyHandle = 0x813FFFFF
)

// record is what the NV index beside a key holds.
type record struct {
	Holder      string
	Attestation hsm.Attestation
}

func (r *record) marshal() ([]byte, error) {
	if err := checkHolder(r.Holder); err != nil {
		return nil, err
	}
	var b bytes.Buffer
	b.WriteString(recordMagic)
	a := &r.Attestation
	for _, f := range []struct {
		name string
		v    []byte
		max  int
	}{
		{"holder", []byte(r.Holder), maxHolderLen},
		{"statement", a.Statement, maxStatementLen},
		{"signature", a.Signature, maxSignatureLen},
		{"attestation key", a.AttestationKey, maxPublicLen},
		{"key public", a.KeyPublic, maxPublicLen},
	} {
		if len(f.v) > f.max {
			return nil, fmt.Errorf("key record: %s is %d bytes, over the %d-byte cap", f.name, len(f.v), f.max)
		}
		b.Write(binary.BigEndian.AppendUint16(nil, uint16(len(f.v))))
		b.Write(f.v)
	}
	return b.Bytes(), nil
}

// parseRecord decodes a key record strictly: magic, five capped fields, no
// trailing bytes.
func parseRecord(b []byte) (*record, error) {
	if len(b) > maxRecordLen {
		return nil, fmt.Errorf("key record is %d bytes, over the %d-byte cap", len(b), maxRecordLen)
	}
	if !bytes.HasPrefix(b, []byte(recordMagic)) {
		return nil, errors.New("nv index does not hold an airlock key record")
	}
	rest := b[len(recordMagic):]
	next := func(name string, max int) ([]byte, error) {
		if len(rest) < 2 {
			return nil, fmt.Errorf("key record: truncated before %s", name)
		}
		n := int(binary.BigEndian.Uint16(rest))
		rest = rest[2:]
		if n > max {
			return nil, fmt.Errorf("key record: %s is %d bytes, over the %d-byte cap", name, n, max)
		}
		if len(rest) < n {
			return nil, fmt.Errorf("key record: %s truncated", name)
		}
		v := bytes.Clone(rest[:n])
		rest = rest[n:]
		return v, nil
	}
	var r record
	holder, err := next("holder", maxHolderLen)
	if err != nil {
		return nil, err
	}
	r.Holder = string(holder)
	if err := checkHolder(r.Holder); err != nil {
		return nil, fmt.Errorf("key record: %w", err)
	}
	a := &r.Attestation
	a.Format = hsm.AttestationTPM2Certify
	if a.Statement, err = next("statement", maxStatementLen); err != nil {
		return nil, err
	}
	if a.Signature, err = next("signature", maxSignatureLen); err != nil {
		return nil, err
	}
	if a.AttestationKey, err = next("attestation key", maxPublicLen); err != nil {
		return nil, err
	}
	if a.KeyPublic, err = next("key public", maxPublicLen); err != nil {
		return nil, err
	}
	if len(rest) != 0 {
		return nil, fmt.Errorf("key record: %d trailing bytes", len(rest))
	}
	return &r, nil
}

func checkHolder(h string) error {
	if len(h) > maxHolderLen {
		return fmt.Errorf("holder name is %d bytes, over the %d-byte cap", len(h), maxHolderLen)
	}
	if !utf8.ValidString(h) {
		return errors.New("holder name is not valid utf-8")
	}
	for _, r := range h {
		if r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) {
			return errors.New("holder name contains a control character")
		}
	}
	return nil
}

func checkKeyHandle(h uint32) error {
	if h < minKeyHandle || h > maxKeyHandle {
		return fmt.Errorf("handle 0x%08x: airlock keys live at persistent handles 0x%08x–0x%08x", h, minKeyHandle, maxKeyHandle)
	}
	if h == AKHandle {
		return fmt.Errorf("handle 0x%08x is the attestation key's; choose another handle", h)
	}
	return nil
}

func nvIndexFor(keyHandle uint32) tpm2.TPMHandle {
	return tpm2.TPMHandle(0x01000000 | keyHandle&0x003FFFFF)
}

// readRecord reads the record beside the key at handle; ok is false when
// there is no NV index there.
func readRecord(t transport.TPM, keyHandle uint32) (rec *record, ok bool, err error) {
	idx := nvIndexFor(keyHandle)
	pubRsp, err := tpm2.NVReadPublic{NVIndex: idx}.Execute(t)
	if err != nil {
		if errors.Is(err, tpm2.TPMRCHandle) {
			return nil, false, nil
		}
		return nil, false, fmt.Errorf("read nv index 0x%08x: %w", uint32(idx), err)
	}
	pub, err := pubRsp.NVPublic.Contents()
	if err != nil {
		return nil, false, fmt.Errorf("nv index 0x%08x: %w", uint32(idx), err)
	}
	size := int(pub.DataSize)
	if size > maxRecordLen {
		return nil, true, fmt.Errorf("nv index 0x%08x holds %d bytes, more than an airlock key record", uint32(idx), size)
	}
	if !pub.Attributes.AuthRead || !pub.Attributes.Written {
		return nil, true, fmt.Errorf("nv index 0x%08x is not an airlock key record", uint32(idx))
	}
	nv := tpm2.NamedHandle{Handle: idx, Name: pubRsp.NVName}
	data := make([]byte, 0, size)
	for off := 0; off < size; off += nvChunk {
		n := min(nvChunk, size-off)
		rsp, err := tpm2.NVRead{
			AuthHandle: tpm2.AuthHandle{Handle: idx, Name: pubRsp.NVName, Auth: tpm2.PasswordAuth(nil)},
			NVIndex:    nv,
			Size:       uint16(n),
			Offset:     uint16(off),
		}.Execute(t)
		if err != nil {
			return nil, true, fmt.Errorf("read nv index 0x%08x: %w", uint32(idx), err)
		}
		data = append(data, rsp.Data.Buffer...)
	}
	rec, err = parseRecord(data)
	if err != nil {
		return nil, true, fmt.Errorf("nv index 0x%08x: %w", uint32(idx), err)
	}
	return rec, true, nil
}

// writeRecord stores rec beside the key at keyHandle, replacing a stale
// Airlock record but never another application's NV index.
func writeRecord(t transport.TPM, keyHandle uint32, rec *record) error {
	data, err := rec.marshal()
	if err != nil {
		return err
	}
	idx := nvIndexFor(keyHandle)
	if err := deleteRecord(t, keyHandle); err != nil {
		return err
	}
	def := tpm2.NVDefineSpace{
		AuthHandle: tpm2.TPMRHOwner,
		PublicInfo: tpm2.New2B(tpm2.TPMSNVPublic{
			NVIndex: idx,
			NameAlg: tpm2.TPMAlgSHA256,
			Attributes: tpm2.TPMANV{
				OwnerWrite: true,
				OwnerRead:  true,
				AuthRead:   true,
				NoDA:       true,
				NT:         tpm2.TPMNTOrdinary,
			},
			DataSize: uint16(len(data)),
		}),
	}
	if _, err := def.Execute(t); err != nil {
		return fmt.Errorf("define nv index 0x%08x for the key record: %w", uint32(idx), err)
	}
	pubRsp, err := tpm2.NVReadPublic{NVIndex: idx}.Execute(t)
	if err != nil {
		return fmt.Errorf("read nv index 0x%08x: %w", uint32(idx), err)
	}
	for off := 0; off < len(data); off += nvChunk {
		end := min(off+nvChunk, len(data))
		_, err := tpm2.NVWrite{
			AuthHandle: tpm2.AuthHandle{Handle: tpm2.TPMRHOwner, Auth: tpm2.PasswordAuth(nil)},
			NVIndex:    tpm2.NamedHandle{Handle: idx, Name: pubRsp.NVName},
			Data:       tpm2.TPM2BMaxNVBuffer{Buffer: data[off:end]},
			Offset:     uint16(off),
		}.Execute(t)
		if err != nil {
			return fmt.Errorf("write nv index 0x%08x: %w", uint32(idx), err)
		}
	}
	return nil
}

// deleteRecord removes an Airlock record beside keyHandle, if there is one.
// It refuses to touch an NV index that does not hold an Airlock record.
func deleteRecord(t transport.TPM, keyHandle uint32) error {
	idx := nvIndexFor(keyHandle)
	_, ok, err := readRecord(t, keyHandle)
	if !ok {
		return nil
	}
	if err != nil {
		return fmt.Errorf("%w; it belongs to something else, choose another key handle", err)
	}
	pubRsp, err := tpm2.NVReadPublic{NVIndex: idx}.Execute(t)
	if err != nil {
		return fmt.Errorf("read nv index 0x%08x: %w", uint32(idx), err)
	}
	undef := tpm2.NVUndefineSpace{AuthHandle: tpm2.TPMRHOwner, NVIndex: tpm2.NamedHandle{Handle: idx, Name: pubRsp.NVName}}
	if _, err := undef.Execute(t); err != nil {
		return fmt.Errorf("remove stale key record at nv index 0x%08x: %w", uint32(idx), err)
	}
	return nil
}
