#!/usr/bin/env bash
# Runs the demo ceremony on embedded defaults: two demo key holders review
# and sign a real npm release (sigstore 1.3.0 -> 2.0.0, with its real
# Sigstore provenance) in the appliance's terminal UI.
#   scripts/demo.sh          the terminal UI ceremony (airlock-appliance --demo)
#   scripts/demo.sh --cli    the online side end to end (airlock demo), no UI
# The only build requirements beyond Go are the PC/SC and zbar headers.
set -euo pipefail
cd "$(dirname "$0")/.."
export GOTOOLCHAIN=local
missing=()
pkg-config --exists libpcsclite 2>/dev/null || missing+=(libpcsclite-dev)
pkg-config --exists zbar 2>/dev/null || missing+=(libzbar-dev)
command -v pkg-config >/dev/null || missing+=(pkg-config)
if ((${#missing[@]})); then
  sudo_cmd=()
  [[ $(id -u) -eq 0 ]] || sudo_cmd=(sudo)
  echo "installing build requirements: ${missing[*]}" >&2
  "${sudo_cmd[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
if [[ "${1:-}" == "--cli" ]]; then
  shift
  exec go run ./cmd/airlock demo "$@"
fi
# The binary is built into a temporary folder that is removed on exit.
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
go build -o "$tmp/airlock-appliance" ./cmd/airlock-appliance
"$tmp/airlock-appliance" --demo "$@"
