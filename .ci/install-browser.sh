#!/usr/bin/env bash
# Install Debian's Chromium for the browser tests (tests/web) if /usr/bin/chromium is missing.
# Idempotent and quiet; needs root (or sudo) and apt. Never runs `playwright install`.
set -euo pipefail
if [ -x /usr/bin/chromium ]; then
  exit 0
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then SUDO="sudo"; else
    echo "install-browser: /usr/bin/chromium is missing and this is not root (no sudo); browser tests will be skipped" >&2
    exit 0
  fi
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "install-browser: no apt-get here; install Chromium at /usr/bin/chromium by hand (browser tests will be skipped)" >&2
  exit 0
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq chromium >/dev/null
[ -x /usr/bin/chromium ] || { echo "install-browser: apt installed chromium but /usr/bin/chromium is missing" >&2; exit 1; }
