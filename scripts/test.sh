#!/usr/bin/env bash
# Installs what the tests need (PC/SC with the virtual reader, swtpm, zbar,
# qrencode, FAT/ext4/ISO tools, tmux, the Node interop peers) and runs the
# whole test suite: unit and table tests, fuzz seeds, the crash-injection
# test, PIV through pcscd, TPM through the simulator and swtpm, and the
# tuf-js / go-tuf / bc-ur / zbar interoperability tests.
set -euo pipefail
cd "$(dirname "$0")/.."
export GOTOOLCHAIN=local
scripts/install-test-deps.sh
go vet ./...
go test -count=1 -timeout 40m ./... "$@"
scripts/conformance.sh
