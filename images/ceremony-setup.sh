#!/usr/bin/env bash
# Prepares, on the host, what the boot test's ceremony needs, with the
# project's own command-line tools and real keys:
#
#   - a software TPM state (swtpm) in which two holders, alice and bob, each
#     enrol one TPM key with a PIN (airlock key enroll --kind tpm), and the
#     TPM's attestation key (airlock key attestation-key); the guest boots
#     with this TPM, so the keys it signs with never leave it;
#   - a TUF repository (airlock init, development file keys for root,
#     targets and the online role) whose targets delegate the role "release"
#     2-of-2 to the two TPM keys (airlock delegate);
#   - a release bundle for release/hello-1.0.0.txt (airlock bundle create);
#   - the appliance state (airlock-appliance init-state): the pinned root, a
#     policy asking both holders with attested TPM keys that need a PIN, the
#     pinned attestation key, and the two key URIs (keys.txt).
#
#   images/ceremony-setup.sh DIR
#
# DIR gets: bin/ (airlock and airlock-appliance for the host), tpm/ (the
# swtpm state), repo/, bundle/, state/ (owned by the appliance user 900),
# artifact/, fingerprint (the request fingerprint bundle create printed) and
# pins (NAME=PIN lines). Nothing here runs in the guest.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)
dir=${1:?usage: images/ceremony-setup.sh DIR}
mkdir -p "$dir"
dir=$(cd "$dir" && pwd)
export GOTOOLCHAIN=local LC_ALL=C

echo "ceremony-setup: building airlock and airlock-appliance for the host" >&2
(cd "$repo" && go build -trimpath -o "$dir/bin/" ./cmd/airlock ./cmd/airlock-appliance)
airlock=$dir/bin/airlock
appliance=$dir/bin/airlock-appliance
log=$dir/setup.log
quiet() { # run a step, its output in setup.log; on failure show it
  "$@" >>"$log" 2>&1 || { echo "ceremony-setup: failed: $*" >&2; tail -20 "$log" >&2; exit 1; }
}

# The holders' TPM keys, in a swtpm the guest boots with later. The server
# is stopped by its process id.
mkdir -p "$dir/tpm"
sock=$dir/swtpm-setup.sock
swtpm socket --tpm2 --tpmstate dir="$dir/tpm" --server type=unixio,path="$sock" \
  --ctrl type=unixio,path="$dir/swtpm-setup.ctrl" --flags not-need-init,startup-clear \
  --pid file="$dir/swtpm-setup.pid" --log file="$dir/swtpm-setup.log" --daemon
stop_swtpm() {
  local pid
  pid=$(cat "$dir/swtpm-setup.pid" 2>/dev/null) || return 0
  # TPM2_Shutdown(SU_CLEAR) first: a TPM stopped without it counts the
  # PIN-authorised use of a key (the attestation at enrolment) as a
  # dictionary-attack failure, and a few of those lock the keys out.
  python3 - "$sock" <<'PY' || echo "ceremony-setup: TPM2_Shutdown failed; the TPM may count a dictionary-attack failure" >&2
import socket, sys
s = socket.socket(socket.AF_UNIX)
s.settimeout(10)
s.connect(sys.argv[1])
s.sendall(bytes.fromhex("80010000000c000001450000"))  # TPM2_Shutdown(SU_CLEAR)
r = s.recv(64)
sys.exit(0 if len(r) >= 10 and r[6:10] == bytes(4) else 1)
PY
  kill "$pid" 2>/dev/null || true
  for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  rm -f "$dir/swtpm-setup.pid"
}
trap stop_swtpm EXIT
: >"$dir/pins"
chmod 600 "$dir/pins"
handle=$((0x81000010))
for holder in alice bob; do
  pin=$(od -An -N4 -tu4 /dev/urandom | tr -dc 0-9)
  pin=${pin:0:8}
  while ((${#pin} < 8)); do pin="${pin}7"; done
  echo "$holder=$pin" >>"$dir/pins"
  (umask 077 && echo "$pin" >"$dir/$holder.pin")
  quiet "$airlock" key enroll --kind tpm --tpm-device "unix:$sock" --handle "$(printf '0x%08x' "$handle")" \
    --holder "$holder" --pin-file "$dir/$holder.pin" --out "$dir/$holder.json"
  rm -f "$dir/$holder.pin"
  echo "tpm:handle=$(printf '0x%08x' "$handle")" >>"$dir/key-uris"
  handle=$((handle + 1))
done
quiet "$airlock" key attestation-key --tpm "unix:$sock" --out "$dir/tpm-ak.pem"
stop_swtpm

# The repository and the bundle, as the online side makes them.
for k in root targets online; do
  quiet "$airlock" key generate --dev --holder "$k" --out "$dir/$k.pem"
done
quiet "$airlock" init --repo "$dir/repo" --root-key "file:$dir/root.pem" --root-threshold 1 \
  --targets-key "file:$dir/targets.pem" --online-key "file:$dir/online.pem"
quiet "$airlock" delegate --repo "$dir/repo" --sign-key "file:$dir/targets.pem" --role release --paths 'release/*' \
  --key "$dir/alice.json" --key "$dir/bob.json" --threshold 2
mkdir -p "$dir/artifact"
echo "hello from the appliance boot test" >"$dir/artifact/hello-1.0.0.txt"
"$airlock" bundle create --repo "$dir/repo" --role release \
  --add "$dir/artifact/hello-1.0.0.txt=release/hello-1.0.0.txt" --out "$dir/bundle" 2>"$dir/bundle-create.log"
fp=$(sed -n 's/^airlock bundle create: request fingerprint: \([a-z ]*\) (.*/\1/p' "$dir/bundle-create.log")
[[ $fp =~ ^[a-z]+( [a-z]+){3}$ ]] || { echo "ceremony-setup: no request fingerprint in:" >&2; cat "$dir/bundle-create.log" >&2; exit 1; }
echo "$fp" >"$dir/fingerprint"

# The appliance state, provisioned on the host.
cat >"$dir/policy.json" <<'EOF'
{
  "airlock_policy": 1,
  "roles": {
    "release": {
      "kinds": ["release"],
      "holders": ["alice", "bob"],
      "min_holders": 2,
      "key_kinds": ["tpm"],
      "attestation": {"require_hardware": true, "require_pin_always": true, "require_touch_always": true}
    }
  }
}
EOF
keys=()
while read -r k; do keys+=(--key "$k"); done <"$dir/key-uris"
quiet "$appliance" init-state --state "$dir/state" --root "$dir/repo/metadata/1.root.json" --policy "$dir/policy.json" \
  --trusted-root "$repo/cmd/airlock-appliance/testdata/trusted_root.json" --tpm-ak "$dir/tpm-ak.pem" "${keys[@]}"
rm -f "$dir/state/.lock"
chown -R 900:900 "$dir/state"
echo "ceremony-setup: two TPM keys (alice, bob), role release 2-of-2, bundle with request fingerprint \"$fp\", state provisioned" >&2
