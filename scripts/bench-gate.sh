#!/usr/bin/env bash
# Compares the registry gate's verification of a 2-of-2 submission for the
# tuf-js 1.0.0 tarball (TUFReleaser.Verify, the code the submit handler
# runs) against the signature checks alone: the same two ECDSA P-256
# signature verifications over the request's canonical bytes and nothing
# else. "warm" is a running gate (the stored request, root chain and
# delegator were parsed and verified before); "cold" empties those caches
# each time; "restarted" empties them too, with the delegation kept in the
# gate's SQLite store by an earlier verification (a restarted gate, or
# another replica). Also shows the cost of a whole approval (verification, new
# role, snapshot, timestamp and the client check of the new repository).
# Prints ns/op and the ratios. For publishes per second through the gate
# see scripts/bench-gate-publish.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
export GOTOOLCHAIN=local
out=$(go test -run '^$' -bench 'SubmissionVerify|SignatureChecksOnly|Release$' -benchtime "${BENCHTIME:-2s}" ./registry/)
echo "$out" | grep '^Benchmark'
echo "$out" | awk '
  /^BenchmarkSubmissionVerify-/ {v=$3}
  /^BenchmarkSubmissionVerifyCold/ {c=$3}
  /^BenchmarkSubmissionVerifyRestarted/ {k=$3}
  /^BenchmarkSignatureChecksOnly/ {s=$3}
  /^BenchmarkRelease/ {r=$3}
  END {
    printf "verification (warm) / signature checks: %.2fx\n", v/s
    printf "verification (cold) / signature checks: %.2fx\n", c/s
    printf "verification (restarted, delegation kept in the store) / signature checks: %.2fx\n", k/s
    printf "whole approval / signature checks: %.1fx\n", r/s
  }'
