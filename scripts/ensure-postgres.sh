#!/usr/bin/env bash
# Make sure a PostgreSQL server answers on 127.0.0.1:5432 and lets user postgres (password postgres) in:
# install and start it from Debian's packages if needed. The PostgreSQL store tests use it.
set -euo pipefail

port_open() { (exec 3<>/dev/tcp/127.0.0.1/5432) 2>/dev/null; }
SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"

if ! port_open; then
  if ! command -v pg_ctlcluster >/dev/null 2>&1; then
    echo "PostgreSQL is not installed: installing it from Debian's packages" >&2
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq postgresql >/dev/null
  fi
  echo "starting PostgreSQL" >&2
  version=$(ls /usr/lib/postgresql | sort -V | tail -1)
  if ! pg_lsclusters -h | grep -q "^$version main"; then
    $SUDO pg_createcluster "$version" main >/dev/null
  fi
  $SUDO pg_ctlcluster "$version" main start || true
  for _ in $(seq 1 60); do
    port_open && break
    sleep 1
  done
  port_open || { echo "PostgreSQL did not come up on 127.0.0.1:5432" >&2; exit 1; }
fi
# The tests sign in as postgres/postgres over TCP (a trust rule, where there is one, ignores the password).
as_postgres() { if [ "$(id -u)" -eq 0 ]; then su postgres -c "$1"; else sudo -u postgres sh -c "$1"; fi; }
if ! PGPASSWORD=postgres psql -h 127.0.0.1 -U postgres -d postgres -Atc "SELECT 1" >/dev/null 2>&1; then
  as_postgres "psql -d postgres -qc \"ALTER USER postgres PASSWORD 'postgres'\"" >/dev/null
  PGPASSWORD=postgres psql -h 127.0.0.1 -U postgres -d postgres -Atc "SELECT 1" >/dev/null \
    || { echo "cannot sign in to PostgreSQL on 127.0.0.1:5432 as postgres/postgres" >&2; exit 1; }
fi
