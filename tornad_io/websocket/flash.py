"""The Flash socket policy server (``<policy-file-request/>`` on port 843).

Flash Player asks ``host:843`` for a policy before opening a socket to the
host; 0.6's flashsocket transport goes through it. Each connection is read
for at most 23 bytes (or ``timeout`` seconds): a policy request gets the
policy document and a NUL byte, anything else is closed.
"""

from __future__ import annotations

import asyncio
import logging
import os

from tornado.iostream import IOStream, StreamClosedError
from tornado.netutil import bind_sockets
from tornado.tcpserver import TCPServer

log = logging.getLogger("tornad_io.flash")

REQUEST = b"<policy-file-request/>"
DEFAULT_POLICY_FILE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "flashpolicy.xml")


class FlashPolicyServer(TCPServer):
    """Serves a Flash socket policy file; ``FlashPolicyServer(port=843, policy_file=None)``.

    *policy_file* defaults to the permissive policy shipped in the package
    (any domain, any port). Binding a port below 1024 needs privileges: a
    failure is logged with a clear message and :attr:`listening` stays False.
    """

    def __init__(
        self,
        port: int = 843,
        policy_file: str | None = None,
        address: str = "",
        timeout: float = 5.0,
        start: bool = True,
    ) -> None:
        super().__init__()
        path = policy_file or DEFAULT_POLICY_FILE
        if not os.path.exists(path):
            log.warning("flash policy file %s not found: serving the built-in permissive policy", path)
            path = DEFAULT_POLICY_FILE
        with open(path, "rb") as file:
            self.policy = file.read().rstrip(b"\0") + b"\0"
        self.port = port
        self.address = address
        self.timeout = timeout
        self.listening = False
        if start:
            self.start_listening()

    def start_listening(self) -> bool:
        """Bind and listen; False (and a logged reason) when the port cannot be bound."""
        try:
            sockets = bind_sockets(self.port, address=self.address)
        except PermissionError:
            log.error(
                "flash policy server: no permission to bind port %s (ports below 1024 need root or "
                "CAP_NET_BIND_SERVICE); flashsocket clients will not get a policy. Set flash_policy_port "
                "to a higher port or grant the capability.",
                self.port,
            )
            return False
        except OSError as error:
            log.error("flash policy server: cannot listen on port %s: %s", self.port, error.strerror)
            return False
        self.add_sockets(sockets)
        if self.port == 0:
            self.port = sockets[0].getsockname()[1]
        self.listening = True
        log.info("flash policy server listening on port %s", self.port)
        return True

    async def handle_stream(self, stream: IOStream, address: tuple[str, int]) -> None:
        try:
            data = await asyncio.wait_for(self._read_request(stream), self.timeout)
            if data.startswith(REQUEST):
                await stream.write(self.policy)
            else:
                log.info("flash policy server: not a policy request from %s", address[0])
        except (asyncio.TimeoutError, StreamClosedError):
            pass
        finally:
            stream.close()

    @staticmethod
    async def _read_request(stream: IOStream) -> bytes:
        data = b""
        while len(data) < len(REQUEST) + 1:
            data += await stream.read_bytes(len(REQUEST) + 1 - len(data), partial=True)
            if not REQUEST.startswith(data[: len(REQUEST)]) or data.startswith(REQUEST):
                break
        return data
