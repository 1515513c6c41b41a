"""The msgpack parser (socket.io-msgpack-parser 3.x's format) and the parser seam, without a network.

The table comes from the real npm parser: ``tests/data/msgpack-parser-vectors.jsonl`` is the
output of ``node tests/js/msgpack_vectors.mjs`` (run from the repository root after ``npm ci``;
socket.io-msgpack-parser 3.0.2 with its notepack.io 2.2.0). Its ``encode`` rows are packets as
the server sends them and the bytes the npm Encoder makes of them; its ``decode`` rows are bytes
a client may send and what the npm Decoder makes of them (or the error it raises).
"""

from __future__ import annotations

import base64
import dataclasses
import datetime
import decimal
import enum
import hashlib
import json
import os
import subprocess
import sys
import uuid
from typing import Any

import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tornad_io import Server
from tornad_io.exceptions import ProtocolError
from tornad_io.socketio import codec
from tornad_io.socketio import msgpack_parser as mp
from tornad_io.socketio.codec import Packet
from tornad_io.socketio.parsers import JSON_PARSER, Encoding, JSONParser, Parser, encoding_for, resolve

from .conftest import ROOT

VECTORS = os.path.join(ROOT, "tests", "data", "msgpack-parser-vectors.jsonl")
UTC = datetime.timezone.utc
PARSER = mp.MsgpackParser()


def load_vectors(kind: str) -> list[dict[str, Any]]:
    with open(VECTORS, encoding="utf-8") as file:
        rows = [json.loads(line) for line in file if line.strip()]
    return [row for row in rows if row["kind"] == kind]


UNDEFINED = object()


def from_wire(value: Any) -> Any:
    """A value of the table as Python (``{"$undefined": true}`` as UNDEFINED, dropped by ``js_view``)."""
    if isinstance(value, list):
        return [from_wire(v) for v in value]
    if isinstance(value, dict):
        if "$bin" in value:
            return base64.b64decode(value["$bin"])
        if "$date" in value:
            return datetime.datetime(1970, 1, 1, tzinfo=UTC) + datetime.timedelta(milliseconds=value["$date"])
        if "$undefined" in value:
            return UNDEFINED
        if "$binfill" in value:
            return bytes([value["$binfill"][0]]) * value["$binfill"][1]
        if "$strfill" in value:
            return value["$strfill"][0] * value["$strfill"][1]
        if "$arrayfill" in value:
            return [from_wire(value["$arrayfill"][0])] * value["$arrayfill"][1]
        return {k: from_wire(v) for k, v in value.items()}
    return value


def js_view(value: Any) -> Any:
    """undefined as JSON.stringify treats it: a map drops the key, a list holds null."""
    if isinstance(value, list):
        return [None if v is UNDEFINED else js_view(v) for v in value]
    if isinstance(value, dict):
        return {k: js_view(v) for k, v in value.items() if v is not UNDEFINED}
    return value


# -- the table from the npm parser ----------------------------------------------------------

ENCODE_ROWS = load_vectors("encode")
DECODE_ROWS = load_vectors("decode")


@pytest.mark.parametrize("row", ENCODE_ROWS, ids=[row["name"] for row in ENCODE_ROWS])
def test_encoding_matches_the_npm_parser_byte_for_byte(row: dict[str, Any]) -> None:
    wire = from_wire(row["packet"])
    packet = Packet(wire["type"], wire["nsp"], wire.get("data"), wire.get("id"))
    messages = PARSER.encode(packet)
    assert len(messages) == 1 and isinstance(messages[0], bytes)  # one binary message per packet
    if "hex" in row:
        assert messages[0].hex() == row["hex"]
    else:
        assert len(messages[0]) == row["size"]
        assert messages[0].hex()[:128] == row["head"]
        assert hashlib.sha256(messages[0]).hexdigest() == row["sha256"]
    # and it reads back as the same packet
    assert PARSER.decoder().add(messages[0]) == packet


@pytest.mark.parametrize("row", DECODE_ROWS, ids=[row["name"] for row in DECODE_ROWS])
def test_decoding_agrees_with_the_npm_parser(row: dict[str, Any]) -> None:
    message = bytes.fromhex(row["hex"])
    refused = ("error" in row["npm"] and "lenient" not in row) or "stricter" in row
    if refused:
        with pytest.raises(ProtocolError):
            PARSER.decoder().add(message)
        return
    packet = PARSER.decoder().add(message)
    if "lenient" in row:  # npm refuses a null payload; it is read as none
        assert packet.data is None and packet.type in (codec.CONNECT, codec.DISCONNECT)
        return
    npm = js_view(from_wire(row["npm"]["ok"]))
    assert packet == Packet(npm["type"], npm["nsp"], npm.get("data"), npm.get("id"))
    assert packet.id is None or type(packet.id) is int


def test_the_table_covers_both_readers_and_every_kind_of_row() -> None:
    """The table has rows the C unpacker reads and rows only the exact reader can (ext type 0)."""
    needs_exact = 0
    for row in DECODE_ROWS:
        try:
            msgpack.unpackb(bytes.fromhex(row["hex"]), ext_hook=mp._ext, timestamp=3)
        except mp._NeedsExactReader:
            needs_exact += 1
        except Exception:
            pass
    assert needs_exact >= 3
    assert sum("stricter" in row for row in DECODE_ROWS) >= 5
    assert sum("lenient" in row for row in DECODE_ROWS) == 2
    assert sum("error" in row["npm"] for row in DECODE_ROWS) >= 15
    assert any("sha256" in row for row in ENCODE_ROWS)


def test_notepack_extensions_are_told_apart_by_their_encoding_byte() -> None:
    """ext type 0: fixext 1 is undefined, fixext 8 a Date, ext 8/16/32 an ArrayBuffer, other fixext [0, bytes]."""
    head = b"\x83\xa4type\x02\xa3nsp\xa1/\xa4data"
    date = (1700000000123).to_bytes(8, "big", signed=True)
    message = head + b"\x96\xa1x" + b"\xd4\x00\x00" + b"\xc7\x01\x00\x00" + b"\xd7\x00" + date
    message += b"\xc7\x08\x00" + date + b"\xd5\x00\x01\x02"
    packet = PARSER.decoder().add(message)
    when = datetime.datetime(2023, 11, 14, 22, 13, 20, 123000, tzinfo=UTC)
    assert packet.data == ["x", None, b"\x00", when, date, [0, b"\x01\x02"]]
    # other extension types are [type, bytes], as notepack reads them; timestamps (-1) are datetimes
    stamp = msgpack.packb(datetime.datetime(2024, 1, 2, 3, 4, 5, 6000, tzinfo=UTC), datetime=True)
    message = head + b"\x93\xa1y" + b"\xd5\x07\xab\xcd" + stamp
    assert PARSER.decoder().add(message).data == [
        "y",
        [7, b"\xab\xcd"],
        datetime.datetime(2024, 1, 2, 3, 4, 5, 6000, tzinfo=UTC),
    ]


# -- encoding Python values ---------------------------------------------------------------------


class Colour(enum.Enum):
    RED = "red"


@dataclasses.dataclass
class Point:
    x: int
    y: int


def test_python_values_are_written_as_the_json_parser_would_write_them() -> None:
    naive = datetime.datetime(2023, 11, 14, 22, 13, 20, 123456)
    data = [
        "values",
        (1, 2),
        frozenset({3}),
        decimal.Decimal("1.5"),
        uuid.UUID(int=1),
        Colour.RED,
        Point(1, 2),
        datetime.date(2024, 2, 29),
        datetime.time(12, 30),
        naive,
        2**70,
        bytearray(b"ab"),
        memoryview(b"cd"),
    ]
    packet = PARSER.decoder().add(PARSER.encode(Packet(codec.EVENT, "/", data))[0])
    assert packet.data == [
        "values",
        [1, 2],
        [3],
        1.5,
        "00000000-0000-0000-0000-000000000001",
        "red",
        {"x": 1, "y": 2},
        "2024-02-29",
        "12:30:00",
        naive.replace(microsecond=123000, tzinfo=UTC),  # a naive datetime is UTC; a Date holds milliseconds
        float(2**70),
        b"ab",
        b"cd",
    ]


@pytest.mark.parametrize("value", [object(), decimal.Decimal("NaN"), 10**400, {1j: 1}])
def test_values_msgpack_cannot_carry_raise_type_error(value: Any) -> None:
    with pytest.raises(TypeError):
        PARSER.encode(Packet(codec.EVENT, "/", ["e", value]))


def test_nesting_beyond_the_packers_limit_raises_type_error() -> None:
    deep: list[Any] = []
    for _ in range(5000):
        deep = [deep]
    with pytest.raises(TypeError):
        PARSER.encode(Packet(codec.EVENT, "/", ["e", deep]))


def test_binary_types_go_as_plain_event_and_ack() -> None:
    for given_type, wire_type in ((codec.BINARY_EVENT, codec.EVENT), (codec.BINARY_ACK, codec.ACK)):
        message = PARSER.encode(Packet(given_type, "/", [b"\x00"], 1))[0]
        assert msgpack.unpackb(message) == {"type": wire_type, "data": [b"\x00"], "nsp": "/", "id": 1}


# -- round trips, garbage, and the two readers --------------------------------------------------

scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**64 - 1)
    | st.floats(allow_nan=False)
    | st.text(max_size=40)
    | st.binary(max_size=40)
)
values = st.recursive(
    scalars,
    lambda children: st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=8), children, max_size=5),
    max_leaves=25,
)
namespaces = st.just("/") | st.from_regex(r"/[a-z0-9\-_ü]{1,12}", fullmatch=True)
event_names = st.text(min_size=1, max_size=20).filter(lambda s: s not in codec.RESERVED_EVENTS)
ack_ids = st.none() | st.integers(0, 10**16 - 1)


@settings(max_examples=300)
@given(namespaces, event_names, st.lists(values, max_size=5), ack_ids)
def test_event_round_trip(nsp: str, event: str, args: list[Any], ack_id: int | None) -> None:
    packet = Packet(codec.EVENT, nsp, [event, *args], ack_id)
    assert PARSER.decoder().add(PARSER.encode(packet)[0]) == packet


@settings(max_examples=200)
@given(namespaces, st.lists(values, max_size=5), st.integers(0, 10**16 - 1))
def test_ack_round_trip(nsp: str, args: list[Any], ack_id: int) -> None:
    packet = Packet(codec.ACK, nsp, args, ack_id)
    assert PARSER.decoder().add(PARSER.encode(packet)[0]) == packet


def parse_or_error(reader: Any, message: bytes) -> Any:
    try:
        return ("ok", reader(message))
    except ProtocolError:
        return ("error",)


def same(a: Any, b: Any) -> bool:
    """Equal, with NaN equal to itself (msgpack carries NaN)."""
    if isinstance(a, float) and isinstance(b, float):
        return a == b or (a != a and b != b)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    return type(a) is type(b) and a == b


timestamps = st.builds(
    msgpack.Timestamp, st.integers(-(2**63), 2**63 - 1) | st.integers(-(2**35), 2**35), st.integers(0, 999_999_999)
)
any_msgpack = st.recursive(
    scalars | st.builds(msgpack.ExtType, st.integers(1, 127), st.binary(max_size=20)) | timestamps,
    lambda children: (
        st.lists(children, max_size=5)
        | st.dictionaries(st.text(max_size=8) | st.binary(max_size=4) | st.integers(-5, 5), children, max_size=5)
    ),
    max_leaves=30,
)
# extensions written by hand: any type but 0 (msgpack's ExtType takes 0 to 127 only), any length
raw_extensions = st.builds(
    lambda code, data, fixed: (
        bytes([{1: 0xD4, 2: 0xD5, 4: 0xD6, 8: 0xD7, 16: 0xD8}[len(data)]]) + code.to_bytes(1, "big", signed=True) + data
        if fixed and len(data) in (1, 2, 4, 8, 16)
        else b"\xc7" + bytes([len(data)]) + code.to_bytes(1, "big", signed=True) + data
    ),
    st.integers(-128, 127).filter(lambda c: c != 0),
    st.binary(max_size=16) | st.binary(min_size=12, max_size=12),
    st.booleans(),
)


@settings(max_examples=500)
@given(any_msgpack, st.integers(0, 20), st.binary(max_size=3), raw_extensions)
def test_the_c_unpacker_and_the_exact_reader_agree(value: Any, cut: int, noise: bytes, extension: bytes) -> None:
    """What has no ext type 0 reads the same both ways: values, truncations, trailing bytes, extensions
    of every type and length (timestamps, type -1, included)."""
    message = msgpack.packb(value, use_bin_type=True, datetime=False)
    candidates = (message, message[: max(0, len(message) - cut)], message + noise, b"\x92" + extension + message)
    for candidate in candidates:
        fast = parse_or_error(mp.unpack, candidate)
        exact = parse_or_error(mp._unpack_exact, candidate)
        assert fast[0] == exact[0], (candidate.hex(), fast, exact)
        if fast[0] == "ok":
            assert same(fast[1], exact[1]), candidate.hex()


@settings(max_examples=1000)
@given(st.binary(max_size=200))
def test_garbage_only_raises_protocol_error(message: bytes) -> None:
    for reader in (PARSER.decoder().add, mp._unpack_exact):
        try:
            reader(message)
        except ProtocolError:
            pass


@settings(max_examples=500)
@given(st.binary(max_size=100), st.integers(0, 100))
def test_garbage_with_notepack_extensions_only_raises_protocol_error(message: bytes, at: int) -> None:
    """The same, with ext type 0 spliced in, so the exact reader gets it (through the decoder)."""
    for ext in (b"\xd4\x00\x00", b"\xd7\x00" + b"\xff" * 8, b"\xc7\x02\x00ab", b"\xc9\xff\xff\xff\xff\x00"):
        try:
            PARSER.decoder().add(message[:at] + ext + message[at:])
        except ProtocolError:
            pass


fields = st.one_of(values, st.integers(-10, 10), st.text(max_size=5), st.lists(values, max_size=3))


@settings(max_examples=500)
@given(
    st.dictionaries(st.sampled_from(["type", "nsp", "data", "id", "options"]), fields, max_size=5),
    st.booleans(),
)
def test_structured_garbage_only_raises_protocol_error(fields_: dict[str, Any], undefined: bool) -> None:
    message = msgpack.packb(fields_, use_bin_type=True)
    if undefined:  # one more key first (a fixmap: at most 5 keys), "data" with an undefined value
        message = bytes([message[0] + 1]) + b"\xa4data\xd4\x00\x00" + message[1:]
    try:
        packet = PARSER.decoder().add(message)
    except ProtocolError:
        return
    assert isinstance(packet.nsp, str) and 0 <= packet.type <= 4
    assert packet.id is None or (type(packet.id) is int and 0 <= packet.id < 10**16)
    if packet.type in (codec.EVENT, codec.ACK):
        assert isinstance(packet.data, list)


def test_hostile_sizes_and_depths_are_refused_quickly() -> None:
    decoder = PARSER.decoder()
    for message in (
        b"\xdd\xff\xff\xff\xff",  # an array of 4 294 967 295 items in 5 bytes
        b"\xdf\xff\xff\xff\xff",
        b"\xdb\xff\xff\xff\xffabc",
        b"\xc6\xff\xff\xff\xff",
        b"\xc9\xff\xff\xff\xff\x00",
        b"\x91" * 100_000 + b"\x01",  # nesting far beyond the limit
        b"\xd4\x00\x00" + b"\x91" * 100_000,
        b"\x81\xa4data" + b"\x91" * 2000 + b"\xd4\x00\x00",  # deep, with an ext type 0: the exact reader
        b"\xc1",
        b"\x81\xa4type\xa1\xff",  # invalid UTF-8
        b"\x81\xa4type\xa3\xed\xa0\x80",  # a lone surrogate
    ):
        with pytest.raises(ProtocolError):
            decoder.add(message)
        with pytest.raises(ProtocolError):
            mp._unpack_exact(message)


def test_depth_limit_is_the_same_in_both_readers() -> None:
    for depth in (1023, 1024, 1025):
        message = b"\x91" * depth + b"\x01"
        assert parse_or_error(mp.unpack, message)[0] == parse_or_error(mp._unpack_exact, message)[0]
    assert parse_or_error(mp._unpack_exact, b"\x91" * 1024 + b"\x01")[0] == "ok"
    assert parse_or_error(mp._unpack_exact, b"\x91" * 1025 + b"\x01")[0] == "error"


def test_text_messages_are_refused() -> None:
    with pytest.raises(ProtocolError):
        PARSER.decoder().add('2["chat","hi"]')


# -- the seam ---------------------------------------------------------------------------------


def test_option_names_a_parser_or_takes_one() -> None:
    assert Server().options.packet_parser is JSON_PARSER
    assert isinstance(Server(parser="msgpack").options.packet_parser, mp.MsgpackParser)
    custom = mp.MsgpackParser()
    assert Server(parser=custom).options.packet_parser is custom
    assert isinstance(JSON_PARSER, Parser) and isinstance(custom, Parser)
    with pytest.raises(ValueError, match="unknown parser"):
        Server(parser="protobuf")
    with pytest.raises(TypeError, match="parser"):
        Server(parser=42)  # type: ignore[arg-type]
    assert resolve("json") is JSON_PARSER


def test_encoding_keys_include_the_parser() -> None:
    json_parser, other_json, msgpack_parser = JSONParser(), JSONParser(), mp.MsgpackParser()
    assert encoding_for("v5", json_parser) is encoding_for("v5", json_parser)
    assert encoding_for("v5", json_parser) != encoding_for("v5", other_json)
    assert encoding_for("v5", json_parser) != encoding_for("v5", msgpack_parser)
    assert encoding_for("v5", json_parser) != encoding_for("0.6", json_parser)
    key = encoding_for("v5", msgpack_parser)
    assert isinstance(key, Encoding) and key.parser is msgpack_parser and key.generation == "v5"


def test_the_msgpack_parser_without_msgpack_names_the_extra() -> None:
    code = (
        "import sys\n"
        "sys.modules['msgpack'] = None  # as if it were not installed\n"
        "from tornad_io import Server\n"
        "Server()  # the JSON parser needs nothing\n"
        "try:\n"
        "    Server(parser='msgpack')\n"
        "except ImportError as error:\n"
        "    print(error)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "pip install 'tornad_io[msgpack]'" in result.stdout


def test_parser_modules_import_neither_tornado_nor_asyncio() -> None:
    code = (
        "import sys\n"
        "import tornad_io.socketio.parsers, tornad_io.socketio.msgpack_parser\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('tornado', 'asyncio'))\n"
        "assert not bad, bad\n"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr


class Sink:
    """A transport that keeps what it is given (no network)."""

    name = "websocket"
    pulls = False
    upgradable = False
    writable = True

    def __init__(self) -> None:
        self.delivered: list[Any] = []

    def deliver(self, packets: list[Any]) -> None:
        self.delivered.extend(packets)

    def is_congested(self) -> bool:
        return False

    def end(self, packets: list[Any] | None = None) -> None:
        pass

    def finish(self, queue: list[Any], mode: Any) -> bool:
        return False


async def test_two_servers_in_one_process_never_share_an_encoding() -> None:
    """A JSON server and a msgpack server side by side: each broadcast is encoded once per server,
    in that server's format, and the sockets of the two servers have different encodings."""
    from tornad_io.engineio.session import HandshakeInfo

    servers = {"json": Server(), "msgpack": Server(parser="msgpack")}
    connect = {"json": "40", "msgpack": PARSER.encode(Packet(codec.CONNECT, "/"))[0]}
    sinks: dict[str, list[Sink]] = {}
    for name, io in servers.items():
        sinks[name] = []
        for _ in range(3):
            sink = Sink()
            session = io.engine.handshake(sink, HandshakeInfo({}, {}, "127.0.0.1", False, "/", False))
            session.receive(connect[name])
            sinks[name].append(sink)
        assert len(io.sockets.sockets) == 3
    encodings = {name: {s.encoding for s in io.sockets.sockets.values()} for name, io in servers.items()}
    assert len(encodings["json"]) == len(encodings["msgpack"]) == 1 and encodings["json"] != encodings["msgpack"]
    for io in servers.values():
        io.emit("news", b"\x01", "text")
    json_last = [sink.delivered[-2:] for sink in sinks["json"]]  # text part, then the attachment
    assert json_last[0] == ['451-["news",{"_placeholder":true,"num":0},"text"]', b"\x01"]
    msgpack_last = [sink.delivered[-1] for sink in sinks["msgpack"]]
    assert PARSER.decoder().add(msgpack_last[0]) == Packet(codec.EVENT, "/", ["news", b"\x01", "text"])
    # encoded once per server: every recipient holds the same object
    assert all(parts[0] is json_last[0][0] for parts in json_last)
    assert all(message is msgpack_last[0] for message in msgpack_last)
