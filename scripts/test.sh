#!/usr/bin/env bash
# The test command (README and CI): installs what the tests need on a fresh Debian machine,
# then builds and runs every test against real SQLite, PostgreSQL, Django and processes.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup-system.sh
npm ci --no-audit --no-fund
npm test
