#!/bin/sh
# Measures the animated-QR transfer: frames shown ÷ fragments under random
# loss for Airlock's encoder and decoder next to the reference JavaScript
# implementation (needs node and test/interop/node_modules), then the
# per-frame encode and decode times. Run from anywhere in the repository.
# UR_OVERHEAD_TRIALS sets the number of trials (default 200; js gets 1/10).
set -eu
cd "$(dirname "$0")/../.."
export GOTOOLCHAIN=local
UR_OVERHEAD_TABLE=1 go test -count=1 -run '^TestOverheadTable$' -v ./transfer/ur/ | grep -v '^=== RUN'
go test -count=1 -run '^$' -bench . -benchtime=2s ./transfer/ur/ ./transfer/qr/
