#!/usr/bin/env bash
# Installs what building and boot-testing the appliance image needs on a
# Debian bookworm host: mmdebstrap, squashfs-tools, veritysetup, the
# systemd-boot EFI stub (for the unified kernel image), binutils (objcopy),
# the C toolchain and PC/SC headers airlock-appliance builds with (cgo),
# FAT tools for the EFI system partition, dpkg-scanpackages (the offline
# package folder), qemu with OVMF, swtpm, and python3 (the boot test drives
# the appliance on the serial console with it).
set -euo pipefail

packages=(
  mmdebstrap squashfs-tools cryptsetup-bin systemd-boot-efi binutils
  dosfstools mtools fdisk e2fsprogs
  qemu-system-x86 ovmf swtpm swtpm-tools
  zstd ca-certificates dpkg-dev faketime
  gcc pkg-config libpcsclite-dev python3
)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  sudo_cmd=()
  [[ $(id -u) -eq 0 ]] || sudo_cmd=(sudo)
  echo "installing: ${missing[*]}" >&2
  "${sudo_cmd[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
