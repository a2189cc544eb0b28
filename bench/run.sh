#!/bin/sh
# Installs the benchmark's own dependencies and runs it (npm run bench).
# Extra arguments go to bench/run.ts, e.g. `npm run bench -- --scales 500,1000`.
set -e
cd "$(dirname "$0")/.."
npm install --prefix bench --no-audit --no-fund --loglevel=error
# 10 000 clients need more than the usual 1 024 open files per process.
ulimit -n 65535 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
BUN=bun
command -v bun >/dev/null 2>&1 || BUN=./node_modules/.bin/bun
exec "$BUN" run bench/run.ts "$@"
