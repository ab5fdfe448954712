#!/usr/bin/env bash
# fuzz-target.sh PKG TARGET: fuzz one target for FUZZTIME (default 20s) with
# FUZZPAR workers, as scripts/test.sh does for each target.
#
# Go 1.26's fuzzing coordinator can fail a target with a bare "context
# deadline exceeded" when -fuzztime ends while a worker is still busy
# (golang/go#75804, fixed in Go 1.27): no input failed and none is written.
# Such a run is retried once; a second bare deadline fails, because a
# genuinely hanging input looks the same and hangs again. Any run that wrote
# a failing input fails at once, and the input stays in testdata/fuzz/ as a
# seed. New coverage is minimized for at most 5s so a slow minimization does
# not hold a worker through the end of the budget.
set -uo pipefail
pkg=$1 target=$2
fuzztime=${FUZZTIME:-20s}
fuzzpar=${FUZZPAR:-1}
for try in 1 2; do
  out=$(go test -run '^$' -fuzz "^$target\$" -fuzztime "$fuzztime" \
    -fuzzminimizetime 5s -parallel "$fuzzpar" "$pkg" 2>&1)
  rc=$?
  printf 'fuzz %s %s (%s, try %d): exit %d\n%s\n' "$pkg" "$target" "$fuzztime" "$try" "$rc" "$out" >&2
  if ((rc == 0)); then
    exit 0
  fi
  if grep -q 'Failing input written to' <<<"$out" ||
    ! grep -q '^    context deadline exceeded$' <<<"$out"; then
    exit "$rc"
  fi
  echo "fuzz $pkg $target: the coordinator stopped on its own deadline with no failing input; trying once more" >&2
done
exit "$rc"
