#!/usr/bin/env bash
# Install what the benchmark needs, then run it: bash scripts/bench.sh [--size smoke|full] [--reps N] ...
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/_venv.sh
python -m pip install -q -e ".[test]"
npm ci --no-audit --no-fund --loglevel=error
exec python benchmarks/run.py "$@"
