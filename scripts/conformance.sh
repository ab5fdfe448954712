#!/usr/bin/env bash
# Runs the official TUF client conformance suite (../shared/tuf-conformance)
# against `airlock client` and fails on any failure. Skips with a message
# when the suite folder is absent.
set -euo pipefail
cd "$(dirname "$0")/.."
export GOTOOLCHAIN=local
suite=${TUF_CONFORMANCE:-../shared/tuf-conformance}
if [[ ! -x $suite/run.sh ]]; then
  echo "conformance: $suite/run.sh not found; suite not run" >&2
  exit 0
fi
bin=$(mktemp -d)
trap 'rm -rf "$bin"' EXIT
go build -o "$bin/airlock" ./cmd/airlock
printf '#!/bin/sh\nexec "%s/airlock" client "$@"\n' "$bin" >"$bin/airlock-client"
chmod +x "$bin/airlock-client"
[[ -f scripts/airlock-client.xfails ]] && cp scripts/airlock-client.xfails "$bin/airlock-client.xfails"
"$suite/run.sh" "$bin/airlock-client"
