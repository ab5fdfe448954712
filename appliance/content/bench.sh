#!/bin/sh
# bench.sh: time package content's diff of two real releases of a large npm
# package against git diff --no-index --numstat on the same unpacked trees.
# Needs the npm registry, git and /usr/bin/time (Debian package "time").
# content-tgz compares the two .tgz files the way the appliance does
# (CompareArtifacts); content-dirs reads the unpacked trees whole.
# Usage: appliance/content/bench.sh [OLD_VERSION NEW_VERSION]
set -eu
export GOTOOLCHAIN=local
old=${1:-5.3.3}
new=${2:-5.4.5}
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT INT TERM

(cd "$here/../.." && go build -o "$work/benchdiff" ./appliance/content/internal/benchdiff)
cd "$work"
npm pack --silent "typescript@$old" "typescript@$new" >/dev/null
mkdir a b
tar xzf "typescript-$old.tgz" -C a
tar xzf "typescript-$new.tgz" -C b

if [ ! -x /usr/bin/time ]; then
	echo "bench.sh: error: /usr/bin/time is missing; install the Debian package \"time\"" >&2
	exit 1
fi
# run LABEL CMD...: one run; prints "LABEL wall user sys maxrss_kib".
run() {
	label=$1
	shift
	/usr/bin/time -f "$label %e %U %S %M" -o "$work/t" "$@" >"$work/$label.out" 2>"$work/$label.err" || true
	tail -n 1 "$work/t"
}
{
	run git git diff --no-index --no-renames --numstat a/package b/package
	run content-dirs ./benchdiff a/package b/package
	run content-tgz ./benchdiff "typescript-$old.tgz" "typescript-$new.tgz"
} >"$work/results"

echo "typescript $old -> $new, $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "git numstat total:     $(awk '{a+=$1; r+=$2} END {printf "+%d -%d lines, %d files", a, r, NR}' git.out)"
echo "content numstat total: $(awk '{a+=$1; r+=$2} END {printf "+%d -%d lines, %d files", a, r, NR}' content-dirs.out)"
awk '
	{ wall[$1]=$2; cpu[$1]=$3+$4; rss[$1]=$5; order[NR]=$1 }
	END {
		printf "%-13s %8s %8s %12s %10s %10s %10s\n", "run", "wall s", "cpu s", "peak RSS MiB", "wall/git", "cpu/git", "RSS/git"
		for (i = 1; i <= NR; i++) {
			k = order[i]
			printf "%-13s %8.2f %8.2f %12.1f %9.2fx %9.2fx %9.2fx\n", k, wall[k], cpu[k], rss[k]/1024, wall[k]/wall["git"], cpu[k]/cpu["git"], rss[k]/rss["git"]
		}
	}' "$work/results"
