#!/usr/bin/env bash
# One-time set-up on a fresh machine: npm dependencies (Bun comes from npm),
# a redis-server and redis-cli for the tests (the cluster tests need both), and
# Chromium for the browser test.
set -euo pipefail
cd "$(dirname "$0")/.."

# `npm install` rather than `npm ci`: the lock file written on Linux lists only the
# platform packages this registry served (e.g. Biome's linux builds), and `npm ci`
# refuses such a lock as "out of sync". `npm install` honours the locked versions.
npm install --no-audit --no-fund

wanted=(redis-server=redis-server redis-cli=redis-tools)
[ "${SKIP_BROWSER:-}" = "1" ] || wanted+=(chromium=chromium)
bash scripts/ensure-commands.sh "${wanted[@]}"
export PATH="$PATH:/usr/sbin:/usr/local/sbin"
echo "setup: bun $(./node_modules/.bin/bun --version), $(redis-server --version | cut -d' ' -f1-3)"
