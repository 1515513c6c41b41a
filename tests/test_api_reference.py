"""The API reference (docs/api) builds with Sphinx without a single warning, and documents every public name."""

from __future__ import annotations

import importlib
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import ROOT

pytestmark = pytest.mark.slow  # a Sphinx build (about 3 s)


def test_the_reference_builds_without_warnings_and_lists_every_public_name(tmp_path: Path) -> None:
    out = tmp_path / "html"
    result = subprocess.run(
        [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-q", "-b", "html", "docs/api", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "WARNING" not in result.stderr, result.stderr
    pages = {name: (out / name).read_text(encoding="utf-8") for name in os.listdir(out) if name.endswith(".html")}
    anchors = {a for text in pages.values() for a in re.findall(r'id="([^"]+)"', text)}
    for expected in [
        "tornad_io.Server.emit",
        "tornad_io.Server.fetch_sockets",
        "tornad_io.Namespace.on",
        "tornad_io.Socket.emit_with_ack",
        "tornad_io.BroadcastOperator.timeout",
        "tornad_io.ServerOptions.ping_interval",
        "tornad_io.cluster.redis_adapter",
        "tornad_io.cluster.RemoteSocket.emit",
        "tornad_io.socket_io.SocketIOHandler.on_message",
        "tornad_io.AckTimeout",
        "tornad_io.adapter.Recipient.write_packets",
        "tornad_io.Namespace.next_ack_id",
        "tornad_io.admin.instrument",
        "tornad_io.admin.RedisStore",
        "tornad_io.events.EventEmitter.on",
        "tornad_io.engineio.server.RefusedRequest",
        "tornad_io.Namespace.add_connection_listener",
        "tornad_io.ServerOptions.serve_client",
    ]:
        assert expected in anchors, expected
    assert 'id="tornad_io.Server.emit"' in pages["server.html"]
    for module_name in ("tornad_io", "tornad_io.socket_io", "tornad_io.cluster"):
        module = importlib.import_module(module_name)
        for name in module.__all__:
            if not name.startswith("__"):
                assert f"{module_name}.{name}" in anchors, f"{module_name}.{name} is missing from docs/api"
