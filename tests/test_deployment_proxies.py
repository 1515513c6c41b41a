"""The proxy configurations of docs/deployment.md, run as they are written.

nginx and HAProxy run from ``docs/deploy/nginx.conf`` and ``docs/deploy/haproxy.cfg`` with only
their placeholders (ports, file paths) filled in, terminating TLS with a certificate made for the
test, in front of a tornad_io server with ``trusted_proxies=["127.0.0.1"]``. The real
socket.io-client under Node connects through them with its default transports (long-polling,
then the upgrade to WebSocket) and checks acknowledgements, a broadcast, the upgrade, the client
address and scheme the server learns from the proxy, the same-origin check behind the proxy, and
that the proxy's access log leaves session ids out.

Also from the guide: Tornado terminating TLS itself, the quoted configurations being the tested
files, and its access-log function leaving query strings out.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
import shutil
import signal
import socket as pysocket
import ssl
import tempfile
from typing import Any, AsyncIterator

import pytest
import tornado.httpclient

from tornad_io import Server, Socket

from .conftest import ROOT, WAIT

DEPLOY = os.path.join(ROOT, "docs", "deploy")
CLIENT_ADDRESS = "203.0.113.7"  # what the test client claims in its own X-Forwarded-For (TEST-NET-3)


def program(name: str) -> str:
    """The path of a Debian-installed program; the test fails (not skips) without it."""
    path = shutil.which(name) or shutil.which(name, path="/usr/sbin:/usr/local/sbin:/sbin")
    if path is None:
        pytest.fail(f"{name} is missing: run the README's test command (it installs Debian's {name})")
    return path


def free_port() -> int:
    with pysocket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def render(name: str, values: dict[str, str]) -> str:
    """The config file from docs/deploy with its placeholders replaced, and nothing else changed."""
    with open(os.path.join(DEPLOY, name), encoding="utf-8") as f:
        text = f.read()
    for placeholder, value in values.items():
        assert placeholder in text, f"{name} no longer has the placeholder {placeholder}"
        text = text.replace(placeholder, value)
    left = set(re.findall(r"__[A-Z_]+__", text))
    assert not left, f"{name} has placeholders this test does not fill: {sorted(left)}"
    return text


async def run(*command: str) -> None:
    proc = await asyncio.create_subprocess_exec(
        *command, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE
    )
    _, err = await asyncio.wait_for(proc.communicate(), WAIT)
    assert proc.returncode == 0, f"{command[0]} failed: {err.decode(errors='replace')}"


@pytest.fixture
def workdir() -> Any:
    # Not pytest's tmp_path: its parents are private to the user, and nginx's workers run as
    # another user when the test runs as root.
    path = tempfile.mkdtemp(prefix="tornad_io-proxy-")
    os.chmod(path, 0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
async def tls(workdir: str) -> dict[str, str]:
    """A self-signed certificate for 127.0.0.1: files for the proxies, text for the client's ``ca``."""
    cert, key = os.path.join(workdir, "cert.pem"), os.path.join(workdir, "key.pem")
    await run(
        program("openssl"), "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
        "-nodes", "-days", "2", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
        "-keyout", key, "-out", cert,
    )  # fmt: skip
    with open(cert) as c, open(key) as k:
        cert_text, key_text = c.read(), k.read()
    pem = os.path.join(workdir, "cert+key.pem")
    with open(pem, "w") as f:
        f.write(cert_text + key_text)
    return {"cert": cert, "key": key, "pem": pem, "ca": cert_text}


async def wait_listening(port: int, proc: asyncio.subprocess.Process, describe: Any) -> None:
    """Until *port* accepts a connection; fails with *describe()* if the proxy exits or never listens."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + WAIT
    while True:
        if proc.returncode is not None:
            pytest.fail(f"the proxy exited with {proc.returncode}: {describe()}")
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            if loop.time() > deadline:
                pytest.fail(f"the proxy is not listening on {port} after {WAIT} s: {describe()}")
            await asyncio.sleep(0.02)
            continue
        writer.close()
        await writer.wait_closed()
        return


async def stop(proc: asyncio.subprocess.Process) -> None:
    """Stop a proxy started in its own process group (its workers included)."""
    if proc.returncode is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            await asyncio.wait_for(proc.wait(), WAIT)
        except asyncio.TimeoutError:
            os.killpg(proc.pid, signal.SIGKILL)
            await proc.wait()


class Proxy:
    def __init__(self, port: int, access_log: str) -> None:
        self.port = port
        self.url = f"https://127.0.0.1:{port}"
        self.access_log = access_log


async def launch_nginx(workdir: str, site: str, port: int) -> asyncio.subprocess.Process:
    """nginx running *site* (the text of a documented file, placeholders filled) from *workdir*, listening on *port*."""
    with open(os.path.join(workdir, "tornad_io.conf"), "w") as f:
        f.write(site)
    # The main configuration a distribution would ship, reduced to what runs nginx from a
    # scratch directory; it includes the documented file as a distribution includes conf.d/.
    main = os.path.join(workdir, "nginx.conf")
    with open(main, "w") as f:
        f.write(
            f"worker_processes 1;\n"
            f"pid {workdir}/nginx.pid;\n"
            f"error_log {workdir}/error.log info;\n"
            f"events {{ worker_connections 1024; }}\n"
            f"http {{\n"
            f"    client_body_temp_path {workdir}/client_body;\n"
            f"    proxy_temp_path {workdir}/proxy;\n"
            f"    fastcgi_temp_path {workdir}/fastcgi;\n"
            f"    uwsgi_temp_path {workdir}/uwsgi;\n"
            f"    scgi_temp_path {workdir}/scgi;\n"
            f"    include {workdir}/tornad_io.conf;\n"
            f"}}\n"
        )
    error_log = os.path.join(workdir, "error.log")
    proc = await asyncio.create_subprocess_exec(
        program("nginx"), "-e", error_log, "-p", workdir + "/", "-c", main, "-g", "daemon off;",
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip

    def describe() -> str:
        with open(error_log, errors="replace") as f:
            return f.read()[-2000:]

    await wait_listening(port, proc, describe)
    return proc


async def start_nginx(workdir: str, upstream: int, tls: dict[str, str]) -> tuple[asyncio.subprocess.Process, Proxy]:
    port = free_port()
    site = render(
        "nginx.conf",
        {
            "__LISTEN__": f"127.0.0.1:{port}",
            "__UPSTREAM_PORT__": str(upstream),
            "__TLS_CERT__": tls["cert"],
            "__TLS_KEY__": tls["key"],
            "__LOG_DIR__": workdir,
        },
    )
    proc = await launch_nginx(workdir, site, port)
    return proc, Proxy(port, os.path.join(workdir, "tornad_io-access.log"))


async def start_haproxy(workdir: str, upstream: int, tls: dict[str, str]) -> tuple[asyncio.subprocess.Process, Proxy]:
    port = free_port()
    cfg = os.path.join(workdir, "haproxy.cfg")
    with open(cfg, "w") as f:
        f.write(
            render(
                "haproxy.cfg",
                {"__LISTEN__": f"127.0.0.1:{port}", "__UPSTREAM_PORT__": str(upstream), "__TLS_PEM__": tls["pem"]},
            )
        )
    log = os.path.join(workdir, "haproxy.log")
    with open(log, "wb") as out:  # the documented config logs to standard output
        proc = await asyncio.create_subprocess_exec(
            program("haproxy"), "-f", cfg, "-db", stdout=out, stderr=out, start_new_session=True
        )

    def describe() -> str:
        with open(log, errors="replace") as f:
            return f.read()[-2000:]

    await wait_listening(port, proc, describe)
    return proc, Proxy(port, log)


def make_server() -> Server:
    io = Server(trusted_proxies=["127.0.0.1"])

    @io.on("whoami")
    def whoami(socket: Socket) -> dict[str, Any]:
        forwarded = socket.handshake.headers.get("x-forwarded-for", "")
        return {
            "address": socket.handshake.address,
            "secure": socket.handshake.secure,
            "forwarded": [hop.strip() for hop in forwarded.split(",")],
            "transport": socket.transport,
        }

    @io.on("shout")
    def shout(socket: Socket, text: str) -> str:
        io.emit("shouted", text)
        return "ok"

    return io


@pytest.fixture(params=["nginx", "haproxy"])
async def proxied(request: pytest.FixtureRequest, serve: Any, workdir: str, tls: dict[str, str]) -> AsyncIterator[Any]:
    io = make_server()
    server = await serve(io.routes(), **io.http_server_options())
    start = start_nginx if request.param == "nginx" else start_haproxy
    proc, proxy = await start(workdir, server.port, tls)
    try:
        yield proxy, tls["ca"]
    finally:
        await stop(proc)
    # Read once the proxy has stopped, so every line is written.
    with open(proxy.access_log, errors="replace") as f:
        lines = [line for line in f if "/socket.io/" in line]
    assert lines, f"no Socket.IO request in the {request.param} access log"
    assert not [line for line in lines if "sid=" in line or "EIO=" in line], "the access log records query strings"


async def test_socketio_through_the_proxy(proxied: Any, node: Any) -> None:
    proxy, ca = proxied
    # "far" says it comes from CLIENT_ADDRESS (as if through one more trusted proxy on 127.0.0.1);
    # "near" says nothing, so the proxy's own X-Forwarded-For is all there is.
    node.connect("far", proxy.url, ca=ca, extraHeaders={"X-Forwarded-For": CLIENT_ADDRESS, "Origin": proxy.url})
    node.connect("near", proxy.url, ca=ca, extraHeaders={"Origin": proxy.url})
    for cid in ("far", "near"):
        await node.expect("connect", cid)
        # an upgrade: the session opened over long-polling, then moved to WebSocket
        await node.expect("upgrade", cid, transport="websocket")

    node.emit("far", "whoami", ack=True, tag="far")
    node.emit("near", "whoami", ack=True, tag="near")
    far = (await node.expect("ack", "far", tag="far"))["args"][0]
    near = (await node.expect("ack", "near", tag="near"))["args"][0]
    # The proxy appended the address it saw (127.0.0.1) to what the client sent, and the server
    # took the last address that is not a trusted proxy.
    assert far == {
        "address": CLIENT_ADDRESS,
        "secure": True,
        "forwarded": [CLIENT_ADDRESS, "127.0.0.1"],
        "transport": "websocket",
    }
    assert near == {"address": "127.0.0.1", "secure": True, "forwarded": ["127.0.0.1"], "transport": "websocket"}

    node.emit("far", "shout", "hello", ack=True, tag="shout")
    assert (await node.expect("ack", "far", tag="shout"))["args"] == ["ok"]
    await node.expect("event", "near", event="shouted", args=["hello"])
    await node.expect("event", "far", event="shouted", args=["hello"])

    # Same-origin only (the default) still works behind the proxy: it passes the Host the client used.
    node.connect("elsewhere", proxy.url, ca=ca, extraHeaders={"Origin": "https://elsewhere.example"})
    await node.expect("connect_error", "elsewhere")


async def test_tls_in_tornado_without_a_proxy(serve: Any, node: Any, tls: dict[str, str]) -> None:
    """The guide's alternative: Tornado terminates TLS itself (``ssl_options``)."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(tls["cert"], tls["key"])
    io = make_server()
    server = await serve(io.routes(), ssl_options=context, **io.http_server_options())
    url = f"https://127.0.0.1:{server.port}"
    node.connect("direct", url, ca=tls["ca"])
    await node.expect("connect", "direct")
    await node.expect("upgrade", "direct", transport="websocket")
    node.emit("direct", "whoami", ack=True, tag="w")
    seen = (await node.expect("ack", "direct", tag="w"))["args"][0]
    assert seen == {"address": "127.0.0.1", "secure": True, "forwarded": [""], "transport": "websocket"}


# -- the guide itself ----------------------------------------------------------------------


def guide_blocks(language: str) -> list[str]:
    """The fenced code blocks of docs/deployment.md in *language*."""
    with open(os.path.join(ROOT, "docs", "deployment.md"), encoding="utf-8") as f:
        text = f.read()
    return re.findall(rf"^```{language}\n(.*?)^```$", text, flags=re.MULTILINE | re.DOTALL)


@pytest.mark.parametrize(("language", "name"), [("nginx", "nginx.conf"), ("haproxy", "haproxy.cfg")])
def test_guide_quotes_the_tested_files(language: str, name: str) -> None:
    with open(os.path.join(DEPLOY, name), encoding="utf-8") as f:
        assert guide_blocks(language) == [f.read()], f"docs/deployment.md no longer quotes docs/deploy/{name} as it is"


async def test_access_log_function_of_the_guide(serve: Any, caplog: pytest.LogCaptureFixture) -> None:
    """The guide's ``log_function`` logs requests, without their query strings."""
    (code,) = [block for block in guide_blocks("python") if "def log_without_query" in block]
    scope: dict[str, Any] = {"io": Server()}
    exec(code, scope)  # the block ends by building ``app`` around ``io``
    server = await serve(scope["app"])
    client = tornado.httpclient.AsyncHTTPClient()
    base = f"{server.url}/socket.io/?EIO=4&transport=polling"
    with caplog.at_level(logging.INFO, logger="tornado.access"):
        opened = await client.fetch(base)
        sid = json.loads(opened.body.decode()[1:])["sid"]
        await client.fetch(f"{base}&sid={sid}", method="POST", body="40")
        unknown = await client.fetch(f"{base}&sid=nosuchsession", raise_error=False)
        assert unknown.code == 400
    lines = [record.getMessage() for record in caplog.records if record.name == "tornado.access"]
    assert len(lines) == 3, lines
    assert all(" /socket.io/ (127.0.0.1)" in line for line in lines), lines
    assert not [line for line in lines if "?" in line or sid in line], lines
    assert [record.levelno for record in caplog.records if record.name == "tornado.access"] == [
        logging.INFO,
        logging.INFO,
        logging.WARNING,
    ]
