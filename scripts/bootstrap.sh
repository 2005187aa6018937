#!/usr/bin/env bash
# Create the project virtualenv (.venv in the repo root) and install sovra with its test extras.
#
# Idempotent: an existing, working .venv is reused, and pip is skipped while the stamp file in
# .venv is newer than pyproject.toml, so a second run costs well under a second.
# Env: PYTHON (interpreter used to create the venv, default python3).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

PYTHON="${PYTHON:-python3}"
VENV="$ROOT/.venv"
STAMP="$VENV/.sovra-bootstrap-stamp"

log() { printf 'bootstrap: %s\n' "$*" >&2; }
die() { printf 'bootstrap: error: %s\n' "$*" >&2; exit 1; }

command -v "$PYTHON" >/dev/null 2>&1 \
  || die "no '$PYTHON' on PATH; install Python 3.11+ or set PYTHON to its path."
"$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
  || die "$("$PYTHON" --version 2>&1) is too old; sovra needs Python 3.11+ (set PYTHON to a newer one)."

# A venv without pip is what `python3 -m venv` leaves behind on Debian when python3-venv is missing.
if [[ -x "$VENV/bin/python" && -x "$VENV/bin/pip" ]]; then
  log "reusing .venv ($("$VENV/bin/python" --version 2>&1))"
else
  if ! "$PYTHON" -c 'import ensurepip, venv' >/dev/null 2>&1; then
    if [[ "$(id -u)" -eq 0 ]] && command -v apt-get >/dev/null 2>&1; then
      log "installing python3-venv with apt-get (Debian's python3 lacks ensurepip without it)"
      apt-get update -qq >/dev/null
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends python3-venv >/dev/null
    else
      die "'$PYTHON -m venv' is unavailable; install the python3-venv package (apt-get install python3-venv)."
    fi
  fi
  rm -rf "$VENV"
  log "creating .venv with $("$PYTHON" --version 2>&1)"
  "$PYTHON" -m venv "$VENV"
  rm -f "$STAMP"
fi

if [[ -f "$STAMP" && "$STAMP" -nt "$ROOT/pyproject.toml" ]]; then
  log "dependencies up to date (stamp newer than pyproject.toml); skipping pip"
else
  log "pip install -e '.[test]' (quiet; errors still shown)"
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -e '.[test]'
  touch "$STAMP"
fi
log "done"
