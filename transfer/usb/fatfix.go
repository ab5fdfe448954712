package usb

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"strings"
	"unicode/utf16"
)

// fixFAT32 corrects two things go-diskfs v1.9.4 gets wrong when it creates
// a folder at the root of a FAT32 volume, so that fsck.fat and other
// systems find the stick consistent: the new folder's ".." entry must name
// cluster 0 (the root), not the root's cluster number, and the FSInfo free
// cluster count must match the table.
func fixFAT32(f *os.File, start, size int64, dir string) error {
	bs := make([]byte, 512)
	if _, err := f.ReadAt(bs, start); err != nil {
		return err
	}
	g, err := parseFAT(bs)
	if err != nil || g.kind != kindFAT32 {
		return errors.New("not a FAT32 boot sector after writing")
	}
	if err := checkFAT(f, start, size, g); err != nil {
		return err
	}
	table := make([]byte, g.fatBytes)
	if _, err := f.ReadAt(table, start+g.fatOffset); err != nil {
		return err
	}
	n := g.clusters + 2
	next := func(c uint32) uint32 {
		v := binary.LittleEndian.Uint32(table[int64(c)*4:]) & 0x0FFFFFFF
		if v < 2 || int64(v) >= n {
			return 0
		}
		return v
	}
	bpc := g.sectorsPerClust * g.bytesPerSector
	dataStart := start + g.fatOffset + g.numFATs*g.fatBytes
	clusterOff := func(c uint32) int64 { return dataStart + int64(c-2)*bpc }

	// Find the folder's first cluster in the root directory.
	var dirCluster uint32
	var lfn []string
	buf := make([]byte, bpc)
	steps := int64(0)
scan:
	for c := g.rootCluster; c != 0 && steps < n; c, steps = next(c), steps+1 {
		if _, err := f.ReadAt(buf, clusterOff(c)); err != nil {
			return err
		}
		for off := int64(0); off+32 <= bpc; off += 32 {
			e := buf[off : off+32]
			switch {
			case e[0] == 0:
				break scan
			case e[0] == 0xE5:
				lfn = nil
			case e[11] == 0x0F:
				seq := int(e[0] & 0x1F)
				if seq == 0 {
					lfn = nil
					continue
				}
				for len(lfn) < seq {
					lfn = append(lfn, "")
				}
				var u []uint16
				for _, r := range [][2]int{{1, 11}, {14, 26}, {28, 32}} {
					for i := r[0]; i < r[1]; i += 2 {
						u = append(u, binary.LittleEndian.Uint16(e[i:]))
					}
				}
				lfn[seq-1] = string(utf16.Decode(u))
			default:
				name := strings.Join(lfn, "")
				if i := strings.IndexRune(name, 0); i >= 0 {
					name = name[:i]
				}
				lfn = nil
				if e[11]&0x10 != 0 && strings.EqualFold(name, dir) {
					dirCluster = uint32(binary.LittleEndian.Uint16(e[20:]))<<16 | uint32(binary.LittleEndian.Uint16(e[26:]))
					break scan
				}
			}
		}
	}
	if dirCluster < 2 || int64(dirCluster) >= n {
		return fmt.Errorf("cannot find the folder %s just written", dir)
	}
	dot := make([]byte, 64)
	if _, err := f.ReadAt(dot, clusterOff(dirCluster)); err != nil {
		return err
	}
	if string(dot[32:43]) != "..         " {
		return fmt.Errorf("the folder %s has no '..' entry", dir)
	}
	clear(dot[32+20 : 32+22])
	clear(dot[32+26 : 32+28])
	if _, err := f.WriteAt(dot[32:64], clusterOff(dirCluster)+32); err != nil {
		return err
	}

	// FSInfo free count.
	fsinfo := make([]byte, 512)
	off := start + le16(bs, 48)*g.bytesPerSector
	if _, err := f.ReadAt(fsinfo, off); err != nil {
		return err
	}
	if binary.LittleEndian.Uint32(fsinfo[0:]) != 0x41615252 || binary.LittleEndian.Uint32(fsinfo[484:]) != 0x61417272 {
		return nil // no FSInfo sector: nothing to correct
	}
	var free uint32
	for c := int64(2); c < n; c++ {
		if binary.LittleEndian.Uint32(table[c*4:])&0x0FFFFFFF == 0 {
			free++
		}
	}
	binary.LittleEndian.PutUint32(fsinfo[488:], free)
	binary.LittleEndian.PutUint32(fsinfo[492:], 0xFFFFFFFF)
	_, err = f.WriteAt(fsinfo, off)
	return err
}
