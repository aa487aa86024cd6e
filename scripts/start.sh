#!/usr/bin/env bash
# Quick start: installs and builds djangocommand, then starts the server together with the
# example Django project and its runner, connected. Ctrl-C stops everything.
# Data (SQLite database, secrets in 0600 files) lives in ./djangocommand-data.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
DATA=${DJANGOCOMMAND_DATA_DIR:-$ROOT/djangocommand-data}
PORT=${DJANGOCOMMAND_PORT:-8600}
URL="http://127.0.0.1:$PORT"
PY=/usr/bin/python3
CLI="node $ROOT/dist/src/cli/main.js"

if ! $PY -c 'import django' 2>/dev/null; then
  echo "start: installing Debian's python3-django for the example project"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq python3-django >/dev/null
fi
[ -d node_modules ] || npm ci --no-audit --no-fund
npm run build --silent
mkdir -p "$DATA" && chmod 700 "$DATA"

$CLI server --data-dir "$DATA" --port "$PORT" &
SERVER=$!
RUNNER_STATE="$DATA/example-runner"
cleanup() {
  $CLI stop --state-dir "$RUNNER_STATE" --project-dir "$ROOT/example" --python $PY >/dev/null 2>&1 || true
  kill "$SERVER" 2>/dev/null || true
  wait "$SERVER" 2>/dev/null || true
}
trap cleanup EXIT INT TERM
for _ in $(seq 1 100); do curl -fs "$URL/api/v1/health" >/dev/null 2>&1 && break; sleep 0.2; done

# First start: a project for the example, its runner key and a CLI token, kept in 0600 files.
umask 077
if [ ! -s "$DATA/example-runner-key" ]; then
  $CLI admin create-project example --data-dir "$DATA" --json | node -pe 'JSON.parse(require("fs").readFileSync(0)).key' > "$DATA/example-runner-key"
  $CLI admin create-token --data-dir "$DATA" --json | node -pe 'JSON.parse(require("fs").readFileSync(0)).token' > "$DATA/cli-token"
fi

export EXAMPLE_DB_PATH="$DATA/example.sqlite3"
(cd example && $PY manage.py migrate -v 0)
DJANGOCOMMAND_API_KEY=$(cat "$DATA/example-runner-key") DJANGOCOMMAND_SERVER_URL="$URL" \
  $CLI start -d --project-dir "$ROOT/example" --python $PY --state-dir "$RUNNER_STATE"

cat <<MSG

The example Django project's runner is connected. Try, in another terminal:
  export DJANGOCOMMAND_URL=$URL DJANGOCOMMAND_TOKEN=\$(cat $DATA/cli-token)
  $CLI run check
  $CLI run slow --steps 20 --delay 0.2
  $CLI executions
Ctrl-C here stops the runner and the server.
MSG
wait "$SERVER"
