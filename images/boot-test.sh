#!/usr/bin/env bash
# Boots the appliance image under qemu (software emulation, no KVM) with
# UEFI firmware (OVMF), a software TPM (swtpm), a network card and a FAT32
# image attached as a USB stick, and checks the appliance's self-test lines
# on the serial console.
#
#   images/boot-test.sh [IMAGE]     default images/out/airlock.img
#
# Environment: BOOT_TIMEOUT (seconds, default 900), KEEP=1 keeps the
# temporary folder (console log, TPM state). The disk is attached with
# snapshot=on: the image file is not changed.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
img=${1:-${AIRLOCK_IMAGE_OUT:-$here/out}/airlock.img}
timeout=${BOOT_TIMEOUT:-900}
[[ -f $img ]] || { echo "boot-test: no image at $img; run make -C images image first" >&2; exit 1; }
for c in qemu-system-x86_64 swtpm mkfs.vfat mcopy; do
  command -v "$c" >/dev/null || { echo "boot-test: $c is missing; run images/install-deps.sh" >&2; exit 1; }
done
code=/usr/share/OVMF/OVMF_CODE_4M.fd
vars=/usr/share/OVMF/OVMF_VARS_4M.fd
[[ -f $code && -f $vars ]] || { echo "boot-test: OVMF firmware missing; run images/install-deps.sh" >&2; exit 1; }

tmp=$(mktemp -d /tmp/airlock-boot.XXXXXX)
qemu_pid=
swtpm_pid=
cleanup() {
  [[ -n $qemu_pid ]] && kill "$qemu_pid" 2>/dev/null && wait "$qemu_pid" 2>/dev/null
  [[ -n $swtpm_pid ]] && kill "$swtpm_pid" 2>/dev/null && wait "$swtpm_pid" 2>/dev/null
  if [[ ${KEEP:-} == 1 ]]; then echo "boot-test: kept $tmp" >&2; else rm -rf "$tmp"; fi
}
trap cleanup EXIT

# The transfer stick: FAT32, no partition table, one bundle folder.
mkfs.vfat -F 32 -n TRANSFER -C "$tmp/usb.img" 65536 >/dev/null
mkdir -p "$tmp/stick/airlock-bundle"
echo '{}' >"$tmp/stick/airlock-bundle/README.txt"
MTOOLS_SKIP_CHECK=1 mcopy -s -i "$tmp/usb.img" "$tmp/stick/airlock-bundle" ::/

# A fresh software TPM on a unix socket, stopped by process id.
mkdir -p "$tmp/tpm"
swtpm socket --tpm2 --tpmstate dir="$tmp/tpm" --ctrl type=unixio,path="$tmp/swtpm.sock" \
  --log file="$tmp/swtpm.log" &
swtpm_pid=$!
for _ in $(seq 50); do [[ -S $tmp/swtpm.sock ]] && break; sleep 0.1; done
[[ -S $tmp/swtpm.sock ]] || { echo "boot-test: swtpm did not start" >&2; cat "$tmp/swtpm.log" >&2; exit 1; }

cp "$vars" "$tmp/OVMF_VARS.fd"
start=$(date +%s.%N)
qemu-system-x86_64 -machine q35 -accel tcg -m 1024 -smp 2 \
  -drive if=pflash,format=raw,readonly=on,file="$code" \
  -drive if=pflash,format=raw,file="$tmp/OVMF_VARS.fd" \
  -drive if=none,id=disk,format=raw,file="$img",snapshot=on -device virtio-blk-pci,drive=disk,bootindex=1 \
  -chardev socket,id=chrtpm,path="$tmp/swtpm.sock" -tpmdev emulator,id=tpm0,chardev=chrtpm -device tpm-tis,tpmdev=tpm0 \
  -netdev user,id=net0,restrict=on -device e1000e,netdev=net0 \
  -netdev user,id=net1,restrict=on -device virtio-net-pci,netdev=net1 \
  -device qemu-xhci,id=xhci \
  -drive if=none,id=stick,format=raw,file="$tmp/usb.img" -device usb-storage,bus=xhci.0,drive=stick \
  -display none -monitor none -serial file:"$tmp/console.log" -no-reboot \
  >"$tmp/qemu.log" 2>&1 &
qemu_pid=$!

verdict=
while :; do
  if grep -q 'self-test: passed' "$tmp/console.log" 2>/dev/null; then verdict=passed; break; fi
  if grep -q 'self-test: FAILED' "$tmp/console.log" 2>/dev/null; then verdict=failed; break; fi
  if grep -qE 'Kernel panic|airlock: .*(does not match|no partitions|no roothash)' "$tmp/console.log" 2>/dev/null; then verdict=panic; break; fi
  if ! kill -0 "$qemu_pid" 2>/dev/null; then verdict=exited; break; fi
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
