#!/usr/bin/env bash
# Runs the demo ceremony on embedded defaults. The only build requirement
# beyond Go is the PC/SC client library headers (YubiKey support).
set -euo pipefail
cd "$(dirname "$0")/.."
export GOTOOLCHAIN=local
if ! pkg-config --exists libpcsclite 2>/dev/null; then
  sudo_cmd=()
  [[ $(id -u) -eq 0 ]] || sudo_cmd=(sudo)
  echo "installing libpcsclite-dev (needed to build YubiKey support)" >&2
  "${sudo_cmd[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends libpcsclite-dev pkg-config >/dev/null
fi
exec go run ./cmd/airlock demo "$@"
