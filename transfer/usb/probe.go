package usb

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// MaxFATBytes caps one copy of the file allocation table. go-diskfs holds
// two copies in memory; 64 MiB covers a 512 GB FAT32 stick formatted with
// 32 KiB clusters.
const MaxFATBytes = 64 << 20

// Errors for filesystems Airlock does not read.
var (
	ErrExFAT = errors.New("exFAT is not supported: format the stick FAT32")
	ErrNTFS  = errors.New("NTFS is not supported: format the stick FAT32")
)

// fsKind is what the first bytes of a volume say it holds.
type fsKind int

const (
	kindUnknown fsKind = iota
	kindFAT12
	kindFAT16
	kindFAT32
	kindExt4
	kindISO9660
	kindExFAT
	kindNTFS
)

func (k fsKind) String() string {
	return [...]string{"unknown", "FAT12", "FAT16", "FAT32", "ext4", "ISO9660", "exFAT", "NTFS"}[k]
}

// fatGeometry is the part of a FAT boot sector this package checks.
type fatGeometry struct {
	kind             fsKind
	bytesPerSector   int64
	sectorsPerClust  int64
	reservedSectors  int64
	numFATs          int64
	rootEntries      int64
	totalSectors     int64
	sectorsPerFAT    int64
	clusters         int64
	rootCluster      uint32
	fatOffset        int64 // bytes from the volume start
	fatBytes         int64
	filesystemLength int64 // bytes the filesystem claims
}

func le16(b []byte, off int) int64 { return int64(binary.LittleEndian.Uint16(b[off:])) }
func le32(b []byte, off int) int64 { return int64(binary.LittleEndian.Uint32(b[off:])) }

func isPow2(n int64) bool { return n > 0 && n&(n-1) == 0 }

// bootKind classifies a volume's first sector without trusting it further.
func bootKind(bs []byte) fsKind {
	if len(bs) < 512 {
		return kindUnknown
	}
	switch string(bs[3:11]) {
	case "EXFAT   ":
		return kindExFAT
	case "NTFS    ":
		return kindNTFS
	}
	if g, err := parseFAT(bs); err == nil {
		return g.kind
	}
	return kindUnknown
}

// parseFAT reads and checks a FAT boot sector's geometry.
func parseFAT(bs []byte) (*fatGeometry, error) {
	if len(bs) < 512 {
		return nil, errors.New("boot sector too short")
	}
	if !(bs[0] == 0xEB && bs[2] == 0x90) && bs[0] != 0xE9 {
		return nil, errors.New("no boot sector jump instruction")
	}
	g := &fatGeometry{
		bytesPerSector:  le16(bs, 11),
		sectorsPerClust: int64(bs[13]),
		reservedSectors: le16(bs, 14),
		numFATs:         int64(bs[16]),
		rootEntries:     le16(bs, 17),
		totalSectors:    le16(bs, 19),
		sectorsPerFAT:   le16(bs, 22),
	}
	switch g.bytesPerSector {
	case 512, 1024, 2048, 4096:
	default:
		return nil, fmt.Errorf("invalid bytes per sector %d", g.bytesPerSector)
	}
	if !isPow2(g.sectorsPerClust) || g.sectorsPerClust > 128 {
		return nil, fmt.Errorf("invalid sectors per cluster %d", g.sectorsPerClust)
	}
	if g.reservedSectors < 1 || g.numFATs < 1 || g.numFATs > 2 {
		return nil, errors.New("invalid reserved sector or FAT count")
	}
	if g.totalSectors == 0 {
		g.totalSectors = le32(bs, 32)
	}
	g.kind = kindFAT16
	if g.sectorsPerFAT == 0 {
		g.kind = kindFAT32
		g.sectorsPerFAT = le32(bs, 36)
		g.rootCluster = binary.LittleEndian.Uint32(bs[44:])
		if g.rootEntries != 0 {
			return nil, errors.New("FAT32 boot sector with a fixed root directory")
		}
	}
	if g.totalSectors == 0 || g.sectorsPerFAT == 0 {
		return nil, errors.New("zero total sectors or FAT size")
	}
	rootDirSectors := (g.rootEntries*32 + g.bytesPerSector - 1) / g.bytesPerSector
	meta := g.reservedSectors + g.numFATs*g.sectorsPerFAT + rootDirSectors
	if meta >= g.totalSectors {
		return nil, errors.New("metadata larger than the filesystem")
	}
	g.clusters = (g.totalSectors - meta) / g.sectorsPerClust
	if g.kind != kindFAT32 && g.clusters < 4085 {
		g.kind = kindFAT12
	}
	g.fatOffset = g.reservedSectors * g.bytesPerSector
	g.fatBytes = g.sectorsPerFAT * g.bytesPerSector
	g.filesystemLength = g.totalSectors * g.bytesPerSector
	var entries int64
	switch g.kind {
	case kindFAT12:
		entries = g.fatBytes * 2 / 3
	case kindFAT16:
		entries = g.fatBytes / 2
	case kindFAT32:
		entries = g.fatBytes / 4
		if int64(g.rootCluster) < 2 || int64(g.rootCluster) >= g.clusters+2 {
			return nil, fmt.Errorf("root directory cluster %d out of range", g.rootCluster)
		}
	}
	if entries < g.clusters+2 {
		return nil, errors.New("allocation table too small for the cluster count")
	}
	return g, nil
}

// checkFAT checks a FAT volume of size bytes at start before go-diskfs
// reads it: the filesystem fits on the medium, its table is within
// MaxFATBytes, and no cluster chain loops (go-diskfs would follow a loop
// forever).
func checkFAT(r io.ReaderAt, start, size int64, g *fatGeometry) error {
	if g.filesystemLength > size {
		return fmt.Errorf("the %s filesystem claims %s but the medium holds %s: the image is truncated or the stick is damaged", g.kind, formatSize(g.filesystemLength), formatSize(size))
	}
	if g.fatBytes > MaxFATBytes {
		return fmt.Errorf("the %s allocation table is %s, over the %s cap: format the stick with larger clusters (mkfs.vfat -s 64)", g.kind, formatSize(g.fatBytes), formatSize(MaxFATBytes))
	}
	table := make([]byte, g.fatBytes)
	if _, err := r.ReadAt(table, start+g.fatOffset); err != nil {
		return fmt.Errorf("read the allocation table: %w", err)
	}
	n := g.clusters + 2
	next := func(i int64) int64 {
		var v, eoc int64
		switch g.kind {
		case kindFAT12:
			off := i * 3 / 2
			if off+2 > int64(len(table)) {
				return -1
			}
			w := int64(binary.LittleEndian.Uint16(table[off:]))
			if i&1 == 1 {
				v = w >> 4
			} else {
				v = w & 0xFFF
			}
			eoc = 0xFF8
		case kindFAT16:
			v, eoc = le16(table, int(i*2)), 0xFFF8
		default:
			v = le32(table, int(i*4))
			if v&0xFFFFFF8 == 0xFFFFFF8 {
				return -1
			}
			eoc = 1 << 40
		}
		if v >= eoc || v < 2 || v >= n {
			return -1
		}
		return v
	}
	// Chains form a functional graph; colour it: 0 new, 1 on the current
	// walk, 2 known to end.
	colour := make([]byte, n)
	var walk []int64
	for i := int64(2); i < n; i++ {
		if colour[i] != 0 {
			continue
		}
		walk = walk[:0]
		c := i
		for c >= 0 && colour[c] == 0 {
			colour[c] = 1
			walk = append(walk, c)
			c = next(c)
		}
		if c >= 0 && colour[c] == 1 {
			return fmt.Errorf("the %s allocation table has a cluster chain that loops (cluster %d): the stick is damaged or hostile", g.kind, c)
		}
		for _, w := range walk {
			colour[w] = 2
		}
	}
	return nil
}

// ext4Length returns the bytes an ext4 superblock at sb (1024 bytes, read
// from the volume start plus 1024) claims, or ok false if it is not ext4.
func ext4Length(sb []byte) (int64, bool) {
	if len(sb) < 1024 || binary.LittleEndian.Uint16(sb[56:]) != 0xEF53 {
		return 0, false
	}
	logBlock := le32(sb, 24)
	if logBlock > 6 {
		return -1, true
	}
	blocks := le32(sb, 4)
	if binary.LittleEndian.Uint32(sb[96:])&0x80 != 0 { // INCOMPAT_64BIT
		blocks |= le32(sb, 0x150) << 32
	}
	if blocks > 1<<40 {
		return -1, true
	}
	return blocks << (10 + logBlock), true
}

// isoLength returns the bytes an ISO9660 primary volume descriptor claims.
func isoLength(pvd []byte) (int64, bool) {
	if len(pvd) < 2048 || pvd[0] != 1 || !bytes.Equal(pvd[1:6], []byte("CD001")) {
		return 0, false
	}
	return le32(pvd, 80) * le16(pvd, 128), true
}

// formatSize renders n bytes for messages.
func formatSize(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}
