#!/usr/bin/env bash
# Install every test dependency (Python and Node peers), then run the whole test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
# Debian's Chromium runs the real Socket.IO 0.6 client in the browser tests (CI runs as root).
if ! command -v chromium >/dev/null 2>&1; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
fi
python3 -m pip install -q -e ".[test]"
npm ci --no-audit --no-fund --loglevel=error
python3 -m pytest -q -p no:cacheprovider "$@"
