"""A custom adapter written against the documented adapter seam only, with real clients.

``JournalAdapter`` delivers broadcasts itself (it does not call the in-memory
adapter's delivery), keeps a journal of every delivery, and mirrors every
broadcast of ``/`` to the sockets of ``/mirror``. It uses only public names:
the :class:`~tornad_io.Adapter` base class, :class:`~tornad_io.adapter.Recipient`
and :class:`~tornad_io.adapter.AckWaiter`, ``Namespace.next_ack_id()`` and
``Namespace.sockets``; a test below checks its source for underscore names.
The clients are python-socketio's ``AsyncClient`` and socket.io-client under Node.
"""

from __future__ import annotations

import ast
import asyncio
import inspect
import sys
import textwrap
from typing import Any, Callable, Hashable, Iterable, NamedTuple

import pytest
import socketio

from tornad_io import AckTimeout, Server, Socket
from tornad_io.adapter import AckWaiter, Adapter, BroadcastOptions, Recipient
from tornad_io.socketio.codec import EVENT, Packet

from .conftest import WAIT, NodeClients, wait_until

MIRROR = "/mirror"


class Delivery(NamedTuple):
    """One packet written to one socket."""

    sid: str
    nsp: str
    event: str
    ack_id: int | None
    volatile: bool


class Answer:
    """One recipient's wait for its acknowledgement of a broadcast (an :class:`AckWaiter`)."""

    __slots__ = ("sid", "on_ack", "on_gone")

    def __init__(
        self, sid: str, on_ack: Callable[[str | None, Any], None], on_gone: Callable[[str], None] | None
    ) -> None:
        self.sid = sid
        self.on_ack = on_ack
        self.on_gone = on_gone

    def __call__(self, *args: Any) -> None:
        self.on_ack(self.sid, args[0] if args else None)

    def gone(self) -> None:
        if self.on_gone is not None:
            self.on_gone(self.sid)


class JournalAdapter(Adapter):
    """Delivers through the Recipient interface, journals every delivery, mirrors ``/`` to ``/mirror``."""

    def __init__(self, nsp: Any) -> None:
        super().__init__(nsp)
        self.journal: list[Delivery] = []
        #: One entry per encoding of a packet (so a broadcast shows how often it was encoded).
        self.encoded: list[Hashable] = []

    def deliver(
        self,
        packet: Packet,
        recipients: Iterable[Recipient],
        volatile: bool,
        waiter: Callable[[str], AckWaiter] | None = None,
    ) -> list[str]:
        """Encode *packet* once per encoding and write it to *recipients*; the ids asked to acknowledge."""
        encoded: dict[Hashable, list[str | bytes]] = {}
        asked: list[str] = []
        for socket in recipients:
            packets = encoded.get(socket.encoding)
            if packets is None:
                packets = encoded[socket.encoding] = socket.encode_packet(packet)
                self.encoded.append(socket.encoding)
            if waiter is not None and packet.id is not None and socket.supports_acks:
                socket.expect_ack(packet.id, waiter(socket.id))
                asked.append(socket.id)
            socket.notify_outgoing(packet.data)
            socket.write_packets(packets, volatile)
            self.journal.append(Delivery(socket.id, packet.nsp, packet.data[0], packet.id, volatile))
        return asked

    def mirror(self, packet: Packet, volatile: bool) -> None:
        if self.nsp.name == MIRROR:
            return
        mirror = self.nsp.server.of(MIRROR)
        copy = Packet(EVENT, MIRROR, packet.data)
        mirror_adapter = mirror.adapter
        recipients = list(mirror.sockets.values())
        if isinstance(mirror_adapter, JournalAdapter):
            mirror_adapter.deliver(copy, recipients, volatile)
        else:  # pragma: no cover - every namespace of the test server has this adapter
            raise AssertionError(mirror_adapter)

    def broadcast(self, packet: Packet, opts: BroadcastOptions) -> None:
        self.deliver(packet, self.select(opts), opts.volatile)
        self.mirror(packet, opts.volatile)

    def broadcast_with_ack(
        self,
        packet: Packet,
        opts: BroadcastOptions,
        client_count: Callable[[int], None],
        on_ack: Callable[[str | None, Any], None],
        on_gone: Callable[[str], None] | None = None,
    ) -> list[str]:
        packet.id = self.nsp.next_ack_id()
        asked = self.deliver(packet, self.select(opts), opts.volatile, lambda sid: Answer(sid, on_ack, on_gone))
        client_count(len(asked))
        return asked


def journal(io: Server, nsp: str = "/") -> JournalAdapter:
    adapter = io.of(nsp).adapter
    assert isinstance(adapter, JournalAdapter)
    return adapter


def test_the_adapter_uses_no_private_name() -> None:
    """The custom adapter's code touches no ``_name`` of the package: the seam is public."""
    offending = []
    for cls in (JournalAdapter, Answer):
        tree = ast.parse(textwrap.dedent(inspect.getsource(cls)))
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and node.attr.startswith("_") and not node.attr.startswith("__"):
                offending.append(f"{cls.__name__}: .{node.attr}")
    for node in ast.walk(ast.parse(inspect.getsource(sys.modules[__name__]))):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("tornad_io"):
            private = [part for part in (node.module or "").split(".") if part.startswith("_")]
            private += [alias.name for alias in node.names if alias.name.startswith("_")]
            offending.extend(f"import {node.module}: {name}" for name in private)
    assert offending == []


class Setup(NamedTuple):
    io: Server
    py: socketio.AsyncClient
    sids: dict[str, str]  # client name -> socket id on the server ("py", "red", "plain", "mirror")
    py_events: asyncio.Queue[tuple[str, tuple[Any, ...]]]
    py_question: dict[str, Any]


@pytest.fixture
async def setup(serve: Any, node: NodeClients) -> Any:
    """One server with JournalAdapter; clients: py (python-socketio, in room red), red (Node, in room red),
    plain (Node) on ``/``, and mirror (Node) on ``/mirror``."""
    io = Server(adapter=JournalAdapter)
    io.of(MIRROR)
    outgoing: list[tuple[str, tuple[Any, ...]]] = []

    @io.on("join")
    def join(socket: Socket, room: str) -> bool:
        socket.join(room)
        socket.on_any_outgoing(lambda event, *args: outgoing.append((event, args)))
        return True

    server = await serve(io.routes())
    py = socketio.AsyncClient(reconnection=False)
    py_events: asyncio.Queue[tuple[str, tuple[Any, ...]]] = asyncio.Queue()
    py_question: dict[str, Any] = {"answer": "py answer", "hold": None}

    @py.on("*")
    def any_event(event: str, *args: Any) -> None:
        py_events.put_nowait((event, args))

    @py.on("question")
    async def question(*args: Any) -> Any:
        hold = py_question["hold"]
        if hold is not None:
            await hold.wait()
        py_events.put_nowait(("question", args))
        return py_question["answer"]

    await py.connect(server.url, transports=["websocket"])
    assert await py.call("join", "red", timeout=WAIT) is True
    sids = {"py": py.get_sid()}
    for name, path in (("red", "/"), ("plain", "/"), ("mirror", MIRROR)):
        node.connect(name, server.url + path, transports=["websocket"], acks={"question": f"{name} answer"})
        sids[name] = (await node.expect("connect", name))["sid"]
    node.emit("red", "join", "red", ack=True, tag="joined")
    await node.expect("ack", "red", tag="joined")
    journal(io).journal.clear()
    journal(io, MIRROR).journal.clear()
    yield Setup(io, py, sids, py_events, py_question), node, outgoing
    if py.connected:
        await py.disconnect()


async def next_py_event(setup: Setup) -> tuple[str, tuple[Any, ...]]:
    return await asyncio.wait_for(setup.py_events.get(), WAIT)


async def test_broadcast_reaches_every_client_encoded_once_and_mirrored(setup: Any) -> None:
    s, node, outgoing = setup
    await s.io.emit("news", "hello", {"n": 1})
    assert await next_py_event(s) == ("news", ("hello", {"n": 1}))
    for name in ("red", "plain", "mirror"):
        report = await node.expect("event", name, event="news")
        assert report["args"] == ["hello", {"n": 1}]
    main, mirror = journal(s.io), journal(s.io, MIRROR)
    assert sorted(d.sid for d in main.journal) == sorted(s.sids[n] for n in ("py", "red", "plain"))
    assert {(d.nsp, d.event, d.ack_id, d.volatile) for d in main.journal} == {("/", "news", None, False)}
    assert len(main.encoded) == 1  # three recipients of one encoding: encoded once
    assert mirror.journal == [Delivery(s.sids["mirror"], MIRROR, "news", None, False)]
    # The outgoing listener of the server socket of "red" was told.
    await wait_until(lambda: ("news", ("hello", {"n": 1})) in outgoing)


async def test_room_targeted_and_excluding_emits(setup: Any) -> None:
    s, node, _ = setup
    s.io.to("red").emit("alert", 1)
    s.io.except_("red").emit("calm", 2)
    s.io.volatile.emit("after", 3)  # every client gets it after the two above: order proves absence
    assert await next_py_event(s) == ("alert", (1,))
    assert await next_py_event(s) == ("after", (3,))
    await node.expect("event", "plain", event="after")
    await node.expect("event", "red", event="after")
    assert [r["event"] for r in node.reports if r.get("type") == "event" and r["id"] == "red"] == ["alert", "after"]
    assert [r["event"] for r in node.reports if r.get("type") == "event" and r["id"] == "plain"] == ["calm", "after"]
    main = journal(s.io)
    alert = {d.sid for d in main.journal if d.event == "alert"}
    calm = {d.sid for d in main.journal if d.event == "calm"}
    assert alert == {s.sids["py"], s.sids["red"]}
    assert calm == {s.sids["plain"]}
    assert {d.volatile for d in main.journal if d.event == "after"} == {True}


async def test_broadcast_with_acks_answers_and_counts(setup: Any) -> None:
    s, node, _ = setup
    responses = await s.io.timeout(WAIT).emit_with_ack("question", 42)
    assert sorted(responses) == ["plain answer", "py answer", "red answer"]
    assert responses.by_sid == {
        s.sids["py"]: "py answer",
        s.sids["red"]: "red answer",
        s.sids["plain"]: "plain answer",
    }
    asked = [d for d in journal(s.io).journal if d.event == "question"]
    assert len(asked) == 3 and len({d.ack_id for d in asked}) == 1 and asked[0].ack_id is not None

    # A room, with a callback: called once, with the answers of the room's two clients.
    got: asyncio.Future[tuple[Any, list[Any]]] = asyncio.get_running_loop().create_future()
    s.io.to("red").timeout(WAIT).emit("question", 43, callback=lambda error, answers: got.set_result((error, answers)))
    error, answers = await asyncio.wait_for(got, WAIT)
    assert error is None and sorted(answers) == ["py answer", "red answer"]

    # A client that does not answer in time: the others' answers and the missing one.
    s.py_question["hold"] = asyncio.Event()
    with pytest.raises(AckTimeout) as raised:
        await s.io.timeout(0.5).emit_with_ack("question", 44)
    assert raised.value.responses == {s.sids["red"]: "red answer", s.sids["plain"]: "plain answer"}
    assert raised.value.missing == [s.sids["py"]]
    s.py_question["hold"].set()

    # Without a timeout, a recipient that disconnects is not waited for.
    s.py_question["hold"] = asyncio.Event()
    waiting = asyncio.ensure_future(s.io.emit_with_ack("question", 45))
    await wait_until(lambda: sum(1 for d in journal(s.io).journal if d.event == "question") == 3 + 2 + 3 + 3)
    await node.expect("event", "plain", event="question", args=[45])
    await s.py.disconnect()
    assert sorted(await asyncio.wait_for(waiting, WAIT)) == ["plain answer", "red answer"]
    s.py_question["hold"].set()


async def test_counting_sockets(setup: Any) -> None:
    s, node, _ = setup
    adapter = journal(s.io)
    assert adapter.sockets() == {s.sids[n] for n in ("py", "red", "plain")}
    assert adapter.sockets(["red"]) == {s.sids["py"], s.sids["red"]}
    assert len(await s.io.fetch_sockets()) == 3
    assert {socket.id for socket in await s.io.in_("red").fetch_sockets()} == {s.sids["py"], s.sids["red"]}
    assert len(await s.io.of(MIRROR).fetch_sockets()) == 1
    assert await adapter.server_count() == 1
    node.send(cmd="disconnect", id="red")
    await wait_until(lambda: adapter.sockets(["red"]) == {s.sids["py"]})
    assert len(await s.io.fetch_sockets()) == 2
