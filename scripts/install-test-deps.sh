#!/usr/bin/env bash
# Installs everything Airlock's tests need on a fresh Debian bookworm machine:
# PC/SC (pcscd + vpcd) for the YubiKey PIV emulator, swtpm for TPM tests,
# zbar and qrencode for QR interoperability, FAT/ext4/ISO tools for USB images,
# tmux for terminal UI tests, and the Node packages of the interop peers.
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(
  build-essential pkg-config git ca-certificates
  pcscd libpcsclite-dev vsmartcard-vpcd
  swtpm swtpm-tools
  libzbar-dev zbar-tools qrencode
  dosfstools exfatprogs mtools e2fsprogs xorriso fdisk
  tmux
  python3-pytest faketime
  postgresql
)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  sudo_cmd=()
  [[ $(id -u) -eq 0 ]] || sudo_cmd=(sudo)
  echo "installing: ${missing[*]}" >&2
  "${sudo_cmd[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# Node and npm for the interop peers. Debian bookworm ships Node 18 with
# npm 9, which runs tuf-js; a newer npm (>= 11) would need Node >= 20.17.
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  sudo_cmd=()
  [[ $(id -u) -eq 0 ]] || sudo_cmd=(sudo)
  "${sudo_cmd[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends nodejs npm >/dev/null
fi

# Node peers used by the interoperability tests (tuf-js, @ngraveio/bc-ur).
if [[ -f test/interop/package.json ]]; then
  (cd test/interop && npm ci --no-audit --no-fund --loglevel=error)
fi


# The registry gate's end-to-end test runs npm stage (npm >= 11.15, which
# needs Node >= 20.17) against Verdaccio 6.8.0 pinned in test/registry.
npm_version=$(npm --version)
if [[ $(printf '%s\n' 11.15.0 "$npm_version" | sort -V | head -n1) != 11.15.0 ]]; then
  sudo_cmd=()
  [[ $(id -u) -eq 0 ]] || sudo_cmd=(sudo)
  "${sudo_cmd[@]}" npm install -g --no-audit --no-fund --loglevel=error npm@11.19.1
fi
if [[ -f test/registry/package.json ]]; then
  (cd test/registry && npm ci --no-audit --no-fund --loglevel=error)
fi
