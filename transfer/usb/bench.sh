#!/bin/sh
# Import a 1 GiB bundle from a FAT32 image in user space and compare with
# sha256sum of the same bytes. Prints the throughput of each, the ratio
# (goal: import >= 0.9x sha256sum, though the import also computes SHA-512
# and copies every byte) and the import's peak RSS (goal: <= 200 MiB).
#
# Usage: transfer/usb/bench.sh [SIZE_MIB]   (default 1024)
# Needs dosfstools and mtools; about 2.3 GiB of free space in $TMPDIR.
set -eu
size_mib=${1:-1024}
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
export GOTOOLCHAIN=local
PATH=$PATH:/usr/sbin:/sbin

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT INT TERM

echo "building benchimport"
(cd "$repo" && go build -o "$tmp/benchimport" ./transfer/usb/internal/benchimport)

echo "creating a ${size_mib} MiB bundle"
mkdir -p "$tmp/src/artifacts" "$tmp/src/provenance"
printf '{"bench":true}\n' > "$tmp/src/request.json"
head -c $((size_mib * 1024 * 1024)) /dev/urandom > "$tmp/src/artifacts/release.tgz"
printf '{}\n' > "$tmp/src/provenance/release.sigstore.json"

echo "creating the FAT32 image"
img_mib=$((size_mib + size_mib / 16 + 64))
truncate -s "${img_mib}M" "$tmp/stick.img"
mkfs.vfat -F 32 "$tmp/stick.img" > /dev/null
MTOOLS_SKIP_CHECK=1 mcopy -s -i "$tmp/stick.img" "$tmp/src/request.json" "$tmp/src/artifacts" "$tmp/src/provenance" ::

# Warm the page cache for both readers, so both measure CPU, not the disk.
cat "$tmp/stick.img" > /dev/null
cat "$tmp/src/artifacts/release.tgz" > /dev/null

echo "sha256sum of the same bytes"
t0=$(date +%s.%N)
sha256sum "$tmp/src/artifacts/release.tgz" > /dev/null
t1=$(date +%s.%N)
sha_s=$(echo "$t1 - $t0" | bc -l 2>/dev/null || awk "BEGIN{print $t1 - $t0}")

echo "import (user-space FAT32, copy, SHA-256 + SHA-512)"
if [ -x /usr/bin/time ]; then
	/usr/bin/time -v "$tmp/benchimport" -image "$tmp/stick.img" -work "$tmp/work" > "$tmp/out" 2> "$tmp/time"
	rss_kib=$(awk -F': ' '/Maximum resident set size/ {print $2}' "$tmp/time")
else
	"$tmp/benchimport" -image "$tmp/stick.img" -work "$tmp/work" > "$tmp/out"
	rss_kib=$(sed 's/.*maxrss_kib=\([0-9]*\).*/\1/' "$tmp/out")
fi
cat "$tmp/out"
imp_s=$(sed 's/.*seconds=\([0-9.]*\).*/\1/' "$tmp/out")
bytes=$((size_mib * 1024 * 1024))

awk -v b="$bytes" -v s="$sha_s" -v i="$imp_s" -v r="$rss_kib" 'BEGIN {
	sha = b / s / 1e6; imp = b / i / 1e6
	printf "sha256sum: %.1f MB/s (%.2f s)\n", sha, s
	printf "import:    %.1f MB/s (%.2f s)\n", imp, i
	printf "ratio:     %.2fx sha256sum (goal >= 0.90)\n", imp / sha
	printf "peak RSS:  %.1f MiB (goal <= 200)\n", r / 1024
}'
