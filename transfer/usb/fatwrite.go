package usb

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"slices"
	"time"
)

// This file writes the response folder to a FAT12, FAT16 or FAT32 volume.
// It plans every write before making one, and orders them so that the
// filesystem as it was stays intact if the stick is pulled, or a write
// fails, at any point:
//
//  1. everything is read and checked first: the boot sector, every copy of
//     the allocation table, the root folder (its cluster chain on FAT32),
//     the names it holds, and the free clusters the response needs, each
//     free in every copy of the table;
//  2. the files' data and the new folder's own entries go to free
//     clusters, which nothing refers to yet;
//  3. those clusters are marked in each copy of the allocation table in
//     turn (an interruption leaves clusters in use that no folder lists,
//     which fsck reclaims, never a cluster used twice); on FAT32 a full
//     root folder is then extended by an empty cluster;
//  4. one sector of the root folder receives the folder's entries, which
//     make it visible whole;
//  5. on FAT32 the FSInfo free-cluster count is set to what the table
//     now shows, and its next-free hint is cleared.
//
// The medium is synced after each step, so that the device's write-back
// cache cannot reorder them.

// medium is a device or image the writer reads and writes.
type medium interface {
	io.ReaderAt
	io.WriterAt
	Sync() error
}

// fatWrite is one planned write.
type fatWrite struct {
	off int64
	b   []byte
}

// fatVolume is a FAT volume open for writing, with its tables read.
type fatVolume struct {
	m        medium
	start    int64 // absolute offset of the volume
	end      int64 // absolute end of the filesystem
	g        *fatGeometry
	bs       []byte
	bpc      int64
	bps      int64
	rootOff  int64    // FAT12/16: absolute offset of the fixed root folder
	dataOff  int64    // absolute offset of cluster 2
	tables   [][]byte // every copy of the allocation table
	eocMin   uint32   // values from here on end a chain
	eocWrite uint32   // the end-of-chain value written
	bad      uint32   // the bad-cluster mark
}

func openFATVolume(m medium, start int64, g *fatGeometry, bs []byte) (*fatVolume, error) {
	v := &fatVolume{m: m, start: start, end: start + g.filesystemLength, g: g, bs: bs,
		bpc: g.sectorsPerClust * g.bytesPerSector, bps: g.bytesPerSector}
	rootDirSectors := (g.rootEntries*dirEntrySize + g.bytesPerSector - 1) / g.bytesPerSector
	v.rootOff = start + g.fatOffset + g.numFATs*g.fatBytes
	v.dataOff = v.rootOff + rootDirSectors*g.bytesPerSector
	switch g.kind {
	case kindFAT12:
		v.eocMin, v.eocWrite, v.bad = 0xFF8, 0xFFF, 0xFF7
	case kindFAT16:
		v.eocMin, v.eocWrite, v.bad = 0xFFF8, 0xFFFF, 0xFFF7
	default:
		v.eocMin, v.eocWrite, v.bad = 0x0FFFFFF8, 0x0FFFFFFF, 0x0FFFFFF7
	}
	if v.dataOff+g.clusters*v.bpc > v.end {
		return nil, fmt.Errorf("the %s data area lies past the end of the filesystem: the stick is damaged, format it", g.kind)
	}
	for i := int64(0); i < g.numFATs; i++ {
		t := make([]byte, g.fatBytes)
		if _, err := m.ReadAt(t, start+g.fatOffset+i*g.fatBytes); err != nil {
			return nil, fmt.Errorf("read copy %d of the allocation table: %w", i+1, err)
		}
		v.tables = append(v.tables, t)
	}
	return v, nil
}

// get returns cluster c's entry in table t.
func (v *fatVolume) get(t []byte, c uint32) uint32 {
	switch v.g.kind {
	case kindFAT12:
		off := int(c) * 3 / 2
		w := uint32(binary.LittleEndian.Uint16(t[off:]))
		if c&1 == 1 {
			return w >> 4
		}
		return w & 0xFFF
	case kindFAT16:
		return uint32(binary.LittleEndian.Uint16(t[int(c)*2:]))
	}
	return binary.LittleEndian.Uint32(t[int(c)*4:]) & 0x0FFFFFFF
}

// set sets cluster c's entry in table t and returns the byte range it
// changed.
func (v *fatVolume) set(t []byte, c, val uint32) (lo, hi int) {
	switch v.g.kind {
	case kindFAT12:
		off := int(c) * 3 / 2
		w := binary.LittleEndian.Uint16(t[off:])
		if c&1 == 1 {
			w = w&0x000F | uint16(val&0xFFF)<<4
		} else {
			w = w&0xF000 | uint16(val&0xFFF)
		}
		binary.LittleEndian.PutUint16(t[off:], w)
		return off, off + 2
	case kindFAT16:
		binary.LittleEndian.PutUint16(t[int(c)*2:], uint16(val))
		return int(c) * 2, int(c)*2 + 2
	}
	off := int(c) * 4
	old := binary.LittleEndian.Uint32(t[off:])
	binary.LittleEndian.PutUint32(t[off:], old&0xF0000000|val&0x0FFFFFFF)
	return off, off + 4
}

func (v *fatVolume) valid(c uint32) bool { return c >= 2 && int64(c) < v.g.clusters+2 }

func (v *fatVolume) clusterOff(c uint32) int64 { return v.dataOff + int64(c-2)*v.bpc }

// freeClusters lists the clusters free in every copy of the table.
func (v *fatVolume) freeClusters() []uint32 {
	var out []uint32
	for c := uint32(2); v.valid(c); c++ {
		free := true
		for _, t := range v.tables {
			if v.get(t, c) != 0 {
				free = false
				break
			}
		}
		if free {
			out = append(out, c)
		}
	}
	return out
}

// rootChain walks the FAT32 root folder's cluster chain, checking that
// every copy of the table agrees on it and that it ends properly.
func (v *fatVolume) rootChain() ([]uint32, error) {
	var chain []uint32
	c := v.g.rootCluster
	for {
		if !v.valid(c) {
			return nil, fmt.Errorf("the root folder's cluster chain holds cluster %d, outside the volume: the stick is damaged, run fsck.vfat on it or use another stick", c)
		}
		if int64(len(chain)+1)*v.bpc > MaxDirBytes {
			return nil, fmt.Errorf("the root folder is over %s (MaxDirBytes): remove files from the stick's top level or use another stick", formatSize(MaxDirBytes))
		}
		chain = append(chain, c)
		next := v.get(v.tables[0], c)
		for i, t := range v.tables[1:] {
			if v.get(t, c) != next {
				return nil, fmt.Errorf("copies 1 and %d of the allocation table disagree about the root folder (cluster %d): run fsck.vfat on the stick or use another stick", i+2, c)
			}
		}
		if next >= v.eocMin {
			return chain, nil
		}
		if next == 0 || next == v.bad || !v.valid(next) {
			return nil, fmt.Errorf("the root folder's cluster chain is broken at cluster %d (next %#x): run fsck.vfat on the stick or use another stick", c, next)
		}
		if slices.Contains(chain, next) {
			return nil, fmt.Errorf("the root folder's cluster chain loops at cluster %d: run fsck.vfat on the stick or use another stick", next)
		}
		c = next
	}
}

// rootDir reads the root folder and returns its bytes and, for each
// sector-sized piece of them, its absolute offset on the medium.
func (v *fatVolume) rootDir() (d []byte, chain []uint32, err error) {
	if v.g.kind != kindFAT32 {
		d = make([]byte, v.g.rootEntries*dirEntrySize)
		if _, err := v.m.ReadAt(d, v.rootOff); err != nil {
			return nil, nil, fmt.Errorf("read the root folder: %w", err)
		}
		return d, nil, nil
	}
	chain, err = v.rootChain()
	if err != nil {
		return nil, nil, err
	}
	d = make([]byte, int64(len(chain))*v.bpc)
	for i, c := range chain {
		if _, err := v.m.ReadAt(d[int64(i)*v.bpc:int64(i+1)*v.bpc], v.clusterOff(c)); err != nil {
			return nil, nil, fmt.Errorf("read the root folder: %w", err)
		}
	}
	return d, chain, nil
}

// rootEntryOff returns the absolute offset of root folder entry i.
func (v *fatVolume) rootEntryOff(chain []uint32, i int) int64 {
	off := int64(i) * dirEntrySize
	if chain == nil {
		return v.rootOff + off
	}
	return v.clusterOff(chain[off/v.bpc]) + off%v.bpc
}

// fatPlan is the writes of one response, by step.
type fatPlan struct {
	data   []fatWrite // 2: file data and the new folder's clusters
	mark   []fatWrite // 3: allocation table entries of the new clusters
	link   []fatWrite // 3: the root folder's extension, on FAT32
	prep   []fatWrite // 3: entries past the root folder's end made ready
	entry  []fatWrite // 4: the root folder's sector that names the folder
	fsinfo []fatWrite // 5: FSInfo
}

func (p *fatPlan) steps() [][]fatWrite {
	return [][]fatWrite{p.data, p.mark, p.link, p.prep, p.entry, p.fsinfo}
}

// planResponse plans writing folder dir holding files. It reads and
// checks everything and writes nothing.
func (v *fatVolume) planResponse(dir string, files []ResponseFile, now time.Time) (*fatPlan, error) {
	root, chain, err := v.rootDir()
	if err != nil {
		return nil, err
	}
	scan := scanDir(root)
	if scan.has(dir) {
		return nil, fmt.Errorf("%s %w on the stick: use another stick or remove it there", dir, ErrExists)
	}

	// The folder's entry in the root folder.
	dirRaw, dirLFN, err := shortName(dir, scan.short)
	if err != nil {
		return nil, err
	}
	nEntries := 1
	if dirLFN {
		nEntries += (len(dir) + lfnChars - 1) / lfnChars
	}
	slot := scan.freeRun(root, nEntries, int(v.bps))
	extend := false
	if slot < 0 {
		if v.g.kind != kindFAT32 {
			return nil, fmt.Errorf("the stick's top-level folder is full (%d entries): remove files from its top level or use another stick", v.g.rootEntries)
		}
		if int64(len(root))+v.bpc > MaxDirBytes {
			return nil, fmt.Errorf("the stick's top-level folder is full (%s, MaxDirBytes): remove files from its top level or use another stick", formatSize(MaxDirBytes))
		}
		extend = true
	}

	// The new folder's own entries.
	used := map[string]bool{".          ": true, "..         ": true}
	type named struct {
		raw string
		lfn bool
	}
	names := make([]named, len(files))
	folderBytes := int64(2 * dirEntrySize)
	for i, f := range files {
		raw, lfn, err := shortName(f.Name, used)
		if err != nil {
			return nil, err
		}
		used[raw] = true
		names[i] = named{raw, lfn}
		folderBytes += dirEntrySize
		if lfn {
			folderBytes += int64((len(f.Name)+lfnChars-1)/lfnChars) * dirEntrySize
		}
	}

	// Free space, counted in the tables themselves.
	clustersOf := func(n int64) int64 { return (n + v.bpc - 1) / v.bpc }
	need := clustersOf(folderBytes)
	for _, f := range files {
		need += clustersOf(int64(len(f.Data)))
	}
	if extend {
		need++
	}
	free := v.freeClusters()
	if int64(len(free)) < need {
		return nil, fmt.Errorf("%w: the allocation table shows %d free clusters (%s) but the response needs %d (%s): use another stick",
			ErrNoSpace, len(free), formatSize(int64(len(free))*v.bpc), need, formatSize(need*v.bpc))
	}
	take := func(n int64) []uint32 {
		out := free[:n:n]
		free = free[n:]
		return out
	}

	p := &fatPlan{}
	var marks [][2]uint32 // cluster, value
	chainOf := func(cs []uint32) {
		for i, c := range cs {
			next := v.eocWrite
			if i+1 < len(cs) {
				next = cs[i+1]
			}
			marks = append(marks, [2]uint32{c, next})
		}
	}
	// Writes data to the clusters cs, zero-filling the last one.
	putData := func(cs []uint32, data []byte) {
		for i := 0; i < len(cs); {
			j := i + 1
			for j < len(cs) && cs[j] == cs[j-1]+1 {
				j++
			}
			lo := int64(i) * v.bpc
			hi := int64(j) * v.bpc
			b := make([]byte, hi-lo)
			if lo < int64(len(data)) {
				copy(b, data[lo:min(hi, int64(len(data)))])
			}
			p.data = append(p.data, fatWrite{v.clusterOff(cs[i]), b})
			i = j
		}
	}

	folderClusters := take(clustersOf(folderBytes))
	folder := dirEntries(".", ".          ", false, attrDir, folderClusters[0], 0, now)
	folder = append(folder, dirEntries("..", "..         ", false, attrDir, 0, 0, now)...)
	for i, f := range files {
		cs := take(clustersOf(int64(len(f.Data))))
		first := uint32(0)
		if len(cs) > 0 {
			first = cs[0]
			putData(cs, f.Data)
			chainOf(cs)
		}
		folder = append(folder, dirEntries(f.Name, names[i].raw, names[i].lfn, attrArchive, first, uint32(len(f.Data)), now)...)
	}
	putData(folderClusters, folder)
	chainOf(folderClusters)

	var linkMarks [][2]uint32
	if extend {
		ext := take(1)[0]
		p.data = append(p.data, fatWrite{v.clusterOff(ext), make([]byte, v.bpc)})
		marks = append(marks, [2]uint32{ext, v.eocWrite})
		linkMarks = append(linkMarks, [2]uint32{chain[len(chain)-1], ext})
		chain = append(chain, ext)
		root = append(root, make([]byte, v.bpc)...)
		scan = &dirScan{end: scan.end, entries: len(root) / dirEntrySize}
		slot = scan.freeRun(root, nEntries, int(v.bps))
		if slot < 0 {
			return nil, errors.New("no room in the extended root folder")
		}
	}
	p.mark = v.tableWrites(marks)
	p.link = v.tableWrites(linkMarks)

	entries := dirEntries(dir, dirRaw, dirLFN, attrDir, folderClusters[0], 0, now)
	var entry fatWrite
	p.prep, entry = v.placeEntries(root, chain, scan.end, slot, entries)
	p.entry = []fatWrite{entry}

	if v.g.kind == kindFAT32 {
		if w, ok := v.fsinfoWrite(); ok {
			p.fsinfo = []fatWrite{w}
		}
	}
	// Every write lies inside the filesystem and past the boot sector.
	for _, step := range p.steps() {
		for _, w := range step {
			if w.off < v.start+v.bps || w.off+int64(len(w.b)) > v.end {
				return nil, fmt.Errorf("a planned write at byte %d lies outside the filesystem: the stick is damaged, format it", w.off)
			}
		}
	}
	return p, nil
}

// placeEntries plans the writes that put entries (whole entries, all in
// one sector) at slot of the root folder root, whose first end-of-folder
// entry is end: the writes that must come first (see prepRun), then the
// one write of the sector that holds them. It updates root to match.
func (v *fatVolume) placeEntries(root []byte, chain []uint32, end, slot int, entries []byte) (prep []fatWrite, entry fatWrite) {
	k := len(entries) / dirEntrySize
	prep = v.prepRun(root, chain, end, slot, k)
	perSector := int(v.bps) / dirEntrySize
	first := slot / perSector * perSector
	copy(root[slot*dirEntrySize:], entries)
	for i := slot + k; i < first+perSector; i++ {
		if i >= end {
			// Past the end before and after: cleared, so that the entry
			// after the new ones ends the folder.
			clear(root[i*dirEntrySize : (i+1)*dirEntrySize])
		}
	}
	sector := slices.Clone(root[first*dirEntrySize : (first+perSector)*dirEntrySize])
	return prep, fatWrite{v.rootEntryOff(chain, first), sector}
}

// prepRun plans the writes that let entries at slot .. slot+k-1 of the
// root folder (root, with end its first end-of-folder entry) be seen: a
// reader stops at the first entry marked as the end. When the run reaches
// past the end, the entries from the run to the one after it are cleared
// (if they hold anything), then the entries between the old end and the
// run are marked deleted, each sector last to first, so that at every
// point a reader stops at a cleared entry before any stale one. It updates
// root to match.
func (v *fatVolume) prepRun(root []byte, chain []uint32, end, slot, k int) []fatWrite {
	entries := len(root) / dirEntrySize
	if slot+k <= end {
		return nil
	}
	perSector := int(v.bps) / dirEntrySize
	var zero, dele []int
	for i := max(slot, end); i <= slot+k && i < entries; i++ {
		e := root[i*dirEntrySize : (i+1)*dirEntrySize]
		if slices.ContainsFunc(e, func(b byte) bool { return b != 0 }) {
			zero = append(zero, i)
		}
	}
	for i := end; i < slot; i++ {
		dele = append(dele, i)
	}
	var out []fatWrite
	apply := func(list []int, mark byte) {
		for j := len(list) - 1; j >= 0; {
			s := list[j] / perSector
			for ; j >= 0 && list[j]/perSector == s; j-- {
				e := root[list[j]*dirEntrySize : (list[j]+1)*dirEntrySize]
				clear(e)
				e[0] = mark
			}
			b := slices.Clone(root[s*perSector*dirEntrySize : (s+1)*perSector*dirEntrySize])
			out = append(out, fatWrite{v.rootEntryOff(chain, s*perSector), b})
		}
	}
	apply(zero, 0)
	apply(dele, 0xE5)
	return out
}

// tableWrites applies marks to every copy of the table in memory and
// returns the sectors they change, copy by copy. Every marked cluster must
// be free, or a root-folder end being extended, in every copy.
func (v *fatVolume) tableWrites(marks [][2]uint32) []fatWrite {
	var out []fatWrite
	for i, t := range v.tables {
		var dirty []int64
		for _, m := range marks {
			lo, hi := v.set(t, m[0], m[1])
			for s := int64(lo) / v.bps; s <= int64(hi-1)/v.bps; s++ {
				dirty = append(dirty, s)
			}
		}
		slices.Sort(dirty)
		dirty = slices.Compact(dirty)
		base := v.start + v.g.fatOffset + int64(i)*v.g.fatBytes
		for k := 0; k < len(dirty); {
			j := k + 1
			for j < len(dirty) && dirty[j] == dirty[j-1]+1 {
				j++
			}
			lo, hi := dirty[k]*v.bps, (dirty[j-1]+1)*v.bps
			out = append(out, fatWrite{base + lo, slices.Clone(t[lo:hi])})
			k = j
		}
	}
	return out
}

// fsinfoWrite returns the FAT32 FSInfo sector with the free count the first
// copy of the table now shows and no next-free hint, if the volume has a
// valid FSInfo sector.
func (v *fatVolume) fsinfoWrite() (fatWrite, bool) {
	sec := le16(v.bs, 48)
	if sec < 1 || sec >= v.g.reservedSectors || sec == 0xFFFF {
		return fatWrite{}, false
	}
	off := v.start + sec*v.bps
	b := make([]byte, 512)
	if _, err := v.m.ReadAt(b, off); err != nil {
		return fatWrite{}, false
	}
	if binary.LittleEndian.Uint32(b[0:]) != 0x41615252 || binary.LittleEndian.Uint32(b[484:]) != 0x61417272 || binary.LittleEndian.Uint32(b[508:]) != 0xAA550000 {
		return fatWrite{}, false
	}
	var free uint32
	for c := uint32(2); v.valid(c); c++ {
		if v.get(v.tables[0], c) == 0 {
			free++
		}
	}
	binary.LittleEndian.PutUint32(b[488:], free)
	binary.LittleEndian.PutUint32(b[492:], 0xFFFFFFFF)
	return fatWrite{off, b}, true
}

// run makes the plan's writes in order, syncing after each step.
func (p *fatPlan) run(m medium) error {
	total, done := 0, 0
	for _, step := range p.steps() {
		total += len(step)
	}
	for _, step := range p.steps() {
		if len(step) == 0 {
			continue
		}
		for _, w := range step {
			if _, err := m.WriteAt(w.b, w.off); err != nil {
				return fmt.Errorf("writing stopped after %d of %d writes (%w): the files already on the stick are intact; use another stick", done, total, err)
			}
			done++
		}
		if err := m.Sync(); err != nil {
			return fmt.Errorf("sync after %d of %d writes failed (%w): the files already on the stick are intact; use another stick", done, total, err)
		}
	}
	return nil
}
