"""serve_client: the client bundle at /socket.io/socket.io.js (and its siblings), served as the reference serves it,
loaded by headless Chromium from the server and connecting."""

from __future__ import annotations

import asyncio
import gzip
import json
import os
import zlib
from typing import Any

import pytest
import tornado.httpclient
import tornado.web

from tornad_io import Server, Socket

from .conftest import NODE, ROOT

CLIENT = os.path.join(ROOT, "node_modules", "socket.io-client")
VERSION = json.load(open(os.path.join(CLIENT, "package.json")))["version"]
FILES = [
    name + suffix
    for name in ("socket.io.js", "socket.io.min.js", "socket.io.esm.min.js", "socket.io.msgpack.min.js")
    for suffix in ("", ".map")
]

CLASSIC_PAGE = """<!doctype html><title>loading</title>
<script src="/socket.io/socket.io.min.js"></script>
<script>
  window.bundle = "/socket.io/socket.io.min.js";
  const socket = io({ transports: ["polling", "websocket"] });
  socket.on("connect_error", (error) => { document.title = "failed: " + error.message; });
  socket.emit("hello", "classic", (answer) => { document.title = "done: " + answer; });
</script>"""

MODULE_PAGE = """<!doctype html><title>loading</title>
<script type="module">
  import { io } from "/socket.io/socket.io.esm.min.js";
  window.bundle = "/socket.io/socket.io.esm.min.js";
  const socket = io({ transports: ["websocket"] });
  socket.on("connect_error", (error) => { document.title = "failed: " + error.message; });
  socket.emit("hello", "module", (answer) => { document.title = "done: " + answer; });
</script>"""


def app() -> tuple[tornado.web.Application, Server]:
    io = Server(serve_client=CLIENT)

    @io.on("hello")
    def hello(socket: Socket, who: str) -> str:
        return f"hello {who} over {socket.transport}"

    class Page(tornado.web.RequestHandler):
        def get(self, name: str) -> None:
            self.set_header("Content-Type", "text/html; charset=utf-8")
            self.finish(CLASSIC_PAGE if name == "classic" else MODULE_PAGE)

    return tornado.web.Application([*io.routes(), (r"/(classic|module)", Page)]), io


async def fetch(url: str, **kwargs: Any) -> tornado.httpclient.HTTPResponse:
    client = tornado.httpclient.AsyncHTTPClient()
    return await client.fetch(url, raise_error=False, decompress_response=False, **kwargs)


async def test_files_etag_cache_and_compression(serve: Any) -> None:
    application, _ = app()
    server = await serve(application)
    for name in FILES:
        response = await fetch(f"{server.url}/socket.io/{name}")
        assert response.code == 200, name
        with open(os.path.join(CLIENT, "dist", name), "rb") as file:
            assert response.body == file.read(), name
        kind = "json" if name.endswith(".map") else "javascript"
        assert response.headers["Content-Type"] == f"application/{kind}; charset=utf-8"
        assert response.headers["ETag"] == f'"{VERSION}"'
        assert response.headers["Cache-Control"] == "public, max-age=0"
        assert "Content-Encoding" not in response.headers
    url = f"{server.url}/socket.io/socket.io.js"
    # the version is the ETag: a client that has it (strong or weak) gets 304, another version a new copy
    for tag in (f'"{VERSION}"', f'W/"{VERSION}"'):
        response = await fetch(url, headers={"If-None-Match": tag})
        assert response.code == 304 and response.body == b""
    assert (await fetch(url, headers={"If-None-Match": '"4.0.0"'})).code == 200
    # compressed when the client accepts it
    with open(os.path.join(CLIENT, "dist", "socket.io.js"), "rb") as file:
        original = file.read()
    zipped = await fetch(url, headers={"Accept-Encoding": "gzip, deflate"})
    assert zipped.headers["Content-Encoding"] == "gzip" and gzip.decompress(zipped.body) == original
    assert len(zipped.body) < len(original) / 3
    deflated = await fetch(url, headers={"Accept-Encoding": "deflate, gzip;q=0"})
    assert deflated.headers["Content-Encoding"] == "deflate" and zlib.decompress(deflated.body) == original
    # nothing else is served beside them, and the Engine.IO endpoint is unchanged
    assert (await fetch(f"{server.url}/socket.io/socket.io.exe")).code == 404
    handshake = await fetch(f"{server.url}/socket.io/?EIO=4&transport=polling")
    assert handshake.code == 200 and handshake.body.startswith(b"0{")


async def test_off_by_default_and_checked(serve: Any) -> None:
    server = await serve(Server().routes())
    assert (await fetch(f"{server.url}/socket.io/socket.io.js")).code == 404
    with pytest.raises(ValueError, match="socket.io-client"):
        Server(serve_client=os.path.join(ROOT, "tornad_io"))


@pytest.mark.slow  # headless Chromium
async def test_browser_loads_the_bundle_from_the_server_and_connects(serve: Any) -> None:
    if not os.path.exists(os.environ.get("CHROMIUM", "/usr/bin/chromium")):
        pytest.fail("chromium is missing: run the README's test command (it installs Debian's chromium)")
    application, _ = app()
    served: list[tuple[int, str]] = []  # what the server answered: (status, path)
    application.settings["log_function"] = lambda handler: served.append((handler.get_status(), handler.request.path))
    server = await serve(application)
    proc = await asyncio.create_subprocess_exec(
        NODE,
        os.path.join(ROOT, "tests", "js", "serve_client_browser.mjs"),
        f"{server.url}/classic",
        f"{server.url}/module",
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
    )
    stdout, _ = await asyncio.wait_for(proc.communicate(), 120)
    report = json.loads(stdout)
    assert report["ok"], report.get("exception")
    assert not report["errors"], report["errors"]
    classic, module = report["pages"]
    # the answer comes over polling, or over WebSocket when the upgrade was quicker than the emit
    assert classic["title"] in ("done: hello classic over polling", "done: hello classic over websocket")
    assert module["title"] == "done: hello module over websocket"
    for page, name in ((classic, "socket.io.min.js"), (module, "socket.io.esm.min.js")):
        assert {"url": f"{server.url}/socket.io/{name}", "status": 200} in page["responses"]
        assert page["again"] == 200  # fetched again with cache: "no-cache", from the cache after a 304:
        assert (304, f"/socket.io/{name}") in served  # the browser revalidated with the ETag, and kept its copy
