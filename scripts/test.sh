#!/usr/bin/env bash
# Install every test dependency (Python and Node peers), then run the whole test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m pip install -q -e ".[test]"
npm ci --no-audit --no-fund --loglevel=error
python3 -m pytest -q -p no:cacheprovider "$@"
