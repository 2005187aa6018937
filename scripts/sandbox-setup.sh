#!/usr/bin/env bash
# Make both compute-to-data sandbox backends usable on this machine (idempotent; scripts/test runs it).
#   1. bubblewrap, docker.io and libseccomp2 from Debian (apt-get; needs root);
#   2. dockerd in the background when none answers (data root /var/lib/sovra-docker, log /var/log/sovra-dockerd.log);
#   3. the runtime image sovra/c2d-runtime:1, built here without any registry: a root filesystem assembled from
#      this host (the interpreter, numpy and onnxruntime of .venv, the shared libraries they need, a nobody user)
#      and `docker import`ed; skipped when an image with the same inputs' fingerprint exists.
# Env: SOVRA_SANDBOX_SKIP_DOCKER=1 sets up bubblewrap only.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
log() { printf 'sandbox-setup: %s\n' "$*" >&2; }
die() { printf 'sandbox-setup: error: %s\n' "$*" >&2; exit 1; }

PYTHON="${PYTHON:-$ROOT/.venv/bin/python}"
[[ -x "$PYTHON" ]] || die "no $PYTHON; run scripts/bootstrap.sh first"

need=()
command -v bwrap >/dev/null 2>&1 || need+=(bubblewrap)
if [[ "${SOVRA_SANDBOX_SKIP_DOCKER:-0}" != "1" ]]; then
  command -v dockerd >/dev/null 2>&1 || need+=(docker.io)
fi
ldconfig -p 2>/dev/null | grep 'libseccomp\.so\.2' >/dev/null || need+=(libseccomp2)
if [[ "${#need[@]}" -gt 0 ]]; then
  [[ "$(id -u)" -eq 0 ]] || die "missing ${need[*]}; run this script as root or apt-get install ${need[*]}"
  command -v apt-get >/dev/null 2>&1 || die "missing ${need[*]} and no apt-get here; install them with your package manager"
  log "apt-get install ${need[*]}"
  apt-get update -qq >/dev/null || die "apt-get update failed"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null \
    || die "apt-get install ${need[*]} failed"
fi
command -v bwrap >/dev/null 2>&1 || die "bwrap still missing after the install"
log "bubblewrap $(bwrap --version | awk '{print $2}')"

[[ "${SOVRA_SANDBOX_SKIP_DOCKER:-0}" == "1" ]] && { log "docker skipped (SOVRA_SANDBOX_SKIP_DOCKER=1)"; exit 0; }

DOCKER="$(command -v docker || true)"
[[ -n "$DOCKER" ]] || die "no docker client on PATH after installing docker.io"
if ! "$DOCKER" info >/dev/null 2>&1; then
  [[ "$(id -u)" -eq 0 ]] || die "no Docker daemon answers and only root can start one here"
  DATA_ROOT="${SOVRA_DOCKER_DATA_ROOT:-/var/lib/sovra-docker}"
  LOG="${SOVRA_DOCKERD_LOG:-/var/log/sovra-dockerd.log}"
  mkdir -p "$DATA_ROOT" "$(dirname "$LOG")"
  log "starting dockerd (data root $DATA_ROOT, log $LOG)"
  # No bridge or iptables: jobs run with network_mode=none, so the daemon needs no network plumbing.
  setsid nohup dockerd --data-root "$DATA_ROOT" --bridge none --iptables=false --ip6tables=false \
    --host unix:///var/run/docker.sock >>"$LOG" 2>&1 </dev/null &
  for _ in $(seq 1 60); do
    "$DOCKER" info >/dev/null 2>&1 && break
    sleep 1
  done
  "$DOCKER" info >/dev/null 2>&1 || { tail -20 "$LOG" >&2; die "dockerd did not come up within 60 s (log: $LOG)"; }
fi
log "docker daemon $("$DOCKER" version --format '{{.Server.Version}}')"

"$PYTHON" -m compute_to_data.sandbox.image --ensure || die "building the runtime image failed"
