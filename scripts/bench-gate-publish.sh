#!/usr/bin/env bash
# Publishes per second through the registry gate against publishing to
# Verdaccio directly, same machine, same run (TestGatePublishRate).
#
# What is timed:
#   gated  - N concurrent submissions of signature responses made
#            beforehand, each until its version is published upstream:
#            the gate verifies the responses, the writer puts the
#            approved versions into the TUF repository (role, snapshot,
#            timestamp, checked by the client) and forwards each tarball
#            to Verdaccio.
#   direct - N concurrent npm publishes of other packages with the same
#            tarballs straight to Verdaccio.
# Not timed: staging the N versions, fetching their bundles and signing
# them (the appliance's part); the time it took is printed too.
#
# N=40 by default (PUBLISHES=N); STORE=postgres runs the gate on
# PostgreSQL instead of SQLite. Needs scripts/install-test-deps.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
export GOTOOLCHAIN=local
out=$(AIRLOCK_PUBLISH_N="${PUBLISHES:-40}" AIRLOCK_PUBLISH_STORE="${STORE:-sqlite}" \
  go test -count=1 -run '^TestGatePublishRate$' -v ./test/registry/ 2>&1) || { echo "$out"; exit 1; }
echo "$out" | grep -E 'load_test.go:[0-9]+: (store|gated|direct)' | sed -E 's/^ *load_test.go:[0-9]+: //'
