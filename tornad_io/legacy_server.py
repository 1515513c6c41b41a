"""``SocketIOServer(application)``: the original API's one-line start."""

from __future__ import annotations

import asyncio
import logging
import signal
from typing import Any

import tornado.web

from .httpserver import HTTPServer
from .websocket.flash import FlashPolicyServer

log = logging.getLogger("tornad_io.seed")


class SocketIOServer:
    """Listen on the application's ``socket_io_port`` and run the loop.

    Reads the application settings ``socket_io_port`` (default 8888),
    ``enabled_protocols``, ``flash_policy_port`` (default 843) and
    ``flash_policy_file``, starts the Flash policy server when ``flashsocket``
    is enabled, and runs the asyncio loop until SIGINT or SIGTERM. Called from
    inside a running loop it only starts listening (see :meth:`start`).

    The HTTP server is a :class:`tornad_io.HTTPServer`: idle, header and body
    timeouts and a body cap sized for the routes' ``max_http_buffer_size`` apply
    unless *server_kwargs* say otherwise; the Flash policy server listens on
    ``socket_io_address`` too.

    :ivar application: The ``tornado.web.Application`` served.
    :ivar port: The port to listen on (``socket_io_port``).
    :ivar address: The address to listen on (``socket_io_address``; ``""``: all).
    :ivar protocols: The ``enabled_protocols`` setting, or None for all.
    :ivar flash_policy_port: The Flash policy server's port (``flash_policy_port``).
    :ivar flash_policy_file: The policy file to serve (``flash_policy_file``), or None for the packaged one.
    :ivar server_kwargs: The keyword arguments for :class:`tornad_io.HTTPServer`.
    :ivar processes: How many worker processes serve the port (``processes=``; 0: one per core). With
        more than one, the constructor forks them and supervises them until SIGTERM or SIGINT
        (:func:`tornad_io.serve`); the Flash policy server runs in worker 0.
    :ivar http: The ``HTTPServer`` once started, else None.
    :ivar flash: The :class:`~tornad_io.websocket.flash.FlashPolicyServer` once started, if Flash is enabled.
    """

    def __init__(
        self,
        application: tornado.web.Application,
        auto_start: bool = True,
        processes: int = 1,
        **server_kwargs: Any,
    ) -> None:
        self.application = application
        settings = application.settings
        self.port = int(settings.get("socket_io_port", 8888))
        self.address = settings.get("socket_io_address", "")
        self.protocols = list(settings.get("enabled_protocols", [])) or None
        self.flash_policy_port = int(settings.get("flash_policy_port", 843))
        self.flash_policy_file = settings.get("flash_policy_file")
        self.server_kwargs = server_kwargs
        self.http: HTTPServer | None = None
        self.flash: FlashPolicyServer | None = None
        self.processes = processes
        if not auto_start:
            return
        if processes != 1:
            self.serve_processes()
            return
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            asyncio.run(self._serve_forever())
        else:
            self.start()

    @property
    def flash_enabled(self) -> bool:
        """Whether ``flashsocket`` is enabled, so the Flash policy server runs."""
        return self.protocols is None or "flashsocket" in self.protocols

    def start(self) -> None:
        """Start listening (needs a running loop)."""
        kwargs = dict(self.server_kwargs)
        kwargs.setdefault("max_http_buffer_size", _largest_body(self.application))
        self.http = HTTPServer(self.application, **kwargs)
        self.http.listen(self.port, address=self.address)
        log.info("socket.io server listening on port %s", self.port)
        if self.flash_enabled:
            self.flash = FlashPolicyServer(
                port=self.flash_policy_port, policy_file=self.flash_policy_file, address=self.address
            )

    def serve_processes(self) -> None:
        """Fork ``processes`` workers on the port and supervise them until SIGTERM or SIGINT."""
        from ._worker import Worker
        from .process import serve

        kwargs = dict(self.server_kwargs)
        kwargs.setdefault("max_http_buffer_size", _largest_body(self.application))

        def started(worker: Worker | None) -> None:
            log.info("socket.io worker %s listening on port %s", worker.index if worker else 0, self.port)
            if self.flash_enabled and (worker is None or worker.index == 0):
                self.flash = FlashPolicyServer(
                    port=self.flash_policy_port, policy_file=self.flash_policy_file, address=self.address
                )

        serve(self.application, self.port, self.address, self.processes, on_worker_start=started, **kwargs)

    def stop(self) -> None:
        """Stop listening (HTTP and Flash policy); the loop goes on."""
        if self.http is not None:
            self.http.stop()
        if self.flash is not None:
            self.flash.stop()

    async def _serve_forever(self) -> None:
        self.start()
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()
        self.stop()


def _largest_body(application: tornado.web.Application) -> int:
    """The largest ``max_http_buffer_size`` among the application's Socket.IO routes."""
    sizes = [1_000_000]
    for rule in getattr(application.wildcard_router, "rules", ()):
        engine = (rule.target_kwargs or {}).get("engine")
        options = getattr(engine, "options", None)
        if options is not None:
            sizes.append(options.max_http_buffer_size)
    return max(sizes)
