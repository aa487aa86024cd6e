#!/usr/bin/env bash
# Installs, builds and starts the server in the foreground (Ctrl-C stops it).
# Data lives in ./djangocommand-data unless DJANGOCOMMAND_DATA_DIR or DATABASE_URL says otherwise.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -d node_modules ] || npm ci --no-audit --no-fund
npm run build --silent
exec node dist/src/cli/main.js server "$@"
