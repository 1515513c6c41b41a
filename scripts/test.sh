#!/usr/bin/env bash
# Install every test dependency (Python and Node peers), then run the whole test suite; with no arguments, also run
# the fast tier on the lowest supported Tornado.
set -euo pipefail
cd "$(dirname "$0")/.."
# Debian packages (CI runs as root): Chromium runs the real Socket.IO 0.6 client in the browser
# tests; redis-server backs the cluster tests; nginx and haproxy run the proxy configurations of
# docs/deploy/.
missing=""
command -v chromium >/dev/null 2>&1 || missing="$missing chromium"
command -v redis-server >/dev/null 2>&1 || missing="$missing redis-server"
command -v nginx >/dev/null 2>&1 || missing="$missing nginx"
command -v haproxy >/dev/null 2>&1 || missing="$missing haproxy"
command -v openssl >/dev/null 2>&1 || missing="$missing openssl"
if [ -n "$missing" ]; then
  # No service starts during the install (policy-rc.d says no): the tests start their own nginx and Redis.
  policy=/usr/sbin/policy-rc.d
  created=""
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' > "$policy" && chmod +x "$policy" && created=1
  fi
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing >/dev/null
  if [ -n "$created" ]; then rm -f "$policy"; fi
fi
. scripts/_venv.sh
python -m pip install -q -e ".[test]"
npm ci --no-audit --no-fund --loglevel=error
python -m pytest -q -p no:cacheprovider "$@"
if [ "$#" -eq 0 ]; then
  # The lean polling path of tornad_io.HTTPServer: the protocol and real-client tests again, with the serve
  # fixture on tornad_io.HTTPServer instead of Tornado's (tests/conftest.py, TORNAD_IO_TEST_SERVER).
  TORNAD_IO_TEST_SERVER=lean python -m pytest -q -p no:cacheprovider -m "not slow" \
    tests/test_engineio_protocol.py tests/test_hooks.py tests/test_node_client.py tests/test_python_client.py \
    tests/test_eio3_wire.py tests/test_eio3_client.py tests/test_hardening.py tests/test_security_resources.py \
    tests/test_security_origins.py tests/test_security_traps.py tests/test_deployment_proxies.py
  # The lowest Tornado that pyproject.toml allows (tornado>=6.3): the fast tier of the protocol and real-client
  # tests again, in a second virtual environment, .venv-tornado-min. tornad_io/_tornado_compat.py uses private
  # Tornado names; this catches one that 6.3 lacks (test_tornado_compat.py fails if the fast paths are off).
  (
    VENV_DIR=.venv-tornado-min
    . scripts/_venv.sh
    python -m pip install -q -e ".[test]" "tornado==6.3.*"
    echo "tornado $(python -c 'import tornado; print(tornado.version)'): fast tier"
    python -m pytest -q -p no:cacheprovider -m "not slow" \
      tests/test_tornado_compat.py tests/test_codecs.py tests/test_engineio_protocol.py tests/test_legacy_protocol.py \
      tests/test_node_client.py tests/test_python_client.py tests/test_hardening.py tests/test_security_resources.py \
      tests/test_security_origins.py tests/test_security_traps.py tests/test_attach.py
  )
fi
