#!/usr/bin/env bash
# Install tornad_io and the browser client, then start the chat demo on http://localhost:8888
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/_venv.sh
python -m pip install -q -e .
npm ci --no-audit --no-fund --loglevel=error
exec python examples/chat/app.py "$@"
