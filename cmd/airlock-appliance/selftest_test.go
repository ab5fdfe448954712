package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"airlock.dev/airlock/hsm/tpm/tpmtest"
)

const testRootHash = "4f1c0e2d9a7b6c5d4e3f2a1b0c9d8e7f6a5b4c3d2e1f0a9b8c7d6e5f4a3b2c1d"

// applianceTree writes a fake /sys, /proc and /lib/modules describing a
// machine booted from the appliance image, a FAT32 image standing in for
// the USB stick, and returns the environment the self-test reads.
func applianceTree(t *testing.T, tpmDevice string) selfTestEnv {
	t.Helper()
	dir := t.TempDir()
	state := filepath.Join(dir, "state")
	files := map[string]string{
		"sys/class/net/lo/type":                            "772\n",
		"sys/module/usbcore/parameters/authorized_default": "0\n",
		"sys/kernel/security/lockdown":                     "none integrity [confidentiality]\n",
		"sys/dev/block/254:0/dm/uuid":                      "CRYPT-VERITY-2b3c4d5e6f708192a3b4c5d6e7f80912-airlock-root\n",
		"proc/sys/kernel/modules_disabled":                 "1\n",
		"proc/sys/kernel/osrelease":                        "6.1.0-test-amd64\n",
		"proc/filesystems":                                 "nodev\tsysfs\nnodev\ttmpfs\n\tsquashfs\n\text4\n",
		"proc/cmdline": "root=/dev/mapper/airlock-root ro roothash=" + testRootHash +
			" lockdown=confidentiality init_on_free=1 slab_nomerge usbcore.authorized_default=0\n",
		"proc/self/mountinfo": "22 1 254:0 / / ro,relatime shared:1 - squashfs /dev/mapper/airlock-root ro,errors=continue\n" +
			"23 22 0:21 / /tmp rw,nosuid,nodev - tmpfs tmpfs rw\n" +
			"24 22 259:4 / " + state + " rw,nosuid,nodev,noexec shared:5 - ext4 /dev/vda4 rw,data=journal\n",
		"modules/6.1.0-test-amd64/modules.dep": "kernel/fs/squashfs/squashfs.ko:\n" +
			"kernel/drivers/usb/storage/usb-storage.ko: kernel/drivers/scsi/scsi_mod.ko\n" +
			"kernel/drivers/md/dm-verity.ko: kernel/drivers/md/dm-mod.ko\n",
	}
	for name, content := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, d := range []string{state, filepath.Join(dir, "sys/block"), filepath.Join(dir, "dev")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return selfTestEnv{sys: filepath.Join(dir, "sys"), proc: filepath.Join(dir, "proc"), dev: filepath.Join(dir, "dev"),
		modules: filepath.Join(dir, "modules"), tpmDevice: tpmDevice, state: state, usbDevice: fatStick(t, dir),
		sleep: func(time.Duration) {}}
}

// fatStick makes a FAT32 image named "sdb" holding one bundle folder.
func fatStick(t *testing.T, dir string) string {
	t.Helper()
	img := filepath.Join(dir, "sdb")
	if o, err := exec.Command("mkfs.vfat", "-F", "32", "-n", "TRANSFER", "-C", img, "40960").CombinedOutput(); err != nil {
		t.Fatalf("mkfs.vfat (dosfstools, installed by scripts/install-test-deps.sh): %v %s", err, o)
	}
	src := filepath.Join(dir, "bundle")
	if err := os.MkdirAll(src, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(src, "request.json"), []byte("{}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if o, err := exec.Command("mcopy", "-s", "-i", img, src, "::").CombinedOutput(); err != nil {
		t.Fatalf("mcopy (mtools, installed by scripts/install-test-deps.sh): %v %s", err, o)
	}
	return img
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestSelfTestPassesOnApplianceMachine runs every check against a machine
// that is as the image promises, with a real TPM (swtpm) and a real FAT32
// stick image, and checks each printed line.
func TestSelfTestPassesOnApplianceMachine(t *testing.T) {
	env := applianceTree(t, tpmtest.SwtpmUnix(t))
	var out bytes.Buffer
	if failed := runSelfTest(context.Background(), env, &out); failed != 0 {
		t.Fatalf("%d checks failed:\n%s", failed, out.String())
	}
	for _, want := range []string{
		"self-test: tpm: ok TPM 2.0 present at unix:",
		"self-test: network: ok only lo\n",
		"self-test: kernel modules: ok loading disabled; no network or removable-media filesystem modules among 3\n",
		"self-test: kernel options: ok lockdown=confidentiality init_on_free=1 slab_nomerge usbcore.authorized_default=0\n",
		"self-test: lockdown: ok confidentiality\n",
		"self-test: root: ok read-only squashfs, dm-verity, root hash " + testRootHash + "\n",
		"self-test: state: ok " + env.state + " writable (ext4 on \"/dev/vda4\")\n",
		"self-test: usb: ok " + env.usbDevice + " read without mounting: FAT32, label \"TRANSFER\", 1 entries at the top\n",
		"self-test: passed (8 checks)\n",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
	if _, err := os.Stat(filepath.Join(env.state, ".self-test")); !os.IsNotExist(err) {
		t.Errorf("the state probe file was left behind (stat: %v)", err)
	}
}

// TestSelfTestNamesEachFailure breaks one promise of the image at a time and
// checks that exactly that check fails, saying why, and the verdict fails.
func TestSelfTestNamesEachFailure(t *testing.T) {
	tpmDev := tpmtest.SwtpmUnix(t)
	cases := []struct {
		name, check, why string
		breakIt          func(t *testing.T, env *selfTestEnv)
	}{
		{"no TPM", "tpm", "no TPM", func(t *testing.T, env *selfTestEnv) {
			env.tpmDevice = "unix:" + filepath.Join(t.TempDir(), "absent.sock")
		}},
		{"a NIC", "network", "network interfaces eth0, lo; only lo may exist", func(t *testing.T, env *selfTestEnv) {
			writeFile(t, filepath.Join(env.sys, "class/net/eth0/type"), "1\n")
		}},
		{"modules loadable", "kernel modules", `kernel.modules_disabled is "0", want 1`, func(t *testing.T, env *selfTestEnv) {
			writeFile(t, filepath.Join(env.proc, "sys/kernel/modules_disabled"), "0\n")
		}},
		{"vfat driver loaded", "kernel modules", "the kernel has the vfat filesystem driver", func(t *testing.T, env *selfTestEnv) {
			writeFile(t, filepath.Join(env.proc, "filesystems"), "nodev\tsysfs\n\tsquashfs\n\tvfat\n")
		}},
		{"network module kept", "kernel modules", `module "kernel/drivers/net/ethernet/intel/e1000e/e1000e.ko" is in the image`, func(t *testing.T, env *selfTestEnv) {
			writeFile(t, filepath.Join(env.modules, "6.1.0-test-amd64/modules.dep"),
				"kernel/fs/squashfs/squashfs.ko:\nkernel/drivers/net/ethernet/intel/e1000e/e1000e.ko:\n")
		}},
		{"no init_on_free", "kernel options", "the kernel command line lacks init_on_free=1", func(t *testing.T, env *selfTestEnv) {
			writeFile(t, filepath.Join(env.proc, "cmdline"), "roothash="+testRootHash+" lockdown=confidentiality slab_nomerge usbcore.authorized_default=0\n")
		}},
		{"usb authorized by default", "kernel options", `usbcore.authorized_default is "1", want 0`, func(t *testing.T, env *selfTestEnv) {
			writeFile(t, filepath.Join(env.sys, "module/usbcore/parameters/authorized_default"), "1\n")
		}},
		{"lockdown off", "lockdown", `kernel lockdown is "[none] integrity confidentiality", want [confidentiality]`, func(t *testing.T, env *selfTestEnv) {
			writeFile(t, filepath.Join(env.sys, "kernel/security/lockdown"), "[none] integrity confidentiality\n")
		}},
		{"root writable", "root", `the root (squashfs on "/dev/mapper/airlock-root") is mounted read-write`, func(t *testing.T, env *selfTestEnv) {
			replaceIn(t, filepath.Join(env.proc, "self/mountinfo"), "/ / ro,relatime", "/ / rw,relatime")
		}},
		{"root not verity", "root", `the root's device-mapper target is "CRYPT-LUKS2-x-root", not dm-verity`, func(t *testing.T, env *selfTestEnv) {
			writeFile(t, filepath.Join(env.sys, "dev/block/254:0/dm/uuid"), "CRYPT-LUKS2-x-root\n")
		}},
		{"no root hash", "root", "the kernel command line has no roothash=", func(t *testing.T, env *selfTestEnv) {
			replaceIn(t, filepath.Join(env.proc, "cmdline"), "roothash="+testRootHash, "roothash=short")
		}},
		{"state on tmpfs", "state", "not on the state partition", func(t *testing.T, env *selfTestEnv) {
			replaceIn(t, filepath.Join(env.proc, "self/mountinfo"), "- ext4 /dev/vda4", "- tmpfs tmpfs")
		}},
		{"state read-only", "state", "the state partition is not writable", func(t *testing.T, env *selfTestEnv) {
			if os.Geteuid() == 0 {
				// root writes through mode bits: make the probe name a folder instead.
				if err := os.Mkdir(filepath.Join(env.state, ".self-test"), 0o755); err != nil {
					t.Fatal(err)
				}
				return
			}
			if err := os.Chmod(env.state, 0o500); err != nil {
				t.Fatal(err)
			}
		}},
		{"stick mounted", "usb", `"/dev/sdb1" is mounted on /media/stick; nothing may mount removable media`, func(t *testing.T, env *selfTestEnv) {
			f, err := os.OpenFile(filepath.Join(env.proc, "self/mountinfo"), os.O_APPEND|os.O_WRONLY, 0)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			if _, err := f.WriteString("30 22 8:17 / /media/stick rw - vfat /dev/sdb1 rw\n"); err != nil {
				t.Fatal(err)
			}
		}},
		{"no stick", "usb", "no USB disk with a medium found; attach the transfer stick", func(t *testing.T, env *selfTestEnv) {
			env.usbDevice = ""
		}},
		{"stick unreadable", "usb", "read ", func(t *testing.T, env *selfTestEnv) {
			if err := os.WriteFile(env.usbDevice, bytes.Repeat([]byte{0x5a}, 1<<20), 0o644); err != nil {
				t.Fatal(err)
			}
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			env := applianceTree(t, tpmDev)
			c.breakIt(t, &env)
			var out bytes.Buffer
			if failed := runSelfTest(context.Background(), env, &out); failed != 1 {
				t.Fatalf("%d checks failed, want 1:\n%s", failed, out.String())
			}
			want := "self-test: " + c.check + ": FAIL "
			line := ""
			for _, l := range strings.Split(out.String(), "\n") {
				if strings.HasPrefix(l, want) {
					line = l
				}
			}
			if line == "" || !strings.Contains(line, c.why) {
				t.Fatalf("want a line %q...%q; got:\n%s", want, c.why, out.String())
			}
			if !strings.Contains(out.String(), "self-test: FAILED (1 of 8 checks)\n") {
				t.Errorf("no failing verdict:\n%s", out.String())
			}
		})
	}
}

func replaceIn(t *testing.T, path, old, new string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(b, []byte(old)) {
		t.Fatalf("%s lacks %q", path, old)
	}
	if err := os.WriteFile(path, bytes.Replace(b, []byte(old), []byte(new), 1), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestSelfTestCommandExitStatus runs the subcommand: a failing machine
// exits 1 with a one-line reason, bad flags exit 2.
func TestSelfTestCommandExitStatus(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if code := run(context.Background(), []string{"self-test"}, &stdout, &stderr); code != 2 ||
		!strings.Contains(stderr.String(), "self-test needs --state DIR") {
		t.Fatalf("no --state: exit %d, stderr %q", code, stderr.String())
	}
	stderr.Reset()
	if code := run(context.Background(), []string{"self-test", "--state", t.TempDir(), "--wait-usb", "1h"}, &stdout, &stderr); code != 2 ||
		!strings.Contains(stderr.String(), "--wait-usb 1h0m0s: want 0 to 5m") {
		t.Fatalf("long wait: exit %d, stderr %q", code, stderr.String())
	}
	stderr.Reset()
	stdout.Reset()
	// This test machine is not an appliance: the real /sys and /proc fail
	// several checks (at least the verity root and the module lock).
	absent := "unix:" + filepath.Join(t.TempDir(), "absent.sock")
	if code := run(context.Background(), []string{"self-test", "--state", t.TempDir(), "--tpm", absent, "--usb", filepath.Join(t.TempDir(), "none")}, &stdout, &stderr); code != 1 ||
		!strings.Contains(stderr.String(), "check(s) failed; this machine is not fit for a ceremony") ||
		!strings.Contains(stdout.String(), "self-test: root: FAIL ") || !strings.Contains(stdout.String(), "self-test: FAILED (") {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr: %s", code, stdout.String(), stderr.String())
	}
}

// TestImageCmdlineHasSelfTestOptions keeps the image recipe and the
// self-test in step: every kernel option the self-test demands is on the
// image's command line, with the root hash placeholder.
func TestImageCmdlineHasSelfTestOptions(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("..", "..", "images", "cmdline.txt"))
	if err != nil {
		t.Fatal(err)
	}
	var opts []string
	for _, line := range strings.Split(string(b), "\n") {
		if line = strings.TrimSpace(line); line != "" && !strings.HasPrefix(line, "#") {
			opts = append(opts, line)
		}
	}
	for _, want := range append([]string{"roothash=@ROOTHASH@"}, requiredCmdline...) {
		if !slices.Contains(opts, want) {
			t.Errorf("images/cmdline.txt lacks %s (has %v)", want, opts)
		}
	}
}
