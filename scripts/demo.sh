#!/usr/bin/env bash
# Install tornad_io and the browser client, then start the chat demo on http://localhost:8888
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m pip install -q -e .
npm ci --no-audit --no-fund --loglevel=error
exec python3 examples/chat/app.py "$@"
