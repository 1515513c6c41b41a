"""Shared fixtures: a real server on 127.0.0.1 and real clients (Node and Python)."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import shutil
import signal
import socket as pysocket
from typing import Any, Callable

import pytest
import tornado.httpserver
import tornado.netutil
import tornado.web

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NODE = shutil.which("node") or "node"
WAIT = 10.0  # seconds any awaited event may take before the test fails
#: TORNAD_IO_TEST_SERVER=lean: the ``serve`` fixture runs tornad_io.HTTPServer and its lean polling path
#: (scripts/test.sh runs the protocol and client tests that way too); otherwise Tornado's HTTPServer.
LEAN_SERVER = os.environ.get("TORNAD_IO_TEST_SERVER", "") == "lean"
TORNADO_LIMITS: dict[str, Any] = {
    "idle_connection_timeout": 3600,
    "body_timeout": None,
    "max_body_size": None,
    "max_header_size": None,
    "xheaders": False,
}


class Running:
    """A server listening on 127.0.0.1 and a free port."""

    def __init__(self, server: tornado.httpserver.HTTPServer, port: int) -> None:
        self.http = server
        self.port = port
        self.url = f"http://127.0.0.1:{port}"


@pytest.fixture
async def serve() -> Any:
    """``await serve(app_or_handlers)`` starts an HTTP server; stopped after the test."""
    servers: list[tornado.httpserver.HTTPServer] = []

    async def start(app: tornado.web.Application | list[Any], **server_kwargs: Any) -> Running:
        if isinstance(app, list):
            app = tornado.web.Application(app)
        sockets = tornado.netutil.bind_sockets(0, "127.0.0.1", family=pysocket.AF_INET)
        if LEAN_SERVER:
            # tornad_io.HTTPServer (lean polling path on) with Tornado's own limits, so only the path differs.
            from tornad_io import HTTPServer

            server = HTTPServer(app, **{**TORNADO_LIMITS, **server_kwargs})
        else:
            server = tornado.httpserver.HTTPServer(app, **server_kwargs)
        server.add_sockets(sockets)
        servers.append(server)
        return Running(server, sockets[0].getsockname()[1])

    yield start
    for server in servers:
        server.stop()
        await server.close_all_connections()


def to_wire(value: Any) -> Any:
    if isinstance(value, (bytes, bytearray)):
        return {"$bin": base64.b64encode(value).decode()}
    if isinstance(value, (list, tuple)):
        return [to_wire(v) for v in value]
    if isinstance(value, dict):
        return {k: to_wire(v) for k, v in value.items()}
    return value


def from_wire(value: Any) -> Any:
    if isinstance(value, list):
        return [from_wire(v) for v in value]
    if isinstance(value, dict):
        if set(value) == {"$bin"}:
            return base64.b64decode(value["$bin"])
        return {k: from_wire(v) for k, v in value.items()}
    return value


class NodeClients:
    """The real socket.io-client under Node, driven line by line (tests/js/remote_client.mjs)."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc
        self.reports: list[dict[str, Any]] = []
        self._seen = 0
        self._new = asyncio.Event()
        self._reader = asyncio.ensure_future(self._read())

    async def _read(self) -> None:
        assert self.proc.stdout is not None
        while True:
            line = await self.proc.stdout.readline()
            if not line:
                break
            report = json.loads(line)
            if "args" in report:
                report["args"] = from_wire(report["args"])
            self.reports.append(report)
            self._new.set()

    def send(self, **command: Any) -> None:
        assert self.proc.stdin is not None
        if "args" in command:
            command["args"] = to_wire(command["args"])
        self.proc.stdin.write((json.dumps(command) + "\n").encode())

    def connect(self, id: str, url: str, **opts: Any) -> None:
        acks = opts.pop("acks", {})
        self.send(cmd="connect", id=id, url=url, opts=opts, acks=acks)

    def emit(
        self, id: str, event: str, *args: Any, ack: bool = False, timeout: int | None = None, tag: str = ""
    ) -> None:
        command: dict[str, Any] = dict(cmd="emit", id=id, event=event, args=list(args), ack=ack, tag=tag)
        if timeout is not None:
            command["timeout"] = timeout
        self.send(**command)

    async def wait_for(self, predicate: Callable[[dict[str, Any]], bool], timeout: float = WAIT) -> dict[str, Any]:
        """The first report (seen or future) matching *predicate*."""

        async def scan() -> dict[str, Any]:
            index = 0
            while True:
                while index < len(self.reports):
                    report = self.reports[index]
                    index += 1
                    if predicate(report):
                        return report
                self._new.clear()
                if self._reader.done():
                    raise AssertionError(f"node client exited; reports: {self.reports}")
                await self._new.wait()

        return await asyncio.wait_for(scan(), timeout)

    async def expect(self, type: str, id: str | None = None, timeout: float = WAIT, **fields: Any) -> dict[str, Any]:
        def match(report: dict[str, Any]) -> bool:
            if report.get("type") != type or (id is not None and report.get("id") != id):
                return False
            return all(report.get(k) == v for k, v in fields.items())

        return await self.wait_for(match, timeout)

    def events(self, id: str, event: str) -> list[dict[str, Any]]:
        return [r for r in self.reports if r.get("type") == "event" and r["id"] == id and r["event"] == event]

    def pause(self) -> None:
        """Freeze the Node process (a peer that vanishes without closing)."""
        self.proc.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        self.proc.send_signal(signal.SIGCONT)

    async def close(self) -> None:
        if self.proc.returncode is None:
            self.resume()
            self.proc.kill()
            await self.proc.wait()
        self._reader.cancel()


async def start_driver(script: str, ready_timeout: float = WAIT) -> NodeClients:
    if not os.path.isdir(os.path.join(ROOT, "node_modules", "socket.io-client")):
        pytest.fail("node_modules missing: run the README's test command (it runs npm ci)")
    proc = await asyncio.create_subprocess_exec(
        NODE,
        os.path.join(ROOT, "tests", "js", script),
        cwd=ROOT,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
    )
    clients = NodeClients(proc)
    await clients.expect("ready", timeout=ready_timeout)
    return clients


@pytest.fixture
async def node() -> Any:
    """A Node process running the real socket.io-client, driven from the test."""
    clients = await start_driver("remote_client.mjs")
    yield clients
    await clients.close()


@pytest.fixture
async def legacy_browser() -> Any:
    """Headless Chromium running the real Socket.IO 0.6 client (tests/js/legacy_browser.mjs)."""
    if not os.path.exists(os.environ.get("CHROMIUM", "/usr/bin/chromium")):
        pytest.fail("chromium is missing: run the README's test command (it installs Debian's chromium)")
    clients = await start_driver("legacy_browser.mjs", ready_timeout=60)
    yield clients
    await clients.close()


async def wait_until(predicate: Callable[[], bool], timeout: float = WAIT) -> None:
    """Wait (by polling the loop, not sleeping blindly) until *predicate* holds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        if loop.time() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.01)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tests that start a Redis server (tests/test_redis_cluster.py) are in the slow tier.

    Each starts redis-server or valkey-server, most also two Node servers: 1 to 1.6 s a test, about 15 s
    for the lot, which would put ``pytest -m "not slow"`` over a minute on a busy machine.
    """
    for item in items:
        if "redis_url" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.slow)
