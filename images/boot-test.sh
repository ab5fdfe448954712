#!/usr/bin/env bash
# Boots the appliance image under qemu (software emulation, no KVM) with
# UEFI firmware (OVMF), a software TPM (swtpm), a network card and a FAT32
# image attached as a USB stick, checks the appliance's self-test lines on
# the serial console, then runs a signing ceremony on the appliance's
# terminal ui over the serial console and checks the response on the host.
#
#   images/boot-test.sh [--self-test-only] [IMAGE]   default images/out/airlock.img
#
# The ceremony: ceremony-setup.sh enrols two holders' TPM keys in the swtpm
# the guest boots with, makes a repository delegating the role "release"
# 2-of-2 to them, a bundle, and the provisioned appliance state. The test
# boots a copy of the image whose state partition holds that state and whose
# unified kernel image carries the image's own command line plus
# airlock.console=ttyS0 (the appliance then runs on the serial console
# instead of tty1; nothing else changes). serial-ceremony.py answers the
# screens as the officer and holders would: the date, the stick, the
# request fingerprint compared with the one bundle create printed, each
# holder's approval and PIN, the stick for the response. Then the host
# reads the response folder off the stick image with mtools and runs
# airlock combine and airlock verify on it.
#
# Environment: BOOT_TIMEOUT (seconds to the self-test, default 900),
# CEREMONY_TIMEOUT (seconds for the ceremony, default 900), KEEP=1 keeps
# the temporary folder (console log, screens, TPM state). The image file is
# not changed: --self-test-only attaches it with snapshot=on, the ceremony
# boots a copy.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
ceremony=1
if [[ ${1:-} == --self-test-only ]]; then
  ceremony=0
  shift
fi
img=${1:-${AIRLOCK_IMAGE_OUT:-$here/out}/airlock.img}
timeout=${BOOT_TIMEOUT:-900}
ceremony_timeout=${CEREMONY_TIMEOUT:-900}
[[ -f $img ]] || { echo "boot-test: no image at $img; run make -C images image first" >&2; exit 1; }
tools=(qemu-system-x86_64 swtpm mkfs.vfat mcopy)
((ceremony)) && tools+=(go python3 objcopy mkfs.ext4 sfdisk)
for c in "${tools[@]}"; do
  command -v "$c" >/dev/null || { echo "boot-test: $c is missing; run images/install-deps.sh" >&2; exit 1; }
done
code=/usr/share/OVMF/OVMF_CODE_4M.fd
vars=/usr/share/OVMF/OVMF_VARS_4M.fd
[[ -f $code && -f $vars ]] || { echo "boot-test: OVMF firmware missing; run images/install-deps.sh" >&2; exit 1; }

tmp=$(mktemp -d /tmp/airlock-boot.XXXXXX)
qemu_pid=
swtpm_pid=
driver_pid=
stop() { # PID: SIGTERM, wait up to 10 s, then SIGKILL
  kill "$1" 2>/dev/null || return 0
  for _ in $(seq 100); do kill -0 "$1" 2>/dev/null || return 0; sleep 0.1; done
  kill -9 "$1" 2>/dev/null || true
}
cleanup() {
  [[ -n $driver_pid ]] && stop "$driver_pid"
  [[ -n $qemu_pid ]] && stop "$qemu_pid"
  [[ -n $swtpm_pid ]] && stop "$swtpm_pid"
  if [[ ${KEEP:-} == 1 ]]; then echo "boot-test: kept $tmp" >&2; else rm -rf "$tmp"; fi
}
trap cleanup EXIT
export MTOOLS_SKIP_CHECK=1

# The transfer stick: FAT32, no partition table, one bundle folder.
mkfs.vfat -F 32 -n TRANSFER -C "$tmp/usb.img" 65536 >/dev/null
disk=(-drive if=none,id=disk,format=raw,file="$img",snapshot=on)
if ((ceremony)); then
  cer_start=$(date +%s)
  "$here/ceremony-setup.sh" "$tmp/cer"
  cp -r "$tmp/cer/bundle" "$tmp/airlock-bundle"
  mcopy -s -i "$tmp/usb.img" "$tmp/airlock-bundle" ::/
  cp -r "$tmp/cer/tpm" "$tmp/tpm"

  # A copy of the image to boot: the provisioned state in its state
  # partition, and the serial-console switch on its kernel command line.
  cp --sparse=always "$img" "$tmp/disk.img"
  part() { # LABEL -> "START_SECTOR SECTORS"
    sfdisk -d "$tmp/disk.img" | sed -n "s/.*start= *\([0-9]*\), size= *\([0-9]*\),.*name=\"$1\".*/\1 \2/p"
  }
  read -r st_start st_size < <(part airlock-state)
  read -r esp_start _ < <(part airlock-esp)
  [[ -n $st_start && -n $esp_start ]] || { echo "boot-test: no airlock-state or airlock-esp partition in $img" >&2; exit 1; }
  truncate -s $((st_size * 512)) "$tmp/state.img"
  mkfs.ext4 -q -F -L airlock-state -E root_owner=900:900 -d "$tmp/cer/state" "$tmp/state.img"
  dd if="$tmp/state.img" of="$tmp/disk.img" bs=512 seek="$st_start" conv=notrunc,sparse status=none
  esp="$tmp/disk.img@@$((esp_start * 512))"
  mcopy -i "$esp" ::/EFI/BOOT/BOOTX64.EFI "$tmp/uki.efi"
  objcopy --dump-section .cmdline="$tmp/cmdline" "$tmp/uki.efi"
  base=$(tr -d '\0\n' <"$tmp/cmdline")
  [[ " $base " == *" roothash="* && " $base " != *" airlock.console="* ]] ||
    { echo "boot-test: unexpected kernel command line in the image: $base" >&2; exit 1; }
  printf '%s airlock.console=ttyS0\n' "$base" >"$tmp/cmdline.serial"
  objcopy --remove-section .cmdline "$tmp/uki.efi" "$tmp/uki-nocmd.efi"
  objcopy --add-section .cmdline="$tmp/cmdline.serial" --change-section-vma .cmdline=0x30000 "$tmp/uki-nocmd.efi" "$tmp/uki-serial.efi"
  objcopy --dump-section .cmdline="$tmp/cmdline.check" "$tmp/uki-serial.efi"
  cmp -s "$tmp/cmdline.serial" "$tmp/cmdline.check" || { echo "boot-test: the serial-console kernel image has the wrong command line" >&2; exit 1; }
  mcopy -o -i "$esp" "$tmp/uki-serial.efi" ::/EFI/BOOT/BOOTX64.EFI
  disk=(-drive if=none,id=disk,format=raw,file="$tmp/disk.img")
  echo "boot-test: prepared the ceremony in $(($(date +%s) - cer_start)) s; booting a copy with: $base airlock.console=ttyS0" >&2
else
  mkdir -p "$tmp/stick/airlock-bundle"
  echo '{}' >"$tmp/stick/airlock-bundle/README.txt"
  mcopy -s -i "$tmp/usb.img" "$tmp/stick/airlock-bundle" ::/
  mkdir -p "$tmp/tpm"
fi

# The software TPM on a unix socket, stopped by process id.
swtpm socket --tpm2 --tpmstate dir="$tmp/tpm" --ctrl type=unixio,path="$tmp/swtpm.sock" \
  --log file="$tmp/swtpm.log" --pid file="$tmp/swtpm.pid" --daemon
swtpm_pid=$(cat "$tmp/swtpm.pid")
for _ in $(seq 50); do [[ -S $tmp/swtpm.sock ]] && break; sleep 0.1; done
[[ -S $tmp/swtpm.sock ]] || { echo "boot-test: swtpm did not start" >&2; cat "$tmp/swtpm.log" >&2; exit 1; }

cp "$vars" "$tmp/OVMF_VARS.fd"
# The serial console: a file, or for the ceremony a unix socket that qemu
# waits on until the driver connects; the driver then keeps the console log.
# (Not qemu's logfile= beside the socket: it logs a byte again each time the
# socket is momentarily full and the byte is sent again.)
serial=(-serial file:"$tmp/console.log")
((ceremony)) && serial=(-chardev socket,id=serial0,path="$tmp/serial.sock",server=on,wait=on -serial chardev:serial0)
start=$(date +%s.%N)
qemu-system-x86_64 -machine q35 -accel tcg -m 1024 -smp 2 \
  -drive if=pflash,format=raw,readonly=on,file="$code" \
  -drive if=pflash,format=raw,file="$tmp/OVMF_VARS.fd" \
  "${disk[@]}" -device virtio-blk-pci,drive=disk,bootindex=1 \
  -chardev socket,id=chrtpm,path="$tmp/swtpm.sock" -tpmdev emulator,id=tpm0,chardev=chrtpm -device tpm-tis,tpmdev=tpm0 \
  -netdev user,id=net0,restrict=on -device e1000e,netdev=net0 \
  -netdev user,id=net1,restrict=on -device virtio-net-pci,netdev=net1 \
  -device qemu-xhci,id=xhci \
  -drive if=none,id=stick,format=raw,file="$tmp/usb.img" -device usb-storage,bus=xhci.0,drive=stick \
  "${serial[@]}" -display none -monitor none -no-reboot \
  >"$tmp/qemu.log" 2>&1 &
qemu_pid=$!
if ((ceremony)); then
  holders=()
  while read -r h; do holders+=(--holder "$h"); done <"$tmp/cer/pins"
  python3 "$here/serial-ceremony.py" --socket "$tmp/serial.sock" --fingerprint "$(cat "$tmp/cer/fingerprint")" \
    --role release "${holders[@]}" --timeout "$((timeout + ceremony_timeout))" --screens "$tmp/screens.txt" \
    --raw "$tmp/console.log" >"$tmp/driver.log" 2>&1 &
  driver_pid=$!
fi

verdict=
while :; do
  if grep -q 'self-test: passed' "$tmp/console.log" 2>/dev/null; then verdict=passed; break; fi
  if grep -q 'self-test: FAILED' "$tmp/console.log" 2>/dev/null; then verdict=failed; break; fi
  if grep -qE 'Kernel panic|airlock: .*(does not match|no partitions|no roothash)' "$tmp/console.log" 2>/dev/null; then verdict=panic; break; fi
  if ! kill -0 "$qemu_pid" 2>/dev/null; then verdict=exited; break; fi
  if [[ -n $driver_pid ]] && ! kill -0 "$driver_pid" 2>/dev/null; then verdict="console driver exited: $(tail -3 "$tmp/driver.log")"; break; fi
  if (( $(date +%s) - ${start%.*} > timeout )); then verdict=timeout; break; fi
  sleep 1
done
end=$(date +%s.%N)
sleep 1 # let the console log take the last lines
secs=$(awk -v a="$start" -v b="$end" 'BEGIN{printf "%.0f", b-a}')

echo "boot-test: console (self-test lines):"
tr -d '\r' <"$tmp/console.log" | grep -a 'self-test: ' | sed -E 's/^.*(self-test: )/\1/' | awk '!seen[$0]++' | tee "$tmp/selftest.txt" || true
if [[ $verdict != passed ]]; then
  echo "boot-test: FAIL ($verdict after ${secs} s); last console lines:" >&2
  tr -d '\r' <"$tmp/console.log" | tail -40 >&2
  cat "$tmp/qemu.log" >&2
  exit 1
fi
# Every promise must have its own ok line, not only the verdict.
missing=0
for want in 'tpm: ok TPM 2.0 present' 'network: ok only lo' 'kernel modules: ok loading disabled' \
  'kernel options: ok lockdown=confidentiality init_on_free=1 slab_nomerge usbcore.authorized_default=0' \
  'lockdown: ok confidentiality' 'root: ok read-only squashfs, dm-verity, root hash' \
  'state: ok /var/lib/airlock writable (ext4' 'usb: ok /dev/sd' 'read without mounting: FAT32, label "TRANSFER"'; do
  grep -qF "$want" "$tmp/selftest.txt" || { echo "boot-test: no self-test line with: $want" >&2; missing=1; }
done
roothash=$(cat "$(dirname "$img")/roothash" 2>/dev/null || true)
if [[ -n $roothash ]] && ! grep -qF "root hash $roothash" "$tmp/selftest.txt"; then
  echo "boot-test: the booted root hash is not the image's ($roothash)" >&2
  missing=1
fi
((missing == 0)) || exit 1
echo "boot-test: PASS: booted to the self-test in ${secs} s (qemu TCG, OVMF, swtpm, 2 NICs, USB stick)"
((ceremony)) || exit 0

# The ceremony on the serial console, then the response off the stick.
echo "boot-test: ceremony on the serial console (screens answered in $tmp/screens.txt)"
start_c=$(date +%s)
driver_rc=0
wait "$driver_pid" || driver_rc=$?
driver_pid=
cat "$tmp/driver.log"
c_secs=$(($(date +%s) - start_c))
if ((driver_rc != 0)); then
  echo "boot-test: FAIL: the ceremony on the serial console did not finish (exit $driver_rc after ${c_secs} s after the self-test)" >&2
  cat "$tmp/qemu.log" >&2
  exit 1
fi
stop "$qemu_pid"
qemu_pid=
mkdir "$tmp/stick-after"
mcopy -s -i "$tmp/usb.img" :: "$tmp/stick-after/"
responses=("$tmp"/stick-after/release-v1-*/response.json)
[[ ${#responses[@]} -eq 1 && -f ${responses[0]} ]] ||
  { echo "boot-test: FAIL: no single release-v1-*/response.json on the stick; it holds: $(cd "$tmp/stick-after" && find . -type f | paste -sd' ' -)" >&2; exit 1; }
echo "boot-test: response on the stick: ${responses[0]#"$tmp/stick-after/"} and $(ls "$(dirname "${responses[0]}")" | paste -sd' ' -)"
airlock=$tmp/cer/bin/airlock
"$airlock" combine --repo "$tmp/cer/repo" "$tmp/cer/bundle" "${responses[0]}" | tee "$tmp/combine.txt"
grep -qE '^release version 1: 2 signatures \((alice|bob) [0-9a-f]{12}, (alice|bob) [0-9a-f]{12}\)' "$tmp/combine.txt" ||
  { echo "boot-test: FAIL: airlock combine did not merge two signatures by alice and bob" >&2; exit 1; }
"$airlock" verify --root "$tmp/cer/repo/metadata/1.root.json" --repo "$tmp/cer/repo" \
  --target release/hello-1.0.0.txt --file "$tmp/cer/artifact/hello-1.0.0.txt" | tee "$tmp/verify.txt"
grep -q 'target release/hello-1.0.0.txt: 35 bytes, signed by role release, bytes verified' "$tmp/verify.txt" ||
  { echo "boot-test: FAIL: airlock verify did not verify the signed target" >&2; exit 1; }
echo "boot-test: PASS: ceremony on the serial console in ${c_secs} s after the self-test; airlock combine merged the response (2 of 2) and airlock verify accepts the release"
