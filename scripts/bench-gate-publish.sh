#!/usr/bin/env bash
# Publishes per second through the registry gate against publishing to
# Verdaccio directly, same machine, same run, same N, all N at once in each
# phase (TestGatePublishRate).
#
# What is timed (each phase from its first request to its last answer):
#   stage   - N npm publish documents POSTed to the gate (npm stage
#             publish): whoami, the upstream check, the stored upload.
#   bundle  - N bundles fetched from the gate (airlock gate bundle).
#   (signing the N bundles follows, untimed: the appliance's part)
#   submit  - N submissions of those signature responses, each until its
#             version is published upstream: verification, the writer's
#             role, snapshot and timestamp (checked by the client) and the
#             tarball forwarded to the gate's Verdaccio.
#   direct  - the same N publish documents PUT to a second, fresh
#             Verdaccio.
# Printed ratios: (stage + bundle + submit) against direct, the whole
# flow a publisher sees without the signing; and submit alone against
# direct.
#
# N=40 by default (PUBLISHES=N); STORE=postgres runs the gate on
# PostgreSQL instead of SQLite. Needs scripts/install-test-deps.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
export GOTOOLCHAIN=local
out=$(AIRLOCK_PUBLISH_N="${PUBLISHES:-40}" AIRLOCK_PUBLISH_STORE="${STORE:-sqlite}" \
  go test -count=1 -run '^TestGatePublishRate$' -v ./test/registry/ 2>&1) || { echo "$out"; exit 1; }
echo "$out" | grep -E 'load_test.go:[0-9]+: (store|phases|gated|direct|end to end|submission only)' | sed -E 's/^ *load_test.go:[0-9]+: //'
