#!/usr/bin/env bash
# Throwaway PostgreSQL for the test suite, listening on 127.0.0.1 only.
#
#   scripts/postgres.sh [start]   ensure the server runs; print its SQLAlchemy URL on stdout
#   scripts/postgres.sh stop      stop the server this script started on that port
#   scripts/postgres.sh status    exit 0 if a server answers on that port
#
# Env: SOVRA_PG_PORT (default 55432).
# The cluster lives in .pg/<port>/ in the repo (git-ignored), or in /tmp/sovra-pg-<port>/ when the
# `postgres` system user cannot reach the repo (e.g. a checkout under /root). The server runs as
# `postgres` when invoked as root, else as the calling user; auth is trust, reachable only over
# loopback TCP (no unix socket). Durability is switched off (fsync=off) because the data is scratch.
# Progress goes to stderr so that `URL="$(scripts/postgres.sh)"` captures only the URL.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PORT="${SOVRA_PG_PORT:-55432}"
HOST=127.0.0.1
ROLE=sovra
DATABASE=sovra
SUPERUSER=postgres
URL="postgresql+psycopg://${ROLE}@${HOST}:${PORT}/${DATABASE}"
REPO_BASE="$ROOT/.pg/$PORT"
TMP_BASE="/tmp/sovra-pg-$PORT"

log() { printf 'postgres: %s\n' "$*" >&2; }
die() { printf 'postgres: error: %s\n' "$*" >&2; exit 1; }

[[ "$PORT" =~ ^[0-9]+$ ]] || die "SOVRA_PG_PORT='$PORT' is not a port number; set it to e.g. 55432."

is_root() { [[ "$(id -u)" -eq 0 ]]; }

# Run a command as the user that owns the cluster.
# Runs from / because the owner may not be allowed into the caller's working directory.
as_owner() {
  if is_root; then
    (cd / && runuser -u postgres -- env LC_ALL=C "$@")
  else
    (cd / && env LC_ALL=C "$@")
  fi
}

find_bindir() {
  local dir
  dir="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)"
  if [[ -n "$dir" && -x "$dir/initdb" ]]; then
    printf '%s\n' "$dir"
  elif command -v initdb >/dev/null 2>&1 && command -v pg_ctl >/dev/null 2>&1; then
    dirname "$(readlink -f "$(command -v initdb)")"
  fi
}

install_postgresql() {
  is_root && command -v apt-get >/dev/null 2>&1 \
    || die "PostgreSQL (initdb) not found; install it (apt-get install postgresql) and rerun."
  # Keep Debian from creating and starting its own 'main' cluster on port 5432: we only need binaries.
  mkdir -p /etc/postgresql-common/createcluster.d
  [[ -e /etc/postgresql-common/createcluster.d/sovra.conf ]] \
    || echo 'create_main_cluster = false' >/etc/postgresql-common/createcluster.d/sovra.conf
  log "installing Debian package postgresql (apt-get update && apt-get install)"
  apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends postgresql >/dev/null
}

ensure_owner_account() {
  is_root || return 0
  getent passwd postgres >/dev/null && return 0
  log "creating system user postgres"
  useradd --system --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin postgres
}

# Print the cluster base directory: inside the repo if the owner can use it there, else under /tmp.
choose_base() {
  local base
  for base in "$REPO_BASE" "$TMP_BASE"; do
    if [[ -d "$base/data" ]]; then printf '%s\n' "$base"; return; fi
  done
  if mkdir -p "$REPO_BASE" 2>/dev/null && chmod 755 "$ROOT/.pg" 2>/dev/null; then
    if is_root; then chown postgres: "$REPO_BASE" 2>/dev/null || true; fi
    chmod 700 "$REPO_BASE" 2>/dev/null || true
    if as_owner test -w "$REPO_BASE" -a -x "$REPO_BASE" 2>/dev/null; then
      printf '%s\n' "$REPO_BASE"; return
    fi
    rmdir "$REPO_BASE" 2>/dev/null || true
    rmdir "$ROOT/.pg" 2>/dev/null || true
    log "user $(is_root && echo postgres || id -un) cannot reach $ROOT; using $TMP_BASE instead"
  fi
  mkdir -p "$TMP_BASE"
  if is_root; then chown postgres: "$TMP_BASE"; fi
  chmod 700 "$TMP_BASE"
  printf '%s\n' "$TMP_BASE"
}

answering() { "$BINDIR/pg_isready" -q -h "$HOST" -p "$PORT" -t 2 >/dev/null 2>&1; }

psql_admin() {
  "$BINDIR/psql" -X -q -v ON_ERROR_STOP=1 -At -h "$HOST" -p "$PORT" -U "$SUPERUSER" -d postgres "$@"
}

init_cluster() {
  local base="$1"
  rm -rf "$base/data"  # leftovers of an initdb that did not finish
  log "initdb in $base/data (superuser $SUPERUSER, trust auth, loopback only)"
  as_owner "$BINDIR/initdb" -D "$base/data" -U "$SUPERUSER" --auth=trust --encoding=UTF8 --no-locale \
    >"$base/initdb.log" 2>&1 || { cat "$base/initdb.log" >&2; die "initdb failed (log above)."; }
  as_owner tee "$base/data/pg_hba.conf" >/dev/null <<'EOF'
# Written by scripts/postgres.sh: trust, but only over loopback TCP.
host    all    all    127.0.0.1/32    trust
host    all    all    ::1/128         trust
EOF
  as_owner tee -a "$base/data/postgresql.conf" >/dev/null <<'EOF'

# --- scripts/postgres.sh: scratch test server ---
listen_addresses = '127.0.0.1'
unix_socket_directories = ''
fsync = off
synchronous_commit = off
full_page_writes = off
max_connections = 200
EOF
}

start() {
  BINDIR="$(find_bindir)"
  if [[ -z "$BINDIR" ]]; then
    install_postgresql
    BINDIR="$(find_bindir)"
    [[ -n "$BINDIR" ]] || die "installed postgresql but still found no initdb under /usr/lib/postgresql/*/bin."
  fi
  if answering; then
    log "reusing the server already running on $HOST:$PORT"
  else
    ensure_owner_account
    local base
    base="$(choose_base)"
    [[ -f "$base/data/PG_VERSION" ]] || init_cluster "$base"
    log "starting $("$BINDIR/postgres" --version) on $HOST:$PORT (data $base/data, log $base/postgres.log)"
    as_owner "$BINDIR/pg_ctl" -D "$base/data" -l "$base/postgres.log" -w -t 60 -o "-p $PORT" start >/dev/null \
      || { tail -n 20 "$base/postgres.log" >&2 || true; die "pg_ctl start failed (log tail above); is port $PORT taken? Set SOVRA_PG_PORT."; }
  fi
  psql_admin -c 'SELECT 1' >/dev/null 2>&1 \
    || die "a server answers on $HOST:$PORT but refuses '$SUPERUSER' without password; stop it or set SOVRA_PG_PORT to a free port."
  if [[ "$(psql_admin -c "SELECT 1 FROM pg_roles WHERE rolname = '$ROLE'")" != 1 ]]; then
    log "creating role $ROLE (LOGIN CREATEDB)"
    psql_admin -c "CREATE ROLE $ROLE LOGIN CREATEDB"
  fi
  if [[ "$(psql_admin -c "SELECT 1 FROM pg_database WHERE datname = '$DATABASE'")" != 1 ]]; then
    log "creating database $DATABASE owned by $ROLE"
    psql_admin -c "CREATE DATABASE $DATABASE OWNER $ROLE"
  fi
  log "ready: $URL"
  printf '%s\n' "$URL"
}

stop() {
  BINDIR="$(find_bindir)"
  [[ -n "$BINDIR" ]] || { log "PostgreSQL is not installed; nothing to stop"; return 0; }
  local base stopped=0
  for base in "$REPO_BASE" "$TMP_BASE"; do
    if [[ -f "$base/data/postmaster.pid" ]]; then
      log "stopping server in $base/data"
      as_owner "$BINDIR/pg_ctl" -D "$base/data" -m fast -w stop >/dev/null
      stopped=1
    fi
  done
  if [[ "$stopped" -eq 0 ]]; then
    if answering; then
      die "a server answers on $HOST:$PORT but was not started from $REPO_BASE or $TMP_BASE; stop it yourself."
    fi
    log "no server of ours runs on port $PORT"
  fi
}

status() {
  BINDIR="$(find_bindir)"
  if [[ -n "$BINDIR" ]] && answering; then
    log "running on $HOST:$PORT: $URL"
  else
    log "not running on $HOST:$PORT"
    return 1
  fi
}

case "${1:-start}" in
  start) start ;;
  stop) stop ;;
  status) status ;;
  *) die "unknown command '$1'; use start, stop or status." ;;
esac
