#!/usr/bin/env bash
# One-time set-up on a fresh machine: npm dependencies (Bun comes from npm),
# a redis-server for the tests, and Chromium for the browser test.
set -euo pipefail
cd "$(dirname "$0")/.."

# `npm install` rather than `npm ci`: the lock file written on Linux lists only the
# platform packages this registry served (e.g. Biome's linux builds), and `npm ci`
# refuses such a lock as "out of sync". `npm install` honours the locked versions.
npm install --no-audit --no-fund

need=()
command -v redis-server >/dev/null 2>&1 || need+=(redis-server)
if [ "${SKIP_BROWSER:-}" != "1" ] && ! command -v chromium >/dev/null 2>&1; then need+=(chromium); fi
if [ ${#need[@]} -gt 0 ]; then
  echo "setup: installing ${need[*]} with apt-get"
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}" >/dev/null
fi
echo "setup: bun $(./node_modules/.bin/bun --version), $(redis-server --version | cut -d' ' -f1-3)"
