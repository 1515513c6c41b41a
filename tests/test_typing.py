"""User code type-checks under ``mypy --strict``: decorators keep the function's type,
options are checked keyword arguments, adapters and fetched sockets are typed."""

from __future__ import annotations

import re

from .typecheck import mypy_strict

GOOD = """
import re
from typing import Any, Callable, Coroutine

from typing_extensions import assert_type

from tornad_io import (
    Adapter,
    FetchedSocket,
    Handshake,
    Namespace,
    RemoteHandshake,
    Server,
    ServerOptionsDict,
    Socket,
)
from tornad_io.cluster import RedisAdapter, redis_adapter, sharded_redis_adapter

io = Server(ping_interval=10, ping_timeout=5.5, transports=("websocket",), cors_allowed_origins=["https://a.example"])
options: ServerOptionsDict = {"path": "/io/", "max_connections": None}
other = Server(**options)
clustered = Server(adapter=redis_adapter("redis://127.0.0.1:6379/0", key="app"))
sharded = Server(adapter=sharded_redis_adapter("redis://127.0.0.1:6379/0"))
plain = Server(adapter=Adapter)


class MyAdapter(Adapter):
    pass


custom = Server(adapter=MyAdapter)
by_function = Server(adapter=lambda nsp: MyAdapter(nsp))
assert_type(redis_adapter("redis://x")(io.sockets), RedisAdapter)


@io.use
def authenticate(socket: Socket) -> None:
    pass


@io.use
async def authenticate_later(socket: Socket) -> None:
    pass


@io.on("connect")
def connect(socket: Socket) -> None:
    socket.join("lobby")


@io.on("chat")
async def chat(socket: Socket, text: str) -> str:
    return text


@io.event
def ping(socket: Socket) -> int:
    return 1


@io.on_any
def anything(socket: Socket, event: str, *args: Any) -> None:
    pass


@io.on_server_side_emit("hello")
def hello(greeting: str) -> str:
    return greeting


def later(socket: Socket) -> None:
    pass


registered: Callable[[Socket], None] = io.on("later", later)
connect_again: Callable[[Socket], None] = connect
chat_again: Callable[[Socket, str], Coroutine[Any, Any, str]] = chat

admin = io.of("/admin")


@admin.on("kick")
def kick(socket: Socket, who: str) -> bool:
    return True


@admin.use
def only_admins(socket: Socket) -> None:
    pass


class Chat(Namespace):
    def on_say(self, socket: Socket, text: str) -> str:
        return "ok"


chat_nsp = io.register_namespace(Chat("/chat"))
dynamic = io.of(re.compile(r"/tenant-\\d+"))


def on_socket(socket: Socket) -> None:
    @socket.on("private")
    def private(text: str) -> str:
        return text

    @socket.use
    def every_packet(packet: list[Any]) -> None:
        pass

    @socket.on_any
    def any_event(event: str, *args: Any) -> None:
        pass

    handshake: Handshake = socket.handshake
    auth: dict[str, Any] = handshake.auth
    assert_type(socket.server, Server)


async def fetch() -> None:
    sockets = await io.fetch_sockets()
    assert_type(sockets, list[FetchedSocket])
    for s in sockets:
        rooms: set[str] = s.rooms
        sid: str = s.id
        handshake: Handshake | RemoteHandshake = s.handshake
        address: str = s.handshake.address
        token: Any = s.handshake.auth.get("token")
        s.emit("hello", 1, 2)
        s.join(["a", "b"])
        s.leave("a")
        s.disconnect(close=True)
    in_room = await io.in_("room").fetch_sockets()
    assert_type(in_room, list[FetchedSocket])
"""

# Each line that must fail ends with "# E: <part of mypy's message>".
BAD = """
from tornad_io import Server, Socket
from tornad_io.cluster import redis_adapter

io = Server(ping_interval=(25, 5))  # E: Argument "ping_interval" to "Server" has incompatible type "tuple[int, int]"
io2 = Server(pingInterval=25)  # E: Unexpected keyword argument "pingInterval"
io3 = Server(adapter=redis_adapter)  # E: Argument "adapter" to "Server" has incompatible type
io4 = Server(transports="websocket")  # E: Argument "transports" to "Server" has incompatible type "str"


@io.on("chat")
def chat(socket: Socket, text: str) -> str:
    return text


chat(1, "x")  # E: Argument 1 to "chat" has incompatible type "int"


io.emit("news", room="sports")  # E: Argument "room" to "emit" of "Server" has incompatible type "str"
io.to("sports").emit("news", skip_sid="x")  # E: Argument "skip_sid" to "emit" of "BroadcastOperator"


@io.use  # E: Value of type variable "ConnectMiddlewareT"
def two_arguments(socket: Socket, extra: int) -> None:
    pass
"""


def test_user_code_type_checks_strictly() -> None:
    errors, output = mypy_strict({"good_usage": GOOD, "bad_usage": BAD})
    assert errors["good_usage"] == [], output
    expected: dict[int, str] = {}
    for number, line in enumerate(BAD.splitlines(), 1):
        if "# E: " in line:
            expected[number] = line.split("# E: ", 1)[1]
    found: dict[int, list[str]] = {}
    for number, message in errors["bad_usage"]:
        found.setdefault(number, []).append(message)
    assert set(found) == set(expected), output
    for number, fragment in expected.items():
        assert any(fragment in message for message in found[number]), (number, fragment, found[number])


def test_decorated_functions_keep_their_type() -> None:
    source = """
from tornad_io import Server, Socket

io = Server()
nsp = io.of("/x")


@io.on("a")
async def a(socket: Socket, n: int) -> str:
    return ""


@io.event
def b(socket: Socket) -> int:
    return 1


@nsp.on("c")
def c(socket: Socket, text: str) -> None:
    pass


@io.on_server_side_emit("d")
def d(x: int) -> int:
    return x


def e(socket: Socket) -> None:
    @socket.on("e")
    def inner(x: bytes) -> bool:
        return True

    reveal_type(inner)


reveal_type(a)
reveal_type(b)
reveal_type(c)
reveal_type(d)
"""
    errors, output = mypy_strict({"decorated": source})
    assert errors["decorated"] == [], output
    # Older mypy versions qualify builtins ("builtins.int"); newer ones do not.
    revealed = [t.replace("builtins.", "") for t in re.findall(r'Revealed type is "([^"]+)"', output)]
    assert revealed == [
        "def (x: bytes) -> bool",
        "def (socket: tornad_io.socketio.socket.Socket, n: int) -> typing.Coroutine[Any, Any, str]",
        "def (socket: tornad_io.socketio.socket.Socket) -> int",
        "def (socket: tornad_io.socketio.socket.Socket, text: str)",
        "def (x: int) -> int",
    ], output
