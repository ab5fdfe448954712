package usb

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// Device is a removable block device as sysfs describes it.
type Device struct {
	Name       string // kernel name, e.g. "sdb"
	Path       string // device node, e.g. "/dev/sdb"
	Size       int64  // bytes; 0 when no medium is inserted
	Vendor     string // from the device, made safe to show
	Model      string // from the device, made safe to show
	Removable  bool   // sysfs "removable" is 1
	USB        bool   // the device hangs off a USB bus
	ReadOnly   bool   // sysfs "ro" is 1 (write-protect switch)
	Partitions []Partition
}

// Partition is one partition of a Device.
type Partition struct {
	Name   string // e.g. "sdb1"
	Path   string // e.g. "/dev/sdb1"
	Number int
	Start  int64 // bytes from the start of the device
	Size   int64 // bytes
}

// Caps on what sysfs may list.
const (
	MaxBlockDevices = 256
	maxSysfsValue   = 4096
)

// ListRemovable lists the block devices under sysRoot (normally "/sys")
// that are removable or sit on a USB bus and hold a medium, with device
// nodes under devRoot (normally "/dev"). Loop, RAM and device-mapper
// devices are skipped. Tests pass a fake sysfs tree.
func ListRemovable(sysRoot, devRoot string) ([]Device, error) {
	blockDir := filepath.Join(sysRoot, "block")
	entries, err := os.ReadDir(blockDir)
	if err != nil {
		return nil, fmt.Errorf("usb: list block devices: %w", err)
	}
	if len(entries) > MaxBlockDevices {
		entries = entries[:MaxBlockDevices]
	}
	var out []Device
	for _, e := range entries {
		name := e.Name()
		if !plainName(name) || skipDevice(name) {
			continue
		}
		dir := filepath.Join(blockDir, name)
		d := Device{Name: name, Path: filepath.Join(devRoot, name)}
		d.Removable = readSysfs(dir, "removable") == "1"
		d.ReadOnly = readSysfs(dir, "ro") == "1"
		if target, err := filepath.EvalSymlinks(dir); err == nil {
			d.USB = onUSB(target)
		}
		if !d.Removable && !d.USB {
			continue
		}
		sectors, _ := strconv.ParseInt(readSysfs(dir, "size"), 10, 64)
		if sectors <= 0 || sectors > 1<<48 {
			continue // no medium
		}
		d.Size = sectors * 512
		d.Vendor = cleanText(readSysfs(dir, "device/vendor"), 64)
		d.Model = cleanText(readSysfs(dir, "device/model"), 64)
		d.Partitions = listPartitions(dir, name, devRoot)
		out = append(out, d)
	}
	slices.SortFunc(out, func(a, b Device) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}

func listPartitions(dir, disk, devRoot string) []Partition {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil
	}
	var parts []Partition
	for _, e := range entries {
		name := e.Name()
		if !strings.HasPrefix(name, disk) || !plainName(name) || len(parts) == MaxPartitions {
			continue
		}
		pdir := filepath.Join(dir, name)
		num, err := strconv.Atoi(readSysfs(pdir, "partition"))
		if err != nil || num <= 0 {
			continue
		}
		start, err1 := strconv.ParseInt(readSysfs(pdir, "start"), 10, 64)
		size, err2 := strconv.ParseInt(readSysfs(pdir, "size"), 10, 64)
		if err1 != nil || err2 != nil || start < 0 || size <= 0 || start > 1<<48 || size > 1<<48 {
			continue
		}
		parts = append(parts, Partition{Name: name, Path: filepath.Join(devRoot, name), Number: num, Start: start * 512, Size: size * 512})
	}
	slices.SortFunc(parts, func(a, b Partition) int { return a.Number - b.Number })
	return parts
}

// readSysfs returns the trimmed contents of a small sysfs attribute, or "".
func readSysfs(dir, attr string) string {
	f, err := os.Open(filepath.Join(dir, filepath.FromSlash(attr)))
	if err != nil {
		return ""
	}
	defer f.Close()
	b := make([]byte, maxSysfsValue)
	n, err := f.Read(b)
	if err != nil && !errors.Is(err, fs.ErrClosed) && n == 0 {
		return ""
	}
	return strings.TrimSpace(string(b[:n]))
}

func plainName(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.') {
			return false
		}
	}
	return s != "." && s != ".."
}

func skipDevice(name string) bool {
	for _, p := range []string{"loop", "ram", "zram", "dm-", "md", "nbd"} {
		if strings.HasPrefix(name, p) {
			return true
		}
	}
	return false
}

// onUSB reports whether a resolved sysfs device path runs through a USB bus,
// e.g. /sys/devices/pci0000:00/0000:00:14.0/usb2/2-1/2-1:1.0/host6/.../block/sdb.
func onUSB(path string) bool {
	for _, part := range strings.Split(filepath.ToSlash(path), "/") {
		if strings.HasPrefix(part, "usb") && len(part) > 3 && part[3] >= '0' && part[3] <= '9' {
			return true
		}
	}
	return false
}
