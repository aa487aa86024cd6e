#!/usr/bin/env bash
# Installs and starts what the tests need on a fresh Debian machine: Django for
# /usr/bin/python3, PostgreSQL (started, with a password login for the tests), Chromium, and
# systemd's tools (to verify the units in deploy/).
# Safe to run again: it only does what is missing.
set -euo pipefail

need=()
/usr/bin/python3 -c 'import django' 2>/dev/null || need+=(python3-django)
# Django's PostgreSQL driver: the read-only mode tests run the example project on PostgreSQL.
/usr/bin/python3 -c 'import psycopg2' 2>/dev/null || need+=(python3-psycopg2)
command -v pg_ctlcluster >/dev/null 2>&1 && ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1 || need+=(postgresql)
command -v chromium >/dev/null 2>&1 || need+=(chromium)
# systemd-analyze checks the systemd units in deploy/ (nothing is started with it).
command -v systemd-analyze >/dev/null 2>&1 || need+=(systemd)
# tmux gives the audited-shell tests a real terminal to drive the CLI's `shell` in.
command -v tmux >/dev/null 2>&1 || need+=(tmux)
if [ ${#need[@]} -gt 0 ]; then
  echo "setup: installing ${need[*]}"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}" >/dev/null
fi

# PostgreSQL: start the first cluster and make a role the tests log in with over TCP.
PGVER=$(ls /usr/lib/postgresql | sort -n | tail -n 1)
if ! pg_lsclusters -h | grep -q online; then
  pg_lsclusters -h | grep -q "^$PGVER main" || pg_createcluster "$PGVER" main >/dev/null
  pg_ctlcluster "$PGVER" main start
fi
for _ in $(seq 1 30); do
  su postgres -c "psql -Atqc 'select 1'" >/dev/null 2>&1 && break
  sleep 1
done
su postgres -c "psql -v ON_ERROR_STOP=1 -q" <<'SQL'
DO $$
BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'djangocommand') THEN
    CREATE ROLE djangocommand LOGIN CREATEDB PASSWORD 'djangocommand';
  END IF;
END $$;
SQL
echo "setup: PostgreSQL $PGVER ready (role djangocommand on 127.0.0.1:5432)"
