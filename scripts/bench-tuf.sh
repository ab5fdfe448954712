#!/usr/bin/env bash
# Measures Airlock's strict verification of a 2-of-3 role with 1, 1,000 and
# 100,000 targets against go-tuf's FromBytes + VerifyDelegate on the same
# bytes, and against the signature checks alone, in one run, and prints the
# ratios (goal: Airlock/go-tuf <= 1.0; Airlock/signatures <= 2.0 for a
# single release).
set -euo pipefail
cd "$(dirname "$0")/.."
export GOTOOLCHAIN=local
out=$(go test -run '^$' -bench 'Benchmark(VerifyAirlock|VerifyGoTUF|SignatureChecks)$' -benchtime "${BENCHTIME:-2s}" -count 1 ./tuf)
echo "$out" | grep -E '^Benchmark' >&2
echo "$out" | awk '
/^Benchmark/ {
  split($1, a, "/"); name=a[1]; sub(/^Benchmark/, "", name); sub(/-[0-9]+$/, "", a[2])
  for (i=2; i<=NF; i++) if ($(i+1)=="ns/op") ns[name, a[2]]=$i
  sizes[a[2]]=1
}
END {
  printf "%-16s %14s %14s %14s %10s %10s\n", "size", "airlock ms", "go-tuf ms", "sigs only ms", "vs go-tuf", "vs sigs"
  n=split("targets=1 targets=1000 targets=100000", order, " ")
  for (j=1; j<=n; j++) { s=order[j]
    printf "%-16s %14.3f %14.3f %14.3f %9.2fx %9.2fx\n", s, ns["VerifyAirlock",s]/1e6, ns["VerifyGoTUF",s]/1e6, ns["SignatureChecks",s]/1e6, ns["VerifyAirlock",s]/ns["VerifyGoTUF",s], ns["VerifyAirlock",s]/ns["SignatureChecks",s]
  }
}'
