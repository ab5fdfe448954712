package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/google/go-tpm/tpm2"

	"airlock.dev/airlock/hsm/tpm"
	"airlock.dev/airlock/internal/cli"
	"airlock.dev/airlock/internal/safetext"
	"airlock.dev/airlock/transfer/usb"
)

// The self-test checks the machine the appliance runs on, as the appliance
// image promises it: a TPM, no network, no kernel code for removable-media
// filesystems or new modules, a USB stick read without mounting it, a
// writable state partition, a read-only dm-verity root and kernel lockdown.
// It prints one line a check, "self-test: NAME: ok ..." or
// "self-test: NAME: FAIL ...", and a last line with the verdict.

// Caps on what the self-test reads from /proc and /sys.
const (
	maxProcFile    = 1 << 20
	maxMountLines  = 4096
	maxNetDevices  = 256
	maxModulesDeps = 64 << 20
)

// removableFS are the filesystems the kernel must not know: the appliance
// parses USB media itself.
var removableFS = []string{"vfat", "msdos", "fat", "exfat", "ntfs", "ntfs3", "iso9660", "udf", "hfs", "hfsplus", "btrfs", "xfs", "f2fs", "fuse"}

// forbiddenModuleDirs are module folders that must be gone from the image.
var forbiddenModuleDirs = []string{"kernel/drivers/net/", "kernel/net/", "kernel/drivers/bluetooth/",
	"kernel/fs/fat/", "kernel/fs/exfat/", "kernel/fs/ntfs3/", "kernel/fs/isofs/", "kernel/fs/udf/",
	"kernel/fs/hfs/", "kernel/fs/hfsplus/", "kernel/fs/fuse/"}

// requiredCmdline are the kernel options the image boots with.
var requiredCmdline = []string{"lockdown=confidentiality", "init_on_free=1", "slab_nomerge", "usbcore.authorized_default=0"}

// selfTestEnv says where the self-test looks; tests point it at a fake tree.
type selfTestEnv struct {
	sys, proc, dev, modules string // normally /sys, /proc, /dev, /lib/modules
	tpmDevice               string // as hsm/tpm.OpenDevice takes it
	state                   string // the state directory
	usbDevice               string // a device or image to read instead of searching sysfs
	waitUSB                 time.Duration
	sleep                   func(time.Duration)
}

type checkResult struct {
	name   string
	err    error
	detail string
}

func cmdSelfTest(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := cli.NewFlagSet("airlock-appliance self-test", "usage: airlock-appliance self-test --state DIR [--tpm DEVICE] [--usb DEVICE] [--wait-usb DURATION]\n", stderr)
	env := selfTestEnv{sys: "/sys", proc: "/proc", dev: "/dev", modules: "/lib/modules", sleep: time.Sleep}
	fs.StringVar(&env.state, "state", "", "appliance state directory, on the state partition (required)")
	fs.StringVar(&env.tpmDevice, "tpm", tpm.DefaultDevice, "TPM device: /dev/tpmrm0, tcp:HOST:PORT or unix:/PATH (swtpm)")
	fs.StringVar(&env.usbDevice, "usb", "", "USB device or FAT image to read (default: the first USB disk sysfs lists)")
	fs.DurationVar(&env.waitUSB, "wait-usb", 0, "how long to wait for a USB disk to appear (at most 5m)")
	pos, err := parseInterleaved(fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 0 || env.state == "" {
		return cli.Usagef("self-test needs --state DIR and no other arguments")
	}
	if env.waitUSB < 0 || env.waitUSB > 5*time.Minute {
		return cli.Usagef("--wait-usb %s: want 0 to 5m", env.waitUSB)
	}
	if failed := runSelfTest(ctx, env, stdout); failed > 0 {
		return fmt.Errorf("self-test: %d check(s) failed; this machine is not fit for a ceremony", failed)
	}
	return nil
}

// runSelfTest runs every check, prints a line for each and returns how many
// failed.
func runSelfTest(ctx context.Context, env selfTestEnv, out io.Writer) int {
	checks := []struct {
		name string
		f    func(context.Context, selfTestEnv) (string, error)
	}{
		{"tpm", checkTPM},
		{"network", checkNetwork},
		{"kernel modules", checkModules},
		{"kernel options", checkCmdline},
		{"lockdown", checkLockdown},
		{"root", checkRoot},
		{"state", checkState},
		{"usb", checkUSB},
	}
	failed := 0
	for _, c := range checks {
		detail, err := c.f(ctx, env)
		if err != nil {
			failed++
			fmt.Fprintf(out, "self-test: %s: FAIL %s\n", c.name, safetext.Line(err.Error()))
			continue
		}
		fmt.Fprintf(out, "self-test: %s: ok %s\n", c.name, safetext.Line(detail))
	}
	if failed > 0 {
		fmt.Fprintf(out, "self-test: FAILED (%d of %d checks)\n", failed, len(checks))
	} else {
		fmt.Fprintf(out, "self-test: passed (%d checks)\n", len(checks))
	}
	return failed
}

// readSmall reads a /proc or /sys file of at most maxProcFile bytes.
func readSmall(path string) (string, error) {
	b, err := readCapped(path, maxProcFile)
	return string(b), err
}

func checkTPM(_ context.Context, env selfTestEnv) (string, error) {
	t, err := tpm.OpenDevice(env.tpmDevice)
	if err != nil {
		return "", fmt.Errorf("no TPM: %w", err)
	}
	defer t.Close()
	rsp, err := tpm2.GetCapability{Capability: tpm2.TPMCapTPMProperties,
		Property: uint32(tpm2.TPMPTManufacturer), PropertyCount: 1}.Execute(t)
	if err != nil {
		return "", fmt.Errorf("TPM %s does not answer: %w", env.tpmDevice, err)
	}
	props, err := rsp.CapabilityData.Data.TPMProperties()
	if err != nil || len(props.TPMProperty) == 0 || props.TPMProperty[0].Property != tpm2.TPMPTManufacturer {
		return "", fmt.Errorf("TPM %s gave no manufacturer", env.tpmDevice)
	}
	v := props.TPMProperty[0].Value
	id := []byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)}
	return fmt.Sprintf("TPM 2.0 present at %s (manufacturer %q)", env.tpmDevice, cleanID(id)), nil
}

func cleanID(b []byte) string {
	var s strings.Builder
	for _, c := range b {
		if c >= 0x21 && c <= 0x7e {
			s.WriteByte(c)
		}
	}
	return s.String()
}

func checkNetwork(_ context.Context, env selfTestEnv) (string, error) {
	entries, err := os.ReadDir(filepath.Join(env.sys, "class", "net"))
	if err != nil {
		return "", fmt.Errorf("list network interfaces: %w", err)
	}
	if len(entries) > maxNetDevices {
		return "", fmt.Errorf("%d network interfaces (over the cap of %d)", len(entries), maxNetDevices)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if len(names) != 1 || names[0] != "lo" {
		return "", fmt.Errorf("network interfaces %s; only lo may exist (a network driver is in the kernel)", safetext.String(strings.Join(names, ", ")))
	}
	return "only lo", nil
}

func checkModules(_ context.Context, env selfTestEnv) (string, error) {
	v, err := readSmall(filepath.Join(env.proc, "sys", "kernel", "modules_disabled"))
	if err != nil {
		return "", fmt.Errorf("read modules_disabled: %w", err)
	}
	if strings.TrimSpace(v) != "1" {
		return "", fmt.Errorf("kernel.modules_disabled is %q, want 1: the kernel still loads modules", strings.TrimSpace(v))
	}
	fss, err := readSmall(filepath.Join(env.proc, "filesystems"))
	if err != nil {
		return "", fmt.Errorf("read filesystems: %w", err)
	}
	for _, line := range strings.Split(fss, "\n") {
		f := strings.Fields(line)
		if len(f) > 0 && slices.Contains(removableFS, f[len(f)-1]) {
			return "", fmt.Errorf("the kernel has the %s filesystem driver; it must not parse removable media", f[len(f)-1])
		}
	}
	rel, err := readSmall(filepath.Join(env.proc, "sys", "kernel", "osrelease"))
	if err != nil {
		return "", fmt.Errorf("read osrelease: %w", err)
	}
	rel = strings.TrimSpace(rel)
	if rel == "" || strings.ContainsAny(rel, "/\x00") || rel == "." || rel == ".." {
		return "", fmt.Errorf("kernel release %s is not a folder name", safetext.Quote(rel))
	}
	dep, err := readCapped(filepath.Join(env.modules, rel, "modules.dep"), maxModulesDeps)
	if err != nil {
		return "", fmt.Errorf("read the module index: %w", err)
	}
	sc := bufio.NewScanner(strings.NewReader(string(dep)))
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	n := 0
	for sc.Scan() {
		mod, _, _ := strings.Cut(sc.Text(), ":")
		for _, d := range forbiddenModuleDirs {
			if strings.HasPrefix(mod, d) {
				return "", fmt.Errorf("module %s is in the image; network and removable-media modules must be removed", safetext.Quote(mod))
			}
		}
		n++
	}
	if err := sc.Err(); err != nil {
		return "", fmt.Errorf("read the module index: %w", err)
	}
	return fmt.Sprintf("loading disabled; no network or removable-media filesystem modules among %d", n), nil
}

func checkCmdline(_ context.Context, env selfTestEnv) (string, error) {
	cmdline, err := readSmall(filepath.Join(env.proc, "cmdline"))
	if err != nil {
		return "", fmt.Errorf("read the kernel command line: %w", err)
	}
	opts := strings.Fields(cmdline)
	for _, want := range requiredCmdline {
		if !slices.Contains(opts, want) {
			return "", fmt.Errorf("the kernel command line lacks %s", want)
		}
	}
	v, err := readSmall(filepath.Join(env.sys, "module", "usbcore", "parameters", "authorized_default"))
	if err != nil {
		return "", fmt.Errorf("read usbcore.authorized_default: %w", err)
	}
	if strings.TrimSpace(v) != "0" {
		return "", fmt.Errorf("usbcore.authorized_default is %q, want 0: USB devices work before usbguard decides", strings.TrimSpace(v))
	}
	return strings.Join(requiredCmdline, " "), nil
}

func checkLockdown(_ context.Context, env selfTestEnv) (string, error) {
	v, err := readSmall(filepath.Join(env.sys, "kernel", "security", "lockdown"))
	if err != nil {
		return "", fmt.Errorf("read the lockdown state: %w", err)
	}
	if !strings.Contains(v, "[confidentiality]") {
		return "", fmt.Errorf("kernel lockdown is %q, want [confidentiality]", strings.TrimSpace(v))
	}
	return "confidentiality", nil
}

// mount is one line of /proc/self/mountinfo.
type mount struct {
	devNum, point, fstype, source string
	opts                          []string
}

func readMounts(env selfTestEnv) ([]mount, error) {
	s, err := readSmall(filepath.Join(env.proc, "self", "mountinfo"))
	if err != nil {
		return nil, fmt.Errorf("read mountinfo: %w", err)
	}
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > maxMountLines {
		return nil, fmt.Errorf("%d mounts (over the cap of %d)", len(lines), maxMountLines)
	}
	var ms []mount
	for i, line := range lines {
		// ID PARENT MAJ:MIN ROOT POINT OPTS [OPTIONAL...] - FSTYPE SOURCE SUPEROPTS
		f := strings.Fields(line)
		sep := slices.Index(f, "-")
		if sep < 6 || len(f) < sep+3 {
			return nil, fmt.Errorf("mountinfo line %d is malformed", i+1)
		}
		ms = append(ms, mount{devNum: f[2], point: unescapeMount(f[4]), opts: strings.Split(f[5], ","),
			fstype: f[sep+1], source: unescapeMount(f[sep+2])})
	}
	return ms, nil
}

var octalEscape = regexp.MustCompile(`\\[0-7]{3}`)

func unescapeMount(s string) string {
	return octalEscape.ReplaceAllStringFunc(s, func(e string) string {
		var b byte
		for _, c := range e[1:] {
			b = b*8 + byte(c-'0')
		}
		return string([]byte{b})
	})
}

// mountOf returns the mount that holds path (the longest mount point that
// is a prefix of it).
func mountOf(ms []mount, path string) (mount, bool) {
	var best mount
	found := false
	for _, m := range ms {
		if m.point == path || m.point == "/" || strings.HasPrefix(path, m.point+"/") {
			if !found || len(m.point) >= len(best.point) {
				best, found = m, true
			}
		}
	}
	return best, found
}

var rootHashOpt = regexp.MustCompile(`^roothash=[0-9a-f]{64}$`)

func checkRoot(_ context.Context, env selfTestEnv) (string, error) {
	ms, err := readMounts(env)
	if err != nil {
		return "", err
	}
	root, ok := mountOf(ms, "/")
	if !ok {
		return "", errors.New("no root mount in mountinfo")
	}
	if !slices.Contains(root.opts, "ro") {
		return "", fmt.Errorf("the root (%s on %s) is mounted read-write", root.fstype, safetext.Quote(root.source))
	}
	if root.fstype != "squashfs" && root.fstype != "erofs" {
		return "", fmt.Errorf("the root is %s, want squashfs or erofs", safetext.Quote(root.fstype))
	}
	uuid, err := readSmall(filepath.Join(env.sys, "dev", "block", root.devNum, "dm", "uuid"))
	if err != nil {
		return "", fmt.Errorf("the root %s is not a device-mapper device: %w", safetext.Quote(root.source), err)
	}
	if !strings.HasPrefix(uuid, "CRYPT-VERITY-") {
		return "", fmt.Errorf("the root's device-mapper target is %s, not dm-verity", safetext.Quote(strings.TrimSpace(uuid)))
	}
	cmdline, err := readSmall(filepath.Join(env.proc, "cmdline"))
	if err != nil {
		return "", fmt.Errorf("read the kernel command line: %w", err)
	}
	hash := ""
	for _, o := range strings.Fields(cmdline) {
		if rootHashOpt.MatchString(o) {
			hash = strings.TrimPrefix(o, "roothash=")
		}
	}
	if hash == "" {
		return "", errors.New("the kernel command line has no roothash=; nothing pins the root's content")
	}
	return fmt.Sprintf("read-only %s, dm-verity, root hash %s", root.fstype, hash), nil
}

func checkState(_ context.Context, env selfTestEnv) (string, error) {
	ms, err := readMounts(env)
	if err != nil {
		return "", err
	}
	abs, err := filepath.Abs(env.state)
	if err != nil {
		return "", err
	}
	m, ok := mountOf(ms, abs)
	if !ok {
		return "", fmt.Errorf("no mount holds %s", abs)
	}
	if m.point == "/" || m.fstype == "tmpfs" {
		return "", fmt.Errorf("%s is on %s (%s), not on the state partition", abs, m.point, m.fstype)
	}
	probe := filepath.Join(abs, ".self-test")
	want := []byte(time.Now().UTC().Format(time.RFC3339Nano))
	f, err := os.OpenFile(probe, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return "", fmt.Errorf("the state partition is not writable: %w", err)
	}
	_, err = f.Write(want)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return "", fmt.Errorf("write to the state partition: %w", err)
	}
	got, err := os.ReadFile(probe)
	if rerr := os.Remove(probe); err == nil {
		err = rerr
	}
	if err != nil {
		return "", fmt.Errorf("read back from the state partition: %w", err)
	}
	if string(got) != string(want) {
		return "", errors.New("the state partition returned other bytes than were written")
	}
	return fmt.Sprintf("%s writable (%s on %s)", abs, m.fstype, safetext.Quote(m.source)), nil
}

func checkUSB(_ context.Context, env selfTestEnv) (string, error) {
	path := env.usbDevice
	if path == "" {
		deadline := time.Now().Add(env.waitUSB)
		for {
			devs, err := usb.ListRemovable(env.sys, env.dev)
			if err != nil {
				return "", err
			}
			for _, d := range devs {
				if d.USB && d.Size > 0 {
					path = d.Path
					break
				}
			}
			if path != "" || !time.Now().Before(deadline) {
				break
			}
			env.sleep(250 * time.Millisecond)
		}
		if path == "" {
			return "", errors.New("no USB disk with a medium found; attach the transfer stick")
		}
	}
	ms, err := readMounts(env)
	if err != nil {
		return "", err
	}
	base := filepath.Base(path)
	for _, m := range ms {
		if s := filepath.Base(m.source); s == base || strings.HasPrefix(s, base) && strings.HasPrefix(m.source, "/dev/") {
			return "", fmt.Errorf("%s is mounted on %s; nothing may mount removable media", safetext.Quote(m.source), m.point)
		}
	}
	v, err := usb.Open(path)
	if err != nil {
		return "", fmt.Errorf("read %s: %w", path, err)
	}
	defer v.Close()
	entries, err := fs.ReadDir(v.FS, ".")
	if err != nil {
		return "", fmt.Errorf("list %s: %w", path, err)
	}
	return fmt.Sprintf("%s read without mounting: %s, label %q, %d entries at the top", path, v.Type, v.Label, len(entries)), nil
}
