#!/usr/bin/env bash
# Compares the registry gate's verification of a 2-of-2 submission for the
# tuf-js 1.0.0 tarball against the signature checks alone, and shows the
# cost of a whole approval (verification, new role, snapshot, timestamp and
# the client check of the new repository). Prints ns/op and the ratios.
set -euo pipefail
cd "$(dirname "$0")/.."
export GOTOOLCHAIN=local
out=$(go test -run '^$' -bench 'SubmissionVerify|SignatureChecksOnly|Release$' -benchtime "${BENCHTIME:-2s}" ./registry/)
echo "$out" | grep '^Benchmark'
echo "$out" | awk '
  /^BenchmarkSubmissionVerify/ {v=$3}
  /^BenchmarkSignatureChecksOnly/ {s=$3}
  /^BenchmarkRelease/ {r=$3}
  END {
    printf "verification / signature checks: %.2fx\n", v/s
    printf "whole approval / signature checks: %.1fx\n", r/s
  }'
