#!/usr/bin/env bash
# Make Debian's chromium available for the console's browser tests (Playwright drives it; it never downloads one).
# Prints the browser's path. Installs the `chromium` package with apt-get when it is missing and we are root.
set -euo pipefail

BROWSER="${SOVRA_CHROMIUM:-/usr/bin/chromium}"
export PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1

if [[ ! -x "$BROWSER" ]]; then
  if [[ "$(id -u)" -eq 0 ]] && command -v apt-get >/dev/null 2>&1; then
    printf 'console-browser: installing Debian chromium with apt-get\n' >&2
    # Another apt run (another checkout's script) may hold the lock: wait for it rather than fail.
    apt-get -o DPkg::Lock::Timeout=600 update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends \
      chromium fonts-dejavu-core >/dev/null
  else
    printf 'console-browser: %s is missing; install Debian'"'"'s chromium package (apt-get install chromium)\n' \
      "$BROWSER" >&2
    exit 1
  fi
fi
"$BROWSER" --version >&2
printf '%s\n' "$BROWSER"
