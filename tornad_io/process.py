"""Several worker processes on one port: ``serve(app, port, processes=N)``.

The parent binds the listening sockets, forks N workers and stays as a small
supervisor: it restarts a worker that dies, relays the workers' cluster
messages to each other, and on SIGTERM or SIGINT stops them all (each runs
``io.shutdown()``).

Every session id a worker creates starts with one character naming the worker
(:func:`owner_prefix`; ``[0-9a-zA-Z]``, so 0.6 ids keep their alphabet), followed
by the generation's usual random id. Before Tornado reads a connection, the
worker that accepted it peeks at the request line (``MSG_PEEK``: nothing is
consumed); when the ``sid=`` query parameter (Engine.IO) or the 0.6 session id
in the path names another worker, the connection's descriptor is passed
(``SCM_RIGHTS``) through the supervisor to that worker, which serves it as its
own. HTTP responses carry ``Connection: close`` under several processes, so the
next request of a client is peeked again on a new connection (see
docs/cluster.md, "One machine, several processes").

Nothing here lives in module state by accident: :func:`current_worker` is set
in each worker after the fork, and the servers made before the fork are
registered (weakly) so each worker gives them adapters of its own.
"""

from __future__ import annotations

import asyncio
import collections
import errno
import logging
import os
import selectors
import signal
import socket
import time
import weakref
from typing import TYPE_CHECKING, Any, Awaitable, Callable, Iterable

from tornado import httputil
from tornado.ioloop import IOLoop
from tornado.netutil import bind_sockets

from . import _tornado_compat as compat
from . import _worker as worker_state
from . import forwarding
from ._logsafe import safe_repr
from ._worker import MAX_PROCESSES as MAX_PROCESSES
from ._worker import Worker as Worker
from ._worker import current_worker as current_worker
from .forwarding import Forwarder
from .httpserver import BACKLOG, HTTPServer, _accept_with_backoff

if TYPE_CHECKING:
    from .socketio.server import Server

log = logging.getLogger("tornad_io.process")


_PEEK_BYTES = 4096
_PEEK_WAIT = 10.0  # seconds a new connection may take to send its request line
_MESSAGE_BYTES = 4 * 1024 * 1024  # socket buffers of the worker channels: the largest cluster message
_STOP_WAIT = 15.0  # seconds the supervisor waits for workers after SIGTERM, then SIGKILL


_servers: weakref.WeakSet[Server] = weakref.WeakSet()


def register_server(server: Server) -> None:
    """Remember *server*, so a worker forked after its creation gives it adapters of its own."""
    _servers.add(server)


# -- the worker's side ---------------------------------------------------------------


class WorkerChannel:
    """A worker's end of its ``SOCK_SEQPACKET`` socket to the supervisor.

    Messages: ``B<2-byte channel length><channel><payload>`` (a cluster message,
    relayed to every other worker), ``H<owner>[<host> <port>]`` with a descriptor (a connection
    for worker *owner*), ``N<count>`` (from the supervisor: the live worker count).
    """

    def __init__(self, sock: socket.socket, worker: Worker) -> None:
        self.sock = sock
        self.worker = worker
        sock.setblocking(False)
        self._outbox: collections.deque[tuple[bytes, socket.socket | None]] = collections.deque()
        self._subscribers: list[Callable[[str, bytes], None]] = []
        #: Serves a connection handed over by another worker (set by :class:`ProcessHTTPServer`).
        self.on_connection: Callable[[socket.socket, Any], None] | None = None
        #: Called when the supervisor goes away.
        self.on_lost: Callable[[], None] | None = None
        self._loop = asyncio.get_running_loop()
        self._loop.add_reader(sock.fileno(), self._readable)

    def subscribe(self, callback: Callable[[str, bytes], None]) -> None:
        """Call ``callback(channel, payload)`` for every cluster message from another worker."""
        self._subscribers.append(callback)

    def unsubscribe(self, callback: Callable[[str, bytes], None]) -> None:
        """Stop calling *callback*."""
        if callback in self._subscribers:
            self._subscribers.remove(callback)

    def publish(self, channel: str, payload: bytes) -> None:
        """Send a cluster message to every other worker."""
        name = channel.encode()
        message = b"B" + len(name).to_bytes(2, "big") + name + payload
        if len(message) > _MESSAGE_BYTES:
            log.warning(
                "worker %d: a cluster message of %d bytes is too large; dropped", self.worker.index, len(message)
            )
            return
        self._write(message, None)

    def hand_over(self, owner: int, connection: socket.socket, address: Any = None) -> None:
        """Pass *connection* to worker *owner* (closed here once sent), with the peer *address*
        to report (the client's, when a node forwarded the connection; else its own peer)."""
        log.debug("worker %d: connection handed to worker %d", self.worker.index, owner)
        named = b""
        if isinstance(address, tuple) and len(address) >= 2:
            named = f"{address[0]} {int(address[1])}".encode()
        self._write(b"H" + bytes((owner,)) + named, connection)

    def close(self) -> None:
        """Stop reading and close the socket."""
        self._loop.remove_reader(self.sock.fileno())
        self._loop.remove_writer(self.sock.fileno())
        self.sock.close()

    def _write(self, message: bytes, connection: socket.socket | None) -> None:
        self._outbox.append((message, connection))
        if len(self._outbox) == 1:
            self._flush()

    def _flush(self) -> None:
        while self._outbox:
            message, connection = self._outbox[0]
            try:
                if connection is None:
                    self.sock.send(message)
                else:
                    socket.send_fds(self.sock, [message], [connection.fileno()])
            except BlockingIOError:
                self._loop.add_writer(self.sock.fileno(), self._flush)
                return
            except OSError as error:
                log.warning("worker %d: cannot write to the supervisor: %s", self.worker.index, error)
            self._outbox.popleft()
            if connection is not None:
                connection.close()
        self._loop.remove_writer(self.sock.fileno())

    def _readable(self) -> None:
        for _ in range(64):
            try:
                message, fds, _flags, _address = socket.recv_fds(self.sock, _MESSAGE_BYTES, 1)
            except BlockingIOError:
                return
            except OSError:
                message, fds = b"", []
            if not message:
                self._loop.remove_reader(self.sock.fileno())
                if self.on_lost is not None:
                    self.on_lost()
                return
            self._dispatch(message, fds)

    def _dispatch(self, message: bytes, fds: list[int]) -> None:
        kind = message[:1]
        if kind == b"B":
            length = int.from_bytes(message[1:3], "big")
            channel = message[3 : 3 + length].decode()
            payload = message[3 + length :]
            for callback in list(self._subscribers):
                try:
                    callback(channel, payload)
                except Exception:  # noqa: BLE001 - one bad message must not stop the channel
                    log.exception("worker %d: cannot handle a cluster message", self.worker.index)
        elif kind == b"N":
            self.worker.count = int(message[1:])
        elif kind == b"H":
            for fd in fds:
                connection = socket.socket(fileno=fd)
                try:
                    address = connection.getpeername()
                except OSError:
                    connection.close()
                    continue
                if len(message) > 1:  # the address the handing worker saw (a forwarded client's)
                    host, _, port = message[1:].decode(errors="replace").rpartition(" ")
                    if port.isdigit():
                        address = (host, int(port))
                if self.on_connection is None:
                    connection.close()
                else:
                    self.on_connection(connection, address)
        else:
            for fd in fds:
                os.close(fd)


class ProcessHTTPServer(HTTPServer):
    """:class:`~tornad_io.HTTPServer` for one worker of several: it peeks at each connection's
    request line and hands a connection for another worker's session to that worker."""

    def initialize(  # type: ignore[override]  # adds the channel and forwarder, keeps the rest
        self,
        request_callback: Any,
        channel: WorkerChannel | None = None,
        forwarder: Forwarder | None = None,
        **kwargs: Any,
    ) -> None:
        """Called by Tornado's constructor; *channel* is this worker's :class:`WorkerChannel` (several
        processes), *forwarder* this node's :class:`~tornad_io.forwarding.Forwarder` (several nodes)."""
        super().initialize(request_callback, **kwargs)
        self._channel = channel
        self._forwarder = forwarder

    def start_request(self, server_conn: object, request_conn: httputil.HTTPConnection) -> httputil.HTTPMessageDelegate:
        """Tornado's delegate for one request, closing the connection after the response unless it
        upgrades to WebSocket: the client's next request comes on a new connection, peeked again."""
        return _CloseAfterResponse(super().start_request(server_conn, request_conn), request_conn)

    def add_sockets(self, sockets: Iterable[socket.socket]) -> None:
        """Start accepting on *sockets*, routing each connection to its session's worker."""

        def accept(sock: socket.socket, on_connection: Callable[[socket.socket, Any], None]) -> Callable[[], None]:
            route = self._router(on_connection)
            if self._channel is not None:
                self._channel.on_connection = self._router(on_connection, handed=True)
            return _accept_with_backoff(sock, route)

        if not compat.add_accept_handlers(self, sockets, accept):
            raise RuntimeError("serving several processes needs the Tornado internals that tornad_io checks")

    def _router(
        self, on_connection: Callable[[socket.socket, Any], None], handed: bool = False
    ) -> Callable[[socket.socket, Any], None]:
        channel = self._channel
        forwarder = self._forwarder
        if channel is None and forwarder is None:
            return on_connection
        node = forwarder.node if forwarder is not None else None

        def route(connection: socket.socket, address: Any) -> None:
            if handed:  # from another worker of this node, which has looked already
                on_connection(connection, address)
                return
            connection.setblocking(False)
            io_loop = IOLoop.current()
            fd = connection.fileno()
            deadline = io_loop.time() + _PEEK_WAIT
            state: dict[str, Any] = {"timeout": None}

            def done() -> None:
                io_loop.remove_handler(fd)
                if state["timeout"] is not None:
                    io_loop.remove_timeout(state["timeout"])

            def again() -> None:
                io_loop.remove_handler(fd)  # part of a line: look again shortly
                io_loop.call_later(0.005, lambda: io_loop.add_handler(fd, check, IOLoop.READ))

            def check(*_: Any) -> None:
                nonlocal address
                try:
                    head = connection.recv(_PEEK_BYTES, socket.MSG_PEEK)
                except BlockingIOError:
                    return
                except OSError:
                    done()
                    connection.close()
                    return
                forwarded = head.startswith(forwarding.PREAMBLE)
                complete = forwarding.preamble_complete(head) if forwarded else b"\n" in head
                if head and not complete and len(head) < _PEEK_BYTES and io_loop.time() < deadline:
                    again()
                    return
                done()
                if forwarded:
                    found = forwarding.read_preamble(head, node.token) if node is not None else None
                    if found is None:
                        log.warning("refused a connection from %s posing as a forwarding node", safe_repr(address))
                        connection.close()
                        return
                    length, address = found
                    try:
                        connection.recv(length)  # the forwarding line: peeked, so there in full
                    except OSError:
                        connection.close()
                        return
                    head = head[length:]
                tag, owner = worker_state.owner(head)
                if forwarder is not None and node is not None and tag is not None and tag != node.tag:
                    if forwarded:  # the owner was named by another node: never forward twice
                        on_connection(connection, address)
                    else:
                        forwarder.forward(connection, address, tag, on_connection, head)
                    return
                if (
                    channel is not None
                    and owner is not None
                    and 0 <= owner < MAX_PROCESSES
                    and owner != channel.worker.index
                ):
                    channel.hand_over(owner, connection, address)
                else:
                    on_connection(connection, address)

            def expire() -> None:
                state["timeout"] = None
                io_loop.remove_handler(fd)
                on_connection(connection, address)  # Tornado answers or times it out

            state["timeout"] = io_loop.call_at(deadline, expire)
            io_loop.add_handler(fd, check, IOLoop.READ)

        return route


class _CloseAfterResponse(httputil.HTTPMessageDelegate):
    """A request delegate that asks Tornado to close the connection once the response is written."""

    def __init__(self, delegate: httputil.HTTPMessageDelegate, connection: httputil.HTTPConnection) -> None:
        self.delegate = delegate
        self.connection = connection

    def headers_received(
        self, start_line: httputil.RequestStartLine | httputil.ResponseStartLine, headers: httputil.HTTPHeaders
    ) -> Awaitable[None] | None:
        if "upgrade" not in headers.get("Connection", "").lower():  # an upgraded connection stays open
            compat.close_after_response(self.connection)
        return self.delegate.headers_received(start_line, headers)

    def data_received(self, chunk: bytes) -> Awaitable[None] | None:
        return self.delegate.data_received(chunk)

    def finish(self) -> None:
        self.delegate.finish()

    def on_connection_close(self) -> None:
        self.delegate.on_connection_close()


# -- the supervisor ------------------------------------------------------------------


class _Slot:
    __slots__ = ("index", "pid", "sock", "started")

    def __init__(self, index: int, pid: int, sock: socket.socket) -> None:
        self.index = index
        self.pid = pid
        self.sock = sock
        self.started = time.monotonic()


class Supervisor:
    """The parent process: forks the workers, restarts them, relays their messages, stops them."""

    def __init__(self, count: int, run_worker: Callable[[Worker, socket.socket], None]) -> None:
        self.count = count
        self.run_worker = run_worker
        self.slots: dict[int, _Slot] = {}
        self.stopping = False
        self.selector = selectors.DefaultSelector()
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)

    def run(self) -> None:
        """Start the workers and supervise them until SIGTERM or SIGINT; return when all have exited."""
        previous = {sig: signal.signal(sig, self._on_signal) for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGCHLD)}
        old_wakeup = signal.set_wakeup_fd(self._wake_w.fileno())
        self.selector.register(self._wake_r, selectors.EVENT_READ, None)
        try:
            for index in range(self.count):
                self._spawn(index)
            self._broadcast_count()
            deadline: float | None = None
            while self.slots or not self.stopping:
                for key, _events in self.selector.select(timeout=0.5):
                    if key.data is None:
                        self._drain_wakeup()
                    else:
                        self._relay(key.data)
                self._reap()
                if self.stopping:
                    deadline = deadline or time.monotonic() + _STOP_WAIT
                    if time.monotonic() > deadline:
                        for slot in self.slots.values():
                            self._kill(slot.pid, signal.SIGKILL)
        finally:
            signal.set_wakeup_fd(old_wakeup)
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    def _on_signal(self, signum: int, _frame: Any) -> None:
        if signum in (signal.SIGTERM, signal.SIGINT) and not self.stopping:
            self.stopping = True
            log.info("supervisor: stopping %d workers", len(self.slots))
            for slot in self.slots.values():
                self._kill(slot.pid, signal.SIGTERM)

    @staticmethod
    def _kill(pid: int, sig: int) -> None:
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            pass

    def _drain_wakeup(self) -> None:
        try:
            while self._wake_r.recv(512):
                pass
        except BlockingIOError:
            pass

    def _spawn(self, index: int) -> None:
        parent, child = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        for sock in (parent, child):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, _MESSAGE_BYTES)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, _MESSAGE_BYTES)
        pid = os.fork()
        if pid == 0:  # the worker
            code = 0
            try:
                parent.close()
                for slot in self.slots.values():
                    slot.sock.close()
                self.selector.close()
                signal.set_wakeup_fd(-1)
                self._wake_r.close()
                self._wake_w.close()
                for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGCHLD):
                    signal.signal(sig, signal.SIG_DFL)
                worker = worker_state.start(index, self.count)
                self.run_worker(worker, child)
            except BaseException:  # noqa: BLE001 - a worker never returns into the supervisor's code
                log.exception("worker %d failed", index)
                code = 1
            finally:
                logging.shutdown()
                os._exit(code)
        child.close()
        parent.settimeout(5.0)
        slot = _Slot(index, pid, parent)
        self.slots[index] = slot
        self.selector.register(parent, selectors.EVENT_READ, slot)
        log.info("worker %d started: pid %d", index, pid)

    def _reap(self) -> None:
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            slot = next((s for s in self.slots.values() if s.pid == pid), None)
            if slot is None:
                continue
            self.selector.unregister(slot.sock)
            slot.sock.close()
            del self.slots[slot.index]
            if self.stopping:
                log.info("worker %d (pid %d) stopped", slot.index, pid)
                continue
            log.warning("worker %d (pid %d) exited (status %d); restarting it", slot.index, pid, status)
            if time.monotonic() - slot.started < 1.0:
                time.sleep(0.5)  # a worker that dies at once: do not fork in a tight loop
            self._spawn(slot.index)
            self._broadcast_count()

    def _broadcast_count(self) -> None:
        message = b"N" + str(len(self.slots)).encode()
        for slot in list(self.slots.values()):
            self._send(slot, message, [])

    def _send(self, slot: _Slot, message: bytes, fds: list[int]) -> None:
        try:
            if fds:
                socket.send_fds(slot.sock, [message], fds)
            else:
                slot.sock.send(message)
        except OSError as error:
            if error.errno not in (errno.EPIPE, errno.ECONNRESET):
                log.warning("supervisor: cannot write to worker %d: %s", slot.index, error)

    def _relay(self, slot: _Slot) -> None:
        try:
            message, fds, _flags, _address = socket.recv_fds(slot.sock, _MESSAGE_BYTES, 1)
        except OSError:
            return
        if not message:
            return  # the worker is exiting; _reap deals with it
        try:
            kind = message[:1]
            if kind == b"B":
                for other in list(self.slots.values()):
                    if other is not slot:
                        self._send(other, message, [])
            elif kind == b"H" and fds:
                target = self.slots.get(message[1])
                if target is not None:
                    self._send(target, b"H" + message[2:], fds)
        finally:
            for fd in fds:
                os.close(fd)


# -- serve ---------------------------------------------------------------------------


def serve(
    app: Any,
    port: int,
    address: str = "",
    processes: int = 1,
    on_worker_start: Callable[[Worker | None], Any] | None = None,
    advertise: str | bool | None = None,
    **server_kwargs: Any,
) -> None:
    """Serve the Tornado application *app* on *port* until SIGTERM or SIGINT.

    With *processes* > 1 (0: one per core), the listening sockets are bound
    here and N worker processes are forked to serve them; this process
    supervises them (see the module's docstring). Sessions stay with the worker
    that created them; the servers' default adapter becomes a local
    inter-process adapter (:class:`~tornad_io.cluster.local.ProcessAdapter`), so
    broadcasts, rooms, fetches and server-side emits span the workers; a cluster
    adapter given to a server is used instead, with an identity of its own in
    each worker.

    With *advertise* (``"host:port"`` where the other nodes reach this one, or
    True for this host's address and *port*), this is one node of several
    behind a load balancer that needs no sticky sessions: a request for another
    node's session is forwarded to that node (:mod:`tornad_io.forwarding`). It
    needs a server with a Redis cluster adapter (classic, sharded or Streams),
    whose Redis holds the nodes' addresses.

    *on_worker_start* is called in each worker (or the single process, with
    None) once it listens. *server_kwargs* go to :class:`~tornad_io.HTTPServer`.
    Call it with no event loop running.
    """
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        pass
    else:
        raise RuntimeError("serve() runs its own event loop (and forks): call it with no loop running")
    if processes == 0:
        processes = os.cpu_count() or 1
    if not 1 <= processes <= MAX_PROCESSES:
        raise ValueError(f"processes must be between 0 and {MAX_PROCESSES}, not {processes}")
    node_address: tuple[str, int] | None = None
    if advertise:
        node_address = (
            (socket.gethostbyname(socket.gethostname()), port)
            if advertise is True
            else forwarding.parse_address(str(advertise), port)
        )
        if not any(callable(getattr(server.adapter_class, "node_directory", None)) for server in list(_servers)):
            raise ValueError(
                "advertise= forwards requests between the nodes of a Redis cluster: give the Server "
                "adapter=redis_adapter(url) (or sharded_redis_adapter, redis_streams_adapter)"
            )
        worker_state.set_node(forwarding.new_node())
    sockets = bind_sockets(port, address=address or None, backlog=BACKLOG)
    try:
        if processes == 1:
            asyncio.run(_serve_one(app, sockets, None, None, on_worker_start, node_address, server_kwargs))
            return
        for server in list(_servers):
            server._check_fork()

        def run_worker(worker: Worker, sock: socket.socket) -> None:
            asyncio.run(_serve_one(app, sockets, worker, sock, on_worker_start, node_address, server_kwargs))

        Supervisor(processes, run_worker).run()
    finally:
        worker_state.set_node(None)
        for sock in sockets:
            sock.close()


def _node_directory() -> forwarding.NodeDirectory:
    for server in list(_servers):
        make = getattr(server.adapter_class, "node_directory", None)
        if callable(make):
            directory: forwarding.NodeDirectory = make()
            return directory
    raise RuntimeError("no server with a Redis cluster adapter to keep the node directory")


async def _serve_one(
    app: Any,
    sockets: list[socket.socket],
    worker: Worker | None,
    sock: socket.socket | None,
    on_worker_start: Callable[[Worker | None], Any] | None,
    node_address: tuple[str, int] | None,
    server_kwargs: dict[str, Any],
) -> None:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    channel: WorkerChannel | None = None
    if worker is not None and sock is not None:
        channel = worker.channel = WorkerChannel(sock, worker)
        channel.on_lost = stop.set
        for server in list(_servers):
            server._after_fork()
    servers = list(_servers)
    for server in servers:
        await server.init()
    forwarder: Forwarder | None = None
    node = worker_state.current_node()
    if node_address is not None and node is not None:
        forwarder = Forwarder(_node_directory(), node, node_address)
        await forwarder.start()  # announced before the first session id naming this node exists
    http: HTTPServer
    if channel is not None or forwarder is not None:
        http = ProcessHTTPServer(app, channel=channel, forwarder=forwarder, **server_kwargs)
    else:
        http = HTTPServer(app, **server_kwargs)
    http.add_sockets(sockets)
    log.info(
        "worker %s: listening (pid %d)%s",
        "-" if worker is None else worker.index,
        os.getpid(),
        "" if node is None or node_address is None else f", node {node.tag} at {node_address[0]}:{node_address[1]}",
    )
    if on_worker_start is not None:
        on_worker_start(worker)
    await stop.wait()
    http.stop()
    for server in list(_servers):
        await server.shutdown()
    if forwarder is not None:
        await forwarder.stop()
    if channel is not None:
        channel.close()
