#!/usr/bin/env bash
# Make sure a JDK 17+ and Maven are on PATH; install them from Debian's packages when missing and we are root.
# Used by scripts/conformance-tck and scripts/interop-edc. Idempotent: with both present it only checks.
set -euo pipefail

log() { printf 'java: %s\n' "$*" >&2; }
die() { printf 'java: error: %s\n' "$*" >&2; exit 1; }

missing=()
command -v java >/dev/null 2>&1 || missing+=(openjdk-17-jdk-headless)
command -v mvn >/dev/null 2>&1 || missing+=(maven)
if [[ "${#missing[@]}" -gt 0 ]]; then
  if [[ "$(id -u)" -eq 0 ]] && command -v apt-get >/dev/null 2>&1; then
    log "installing ${missing[*]} with apt-get"
    apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  else
    die "missing ${missing[*]}; install a JDK 17+ and Maven 3.8+ (apt-get install openjdk-17-jdk-headless maven)."
  fi
fi
version="$(java -version 2>&1 | sed -n 's/.*version "\([0-9]*\).*/\1/p' | head -1)"
[[ -n "$version" && "$version" -ge 17 ]] || die "java ${version:-?} is too old; the TCK and EDC need JDK 17+."
