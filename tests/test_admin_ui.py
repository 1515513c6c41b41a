"""The real Socket.IO Admin UI in headless Chromium against the chat demo with --admin's set-up
(tests/js/admin_ui_browser.mjs): log in through the UI's form, see the demo's clients and room."""

from __future__ import annotations

import asyncio
import json
import os
import socket as pysocket
from typing import Any

import bcrypt
import pytest

from examples.chat.app import ADMIN_UI, make_app

from .conftest import NODE, ROOT

pytestmark = pytest.mark.slow  # headless Chromium (a few seconds)

PASSWORD = "correct horse"


async def run_script(*args: str, timeout: float = 120) -> dict[str, Any]:
    proc = await asyncio.create_subprocess_exec(
        NODE, os.path.join(ROOT, "tests", "js", "admin_ui_browser.mjs"), *args, cwd=ROOT, stdout=asyncio.subprocess.PIPE
    )
    try:
        stdout, _ = await asyncio.wait_for(proc.communicate(), timeout)
    except asyncio.TimeoutError:
        proc.kill()
        await proc.wait()
        raise
    assert proc.returncode == 0, stdout
    report: dict[str, Any] = json.loads(stdout)
    return report


async def test_admin_ui_shows_the_demo_clients_and_rooms(serve: Any, tmp_path: Any) -> None:
    if not os.path.exists(os.environ.get("CHROMIUM", "/usr/bin/chromium")):
        pytest.fail("chromium is missing: run the README's test command (it installs Debian's chromium)")
    if not os.path.exists(os.path.join(ADMIN_UI, "index.html")):
        pytest.fail("node_modules/@socket.io/admin-ui is missing: run the README's test command (it runs npm ci)")
    hashed = bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(rounds=4)).decode()
    app, io = make_app(admin={"type": "basic", "username": "admin", "password": hashed})
    server = await serve(app)
    report = await run_script(server.url, str(tmp_path), "admin", PASSWORD, str(os.getpid()))
    assert report["ok"], report.get("exception")
    assert not report["errors"] and not report["failed"], report
    assert report["refused"]  # the wrong password was refused in the form ("Invalid credentials")
    assert report["sessionId"] and len(report["sessionId"]) == 16  # the UI kept the session the server gave it
    ann, bob = report["clients"]["ann"]["id"], report["clients"]["bob"]["id"]
    assert report["clients"]["ann"]["answer"]["ok"]

    # the Sockets page: both clients, with their address and transport
    rows = {row[0]: row for row in report["socketRows"]}
    assert {ann, bob} <= set(rows), report["socketRows"]
    assert rows[ann][1] == "127.0.0.1"
    # the Rooms page: the chat room, with its two sockets (private rooms hidden, as the UI does by default)
    rooms = {row[0]: row for row in report["roomRows"]}
    assert "chat" in rooms and rooms["chat"][2] == "2", report["roomRows"]
    assert ann not in rooms
    # a socket's page lists its rooms
    assert "chat" in report["socketPage"]
    # the Servers page: this server's stats (server id and host name, pid)
    servers = report["serverRows"]
    assert any(pysocket.gethostname() in row and str(os.getpid()) in row for row in servers), servers
    # only the UI's web fonts and icon font were asked of other hosts (and refused: the tests are offline)
    assert all("fonts.googleapis.com" in url or "cdn.jsdelivr.net" in url for url in report["blocked"])
    for name in (
        "admin-login-refused",
        "admin-sockets",
        "admin-rooms",
        "admin-socket",
        "admin-servers",
        "admin-dashboard",
    ):
        assert (tmp_path / f"{name}.png").stat().st_size > 10_000
    keep = os.environ.get("ADMIN_UI_SCREENSHOTS")
    if keep:  # to look at them: ADMIN_UI_SCREENSHOTS=/some/dir pytest tests/test_admin_ui.py
        os.makedirs(keep, exist_ok=True)
        for name in os.listdir(tmp_path):
            with open(tmp_path / name, "rb") as source, open(os.path.join(keep, name), "wb") as target:
                target.write(source.read())
