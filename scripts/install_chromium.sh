#!/usr/bin/env bash
# Install Debian's chromium for the explorer's browser test (tests/explorer/test_browser.py).
# A no-op when /usr/bin/chromium exists; needs root (or sudo) and the Debian package registry.
set -euo pipefail
if [ -x /usr/bin/chromium ]; then
  exit 0
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  SUDO="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends chromium
