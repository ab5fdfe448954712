#!/usr/bin/env bash
# Builds the Airlock appliance disk image from Debian bookworm packages.
#
#   images/build.sh            build; fetch the packages first if the kept
#                              package folder is empty (needs the Debian mirror)
#   images/build.sh --offline  build only from the kept package folder; fails
#                              if a package is missing or its sha256 differs
#                              from the folder's manifest
#   images/build.sh --fetch    (re)fetch the package folder, then build
#   images/build.sh --fetch-only  (re)fetch the package folder and stop
#
# Environment: AIRLOCK_DEB_DIR (kept .deb folder, default
# /var/cache/airlock-image/debs), AIRLOCK_IMAGE_OUT (output folder, default
# images/out), SOURCE_DATE_EPOCH (default: the date of the last commit),
# AIRLOCK_MIRROR (default http://deb.debian.org/debian),
# AIRLOCK_EXPECT_MANIFEST (a manifest the package set must equal).
#
# Output in AIRLOCK_IMAGE_OUT: airlock.img (GPT disk: EFI system partition with
# a unified kernel image, squashfs root, dm-verity hash tree, state partition),
# manifest.txt (package, version, architecture, sha256 of the .deb),
# airlock.img.sha256, roothash, cmdline. The last lines printed are the
# manifest and the image hash.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)
mode=auto
case "${1:-}" in
  "") ;;
  --offline) mode=offline ;;
  --fetch) mode=fetch ;;
  --fetch-only) mode=fetch-only ;;
  --resume) mode=resume ;; # recipe work: reuse out/work/root of a run that failed after mmdebstrap
  *) echo "usage: images/build.sh [--offline|--fetch|--fetch-only]" >&2; exit 2 ;;
esac
[[ $(id -u) -eq 0 ]] || { echo "build.sh: run as root (mmdebstrap installs into a chroot)" >&2; exit 1; }

debs=${AIRLOCK_DEB_DIR:-/var/cache/airlock-image/debs}
out=${AIRLOCK_IMAGE_OUT:-$here/out}
mirror=${AIRLOCK_MIRROR:-http://deb.debian.org/debian}
if [[ -z ${SOURCE_DATE_EPOCH:-} ]]; then
  SOURCE_DATE_EPOCH=$(git -C "$repo" log -1 --format=%ct 2>/dev/null) || {
    echo "build.sh: set SOURCE_DATE_EPOCH (no git history to take it from)" >&2; exit 1; }
fi
export SOURCE_DATE_EPOCH
export LC_ALL=C TZ=UTC
umask 022
start=$(date +%s)

work="$out/work"
tree="$work/root"
# A failed mmdebstrap run can leave the package folder bind-mounted in the
# old tree: unmount before removing, and never cross into another mount.
findmnt -rn -o TARGET | awk -v w="$work/" 'index($0, w) == 1' | sort -r | while read -r m; do umount "$m"; done
[[ $mode == resume ]] || rm -rf --one-file-system "$work"
mkdir -p "$out" "$work" "$debs"
packages=$(grep -v '^\s*#' "$here/packages.txt" | grep -v '^\s*$' | paste -sd, -)
dpkgopts=(
  --dpkgopt='path-exclude=/usr/share/man/*'
  --dpkgopt='path-exclude=/usr/share/doc/*'
  --dpkgopt='path-include=/usr/share/doc/*/copyright'
  --dpkgopt='path-exclude=/usr/share/locale/*'
  --dpkgopt='path-exclude=/usr/share/info/*'
  --dpkgopt='path-exclude=/usr/share/lintian/*'
)
aptopts=(--aptopt='APT::Install-Recommends "false"' --aptopt='Acquire::Languages "none"')

# 1. Packages: fetch into the kept folder (with the mirror), or check the
# kept folder against its manifest.
deb_manifest() { # folder -> "name version arch sha256" lines
  local f
  for f in "$1"/*.deb; do
    printf '%s %s\n' "$(dpkg-deb -f "$f" Package Version Architecture | awk -F': ' '{printf "%s ", $2}')" \
      "$(sha256sum "$f" | cut -d' ' -f1)"
  done | sed 's/  */ /g' | LC_ALL=C sort
}
if [[ $mode != resume ]]; then
if [[ $mode == fetch* || ( $mode == auto && ! -s $debs/manifest.txt ) ]]; then
  echo "build.sh: fetching packages from $mirror into $debs" >&2
  rm -rf "$debs" && mkdir -p "$debs"
  mmdebstrap --variant=minbase --include="$packages" "${aptopts[@]}" \
    --skip=essential/unlink --skip=download/empty \
    --setup-hook='mkdir -p "$1"/var/cache/apt/archives' \
    --customize-hook="sync-out /var/cache/apt/archives $debs" \
    bookworm /dev/null "deb $mirror bookworm main" "deb $mirror-security bookworm-security main" \
    >"$work/fetch.log" 2>&1 || { tail -30 "$work/fetch.log" >&2; exit 1; }
  rm -rf "$debs/partial" "$debs/lock"
  deb_manifest "$debs" >"$debs/manifest.txt"
fi
[[ -s $debs/manifest.txt ]] || { echo "build.sh: $debs has no manifest.txt; run images/build.sh --fetch with the Debian mirror reachable" >&2; exit 1; }
deb_manifest "$debs" >"$work/debs-now.txt"
if ! cmp -s "$work/debs-now.txt" "$debs/manifest.txt"; then
  echo "build.sh: the packages in $debs do not match its manifest.txt:" >&2
  diff "$debs/manifest.txt" "$work/debs-now.txt" >&2 || true
  exit 1
fi
if [[ -n ${AIRLOCK_EXPECT_MANIFEST:-} ]] && ! cmp -s "$AIRLOCK_EXPECT_MANIFEST" "$debs/manifest.txt"; then
  echo "build.sh: the package set differs from $AIRLOCK_EXPECT_MANIFEST:" >&2
  diff "$AIRLOCK_EXPECT_MANIFEST" "$debs/manifest.txt" >&2 || true
  exit 1
fi
if [[ $mode == fetch-only ]]; then
  cat "$debs/manifest.txt"
  echo "build.sh: $(wc -l <"$debs/manifest.txt") packages kept in $debs" >&2
  exit 0
fi
# A flat repository of the kept folder; the Release file names the suite so
# that mmdebstrap finds bookworm's essential and required packages in it.
(cd "$debs" && dpkg-scanpackages --multiversion . /dev/null 2>/dev/null >Packages)
{
  printf 'Origin: airlock-kept\nLabel: airlock-kept\nSuite: bookworm\nCodename: bookworm\n'
  printf 'Architectures: amd64 all\nComponents: main\nDate: %s\nSHA256:\n' "$(date -u -R -d "@$SOURCE_DATE_EPOCH")"
  printf ' %s %s Packages\n' "$(sha256sum "$debs/Packages" | cut -d' ' -f1)" "$(stat -c %s "$debs/Packages")"
} >"$debs/Release"

# 2. The root tree, from the kept folder only (no network). The initramfs
# settings go in before the kernel, so that the kernel's own initramfs run is
# small; customize.sh builds the real one.
# The appliance binary: static layout, no build paths, no build id.
echo "build.sh: building airlock-appliance" >&2
(cd "$repo" && CGO_ENABLED=1 GOTOOLCHAIN=local go build -trimpath -buildvcs=false \
  -ldflags="-buildid= -X main.Version=image-$SOURCE_DATE_EPOCH" \
  -o "$work/airlock-appliance" ./cmd/airlock-appliance)

echo "build.sh: installing the root from $debs (offline)" >&2

AIRLOCK_IMAGES="$here" AIRLOCK_WORK="$work" AIRLOCK_BIN="$work/airlock-appliance" \
  PATH=/usr/sbin:/usr/bin:/sbin:/bin mmdebstrap --mode=root --variant=minbase --include="$packages" "${aptopts[@]}" "${dpkgopts[@]}" \
  --aptopt='Acquire::http::Proxy "http://127.0.0.1:9/"' --aptopt='Acquire::https::Proxy "http://127.0.0.1:9/"' \
  --hook-dir=/usr/share/mmdebstrap/hooks/file-mirror-automount \
  --essential-hook="mkdir -p \"\$1/etc/initramfs-tools/conf.d\" && cp '$here/rootfs/etc/initramfs-tools/conf.d/airlock' \"\$1/etc/initramfs-tools/conf.d/\"" \
  --customize-hook="$here/customize.sh" \
  bookworm "$tree" "deb [trusted=yes] file://$debs ./" \
  >"$work/mmdebstrap.log" 2>&1 || { tail -40 "$work/mmdebstrap.log" >&2; exit 1; }
fi
# Every installed package comes from the kept folder, at the kept version;
# the image's manifest is the installed set with the sha256 of each .deb.
# (The folder may hold a few more: apt and what it needs, which the fetch
# run installed to download with.)
awk 'NR == FNR { sha[$1" "$2" "$3] = $4; next }
     { k = $1" "$2" "$3; if (!(k in sha)) { print "build.sh: installed " k " is not in the kept folder" > "/dev/stderr"; bad = 1 }
       else print k " " sha[k] }
     END { exit bad }' "$debs/manifest.txt" "$work/installed.txt" >"$out/manifest.txt"
AIRLOCK_IMAGES="$here" AIRLOCK_WORK="$work" AIRLOCK_BIN="$work/airlock-appliance" \
  "$here/customize.sh" --finish "$tree"

# 3. Read-only root: squashfs with every timestamp SOURCE_DATE_EPOCH
# (mksquashfs refuses the options while the variable is set, and the
# variable alone only sets the creation time), then its dm-verity hash
# tree. Salt and UUID
# are derived from the squashfs so that the same tree gives the same hash.
env -u SOURCE_DATE_EPOCH mksquashfs "$tree" "$work/root.squashfs" -comp zstd -noappend -no-progress -quiet \
  -mkfs-time "$SOURCE_DATE_EPOCH" -all-time "$SOURCE_DATE_EPOCH" -no-exports -xattrs >/dev/null
salt=$(sha256sum "$work/root.squashfs" | cut -c1-64)
vuuid=$(printf '%s' "$salt" | cut -c1-32 | sed -E 's/(.{8})(.{4})(.{4})(.{4})(.{12})/\1-\2-\3-\4-\5/')
roothash=$(veritysetup format "$work/root.squashfs" "$work/root.verity" --salt="$salt" --uuid="$vuuid" |
  awk '/^Root hash:/{print $3}')
[[ $roothash =~ ^[0-9a-f]{64}$ ]] || { echo "build.sh: veritysetup gave no root hash" >&2; exit 1; }
echo "$roothash" >"$out/roothash"

# 4. Unified kernel image: the EFI stub with kernel, initramfs and the
# command line (holding the root hash) in one signed-able file.
grep -v '^\s*#' "$here/cmdline.txt" | grep -v '^\s*$' | sed "s/@ROOTHASH@/$roothash/" | paste -sd' ' - >"$work/cmdline"
cp "$work/cmdline" "$out/cmdline"
printf 'NAME="Airlock appliance"\nID=airlock\nVERSION_ID=%s\nPRETTY_NAME="Airlock appliance (%s)"\n' \
  "$SOURCE_DATE_EPOCH" "$(cat "$work/kernel-version")" >"$work/os-release"
stub=/usr/lib/systemd/boot/efi/linuxx64.efi.stub
objcopy \
  --add-section .osrel="$work/os-release" --change-section-vma .osrel=0x20000 \
  --add-section .cmdline="$work/cmdline" --change-section-vma .cmdline=0x30000 \
  --add-section .linux="$work/vmlinuz" --change-section-vma .linux=0x2000000 \
  --add-section .initrd="$work/initrd.img" --change-section-vma .initrd=0x3000000 \
  "$stub" "$work/airlock.efi"
# objcopy stamps the PE header with the time of the build: put
# SOURCE_DATE_EPOCH there instead, and recompute the PE checksum.
python3 - "$work/airlock.efi" "$SOURCE_DATE_EPOCH" <<'PY'
import struct, sys
path, epoch = sys.argv[1], int(sys.argv[2])
b = bytearray(open(path, "rb").read())
pe = struct.unpack_from("<I", b, 0x3C)[0]
if b[pe:pe + 4] != b"PE\0\0":
    sys.exit("build.sh: the kernel image is not a PE file")
struct.pack_into("<I", b, pe + 8, epoch & 0xFFFFFFFF)  # COFF TimeDateStamp
ck = pe + 24 + 64  # optional header CheckSum
struct.pack_into("<I", b, ck, 0)
data = bytes(b) + b"\0" * (len(b) % 2)
s = 0
for (w,) in struct.iter_unpack("<H", data):
    s += w
    s = (s & 0xFFFF) + (s >> 16)
s = (s & 0xFFFF) + (s >> 16)
struct.pack_into("<I", b, ck, (s + len(b)) & 0xFFFFFFFF)
open(path, "wb").write(b)
PY

# 5. EFI system partition (FAT, made in user space, fixed volume id).
mib() { echo $(( ($1 + 1048575) / 1048576 )); }
esp_mib=$(( $(mib "$(stat -c %s "$work/airlock.efi")") + 8 ))
((esp_mib >= 40)) || esp_mib=40
rm -f "$work/esp.img"
mkfs.vfat -F 32 -n AIRLOCK -i 41524c4b --invariant -C "$work/esp.img" $((esp_mib * 1024)) >/dev/null
mkdir -p "$work/esp/EFI/BOOT"
cp "$work/airlock.efi" "$work/esp/EFI/BOOT/BOOTX64.EFI"
find "$work/esp" -exec touch -h -d "@$SOURCE_DATE_EPOCH" {} +
faketime -f "$(date -u -d "@$SOURCE_DATE_EPOCH" '+%Y-%m-%d %H:%M:%S')" \
  env MTOOLS_SKIP_CHECK=1 mcopy -s -m -i "$work/esp.img" "$work/esp/EFI" ::/

# 6. State partition: ext4 owned by the appliance user, fixed UUID, hash
# seed and timestamps.
state_mib=64
rm -f "$work/state.img"
E2FSPROGS_FAKE_TIME=$SOURCE_DATE_EPOCH mkfs.ext4 -q -F -L airlock-state \
  -U 4149524c-4f43-4b00-0000-000000000005 \
  -E root_owner=900:900,hash_seed=4149524c-4f43-4b00-0000-000000000006,lazy_itable_init=0,lazy_journal_init=0 \
  -O ^metadata_csum_seed "$work/state.img" "${state_mib}M"

# 7. The GPT disk with fixed GUIDs.
root_mib=$(mib "$(stat -c %s "$work/root.squashfs")")
verity_mib=$(mib "$(stat -c %s "$work/root.verity")")
total_mib=$((1 + esp_mib + root_mib + verity_mib + state_mib + 1))
img="$out/airlock.img"
rm -f "$img"
truncate -s "${total_mib}M" "$img"
sfdisk --quiet "$img" <<SFDISK
label: gpt
label-id: 4149524C-4F43-4B00-0000-000000000000
first-lba: 2048
start=1MiB, size=${esp_mib}MiB, type=C12A7328-F81F-11D2-BA4B-00A0C93EC93B, uuid=4149524C-4F43-4B00-0000-000000000001, name=airlock-esp
size=${root_mib}MiB, type=4F68BCE3-E8CD-4DB1-96E7-FBCAF984B709, uuid=4149524C-4F43-4B00-0000-000000000002, name=airlock-root
size=${verity_mib}MiB, type=2C7357ED-EBD2-46D9-AEC1-23D437EC2BF5, uuid=4149524C-4F43-4B00-0000-000000000003, name=airlock-verity
size=${state_mib}MiB, type=0FC63DAF-8483-4772-8E79-3D69D8477DE4, uuid=4149524C-4F43-4B00-0000-000000000004, name=airlock-state
SFDISK
off=1
for part in esp.img:$esp_mib root.squashfs:$root_mib root.verity:$verity_mib state.img:$state_mib; do
  dd if="$work/${part%%:*}" of="$img" bs=1M seek="$off" conv=notrunc status=none
  off=$((off + ${part##*:}))
done

(cd "$out" && sha256sum airlock.img >airlock.img.sha256)
end=$(date +%s)
size=$(stat -c %s "$img")
echo "manifest ($(wc -l <"$out/manifest.txt") packages, $out/manifest.txt):"
cat "$out/manifest.txt"
echo "root hash: $roothash"
echo "image: $img, $size bytes ($((size / 1048576)) MiB), built in $((end - start)) s"
echo "image sha256: $(cut -d' ' -f1 "$out/airlock.img.sha256")"
