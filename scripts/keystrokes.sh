#!/usr/bin/env bash
# Prints the keystrokes of the routine two-holder release on the appliance's
# terminal ui: confirm the date, two holders approve, leave. It runs the
# ceremony on an 80x25 tcell simulation screen (demo keys, so no PINs or
# touches) and prints the count the test measured; the goal is at most 15.
#   scripts/keystrokes.sh
set -euo pipefail
cd "$(dirname "$0")/.."
export GOTOOLCHAIN=local
out=$(go test -count=1 -run '^TestTUIRoutineReleaseKeystrokes$' -v ./cmd/airlock-appliance 2>&1) || {
  printf '%s\n' "$out" >&2
  exit 1
}
line=$(printf '%s\n' "$out" | grep -o 'routine two-holder release: [0-9]* keystrokes.*' | head -1)
if [[ -z "$line" ]]; then
  printf '%s\n' "$out" >&2
  echo "keystrokes.sh: the test printed no count" >&2
  exit 1
fi
echo "$line"
