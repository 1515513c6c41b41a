"""Engine.IO v4 and Socket.IO v5 codecs: tables, round trips, and garbage."""

from __future__ import annotations

import decimal
import logging
import subprocess
import sys
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tornad_io import _json
from tornad_io.engineio import codec as eio
from tornad_io.exceptions import ProtocolError
from tornad_io.socketio import codec as sio

from .conftest import ROOT

# -- Engine.IO ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "payload, packets",
    [
        ("4hello", ["4hello"]),
        ("4test1\x1e4test2\x1e4test3", ["4test1", "4test2", "4test3"]),
        ("4hello\x1ebAQIDBA==", ["4hello", b"\x01\x02\x03\x04"]),
        ("2\x1e3\x1e6", ["2", "3", "6"]),
        ("4€ 𝄞", ["4€ 𝄞"]),
    ],
)
def test_payload_table(payload: str, packets: list[Any]) -> None:
    assert eio.decode_payload(payload) == packets
    assert eio.encode_payload(packets) == payload


@pytest.mark.parametrize("payload", ["", "abc", "4a\x1e", "\x1e4a", "bAQ=\x1e9", "b@@@", "7x", "4a\x1e\x1e4b"])
def test_payload_garbage(payload: str) -> None:
    with pytest.raises(ProtocolError):
        eio.decode_payload(payload)


def test_payload_packet_limit() -> None:
    with pytest.raises(ProtocolError):
        eio.decode_payload("\x1e".join(["6"] * 11), max_packets=10)


def test_packet_decoding() -> None:
    assert eio.decode_packet("4hi") == ("4", "hi")
    assert eio.decode_packet(b"\x01") == ("4", b"\x01")
    assert eio.decode_packet("2probe") == ("2", "probe")
    for bad in ("", "x", "9"):
        with pytest.raises(ProtocolError):
            eio.decode_packet(bad)


eio_packet = st.one_of(
    st.builds(
        lambda t, d: t + d,
        st.sampled_from(sorted(eio.PACKET_TYPES)),
        st.text().filter(lambda s: "\x1e" not in s),
    ),
    st.binary(),
)


@given(st.lists(eio_packet, min_size=1, max_size=20))
def test_payload_round_trip(packets: list[Any]) -> None:
    assert eio.decode_payload(eio.encode_payload(packets)) == packets


@given(st.text(max_size=200))
def test_payload_garbage_only_raises_protocol_error(text: str) -> None:
    try:
        eio.decode_payload(text)
    except ProtocolError:
        pass


# -- Socket.IO ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "parts, packet",
    [
        (["0"], sio.Packet(sio.CONNECT)),
        (['0{"token":"123"}'], sio.Packet(sio.CONNECT, data={"token": "123"})),
        (["0/admin,"], sio.Packet(sio.CONNECT, "/admin", {})),
        (['0/admin,{"sid":"abc"}'], sio.Packet(sio.CONNECT, "/admin", {"sid": "abc"})),
        (["1/admin,"], sio.Packet(sio.DISCONNECT, "/admin")),
        (['2["hello",1]'], sio.Packet(sio.EVENT, data=["hello", 1])),
        (
            ['2/admin,456["project:delete",123]'],
            sio.Packet(sio.EVENT, "/admin", ["project:delete", 123], 456),
        ),
        (["3/admin,456[]"], sio.Packet(sio.ACK, "/admin", [], 456)),
        (
            ['4{"message":"Not authorized"}'],
            sio.Packet(sio.CONNECT_ERROR, data={"message": "Not authorized"}),
        ),
        (
            ['51-["hello",{"_placeholder":true,"num":0}]', b"\x01\x02\x03"],
            sio.Packet(sio.BINARY_EVENT, data=["hello", b"\x01\x02\x03"]),
        ),
        (
            ['61-/admin,456[{"_placeholder":true,"num":0}]', b"\x03\x02\x01"],
            sio.Packet(sio.BINARY_ACK, "/admin", [b"\x03\x02\x01"], 456),
        ),
    ],
)
def test_socketio_table(parts: list[Any], packet: sio.Packet) -> None:
    decoder = sio.Decoder()
    results = [decoder.add(p) for p in parts]
    assert results[:-1] == [None] * (len(parts) - 1)
    decoded = results[-1]
    expected_data = packet.data if packet.data is not None or packet.type != sio.CONNECT else None
    if parts[0] == "0/admin,":
        expected_data = None
    assert decoded == sio.Packet(packet.type, packet.nsp, expected_data, packet.id)
    # encoding: binary-free EVENT/ACK types are chosen by the encoder from the data
    logical = {sio.BINARY_EVENT: sio.EVENT, sio.BINARY_ACK: sio.ACK}.get(packet.type, packet.type)
    data = decoded.data if packet.type != sio.CONNECT or decoded.data is not None else None
    assert sio.encode(logical, packet.nsp, data, packet.id) == (parts if parts[0] != "0/admin," else ["0/admin,"])


@pytest.mark.parametrize(
    "text",
    [
        "",
        "abc",
        "7",
        "2{}",  # event payload must be an array
        '2abc["message"]',  # invalid ack id
        '2["connect"]',  # reserved event name
        "2[]",
        "2",  # event without payload
        "1{}",  # disconnect with payload
        '0"str"',  # connect payload must be an object
        '5-["a"]',  # attachments count missing
        '5x-["a"]',
        '59999999-["a"]',
        '2["a"',  # truncated JSON
        "2" + "1" * 40 + '["a"]',  # absurd ack id
    ],
)
def test_socketio_garbage(text: str) -> None:
    with pytest.raises(ProtocolError):
        sio.Decoder().add(text)


def test_binary_sequencing_errors() -> None:
    decoder = sio.Decoder()
    with pytest.raises(ProtocolError):
        decoder.add(b"\x00")  # binary nobody announced
    decoder = sio.Decoder()
    assert decoder.add('52-["a",{"_placeholder":true,"num":0}]') is None
    with pytest.raises(ProtocolError):
        decoder.add('2["text while binary is due"]')
    decoder = sio.Decoder()
    decoder.add('51-["a",{"_placeholder":true,"num":5}]')
    with pytest.raises(ProtocolError):
        decoder.add(b"\x00")  # placeholder points past the attachments
    with pytest.raises(ProtocolError):
        sio.Decoder(max_attachments=10).add('511-["a"]')


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**53), 2**53)
    | st.text()
    | st.floats(allow_nan=False, allow_infinity=False),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=20,
)
with_binary = st.recursive(
    json_values | st.binary(max_size=64),
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(st.text(max_size=8).filter(lambda k: k != "_placeholder"), children, max_size=4)
    ),
    max_leaves=20,
)
namespaces = st.just("/") | st.from_regex(r"/[a-z0-9\-_]{1,12}", fullmatch=True)
event_names = st.text(min_size=1, max_size=20).filter(lambda s: s not in sio.RESERVED_EVENTS)
ack_ids = st.none() | st.integers(0, 2**40)


@settings(max_examples=300)
@given(namespaces, event_names, st.lists(with_binary, max_size=5), ack_ids)
def test_event_round_trip(nsp: str, event: str, args: list[Any], ack_id: int | None) -> None:
    parts = sio.encode(sio.EVENT, nsp, [event, *args], ack_id)
    decoder = sio.Decoder(max_attachments=10_000)
    results = [decoder.add(p) for p in parts]
    packet = results[-1]
    assert packet is not None and all(r is None for r in results[:-1])
    assert packet.nsp == nsp and packet.id == ack_id
    assert packet.data == _normalise([event, *args])
    assert packet.type == (sio.BINARY_EVENT if len(parts) > 1 else sio.EVENT)


@settings(max_examples=200)
@given(namespaces, st.lists(with_binary, max_size=5), st.integers(0, 2**40))
def test_ack_round_trip(nsp: str, args: list[Any], ack_id: int) -> None:
    decoder = sio.Decoder(max_attachments=10_000)
    packet = [decoder.add(p) for p in sio.encode(sio.ACK, nsp, args, ack_id)][-1]
    assert packet is not None and packet.data == _normalise(args) and packet.id == ack_id


def _normalise(value: Any) -> Any:
    if isinstance(value, tuple):
        value = list(value)
    if isinstance(value, list):
        return [_normalise(v) for v in value]
    if isinstance(value, dict):
        return {k: _normalise(v) for k, v in value.items()}
    return value


@settings(max_examples=500)
@given(
    st.one_of(st.text(max_size=100), st.binary(max_size=20)),
    st.lists(st.one_of(st.text(max_size=50), st.binary(max_size=20)), max_size=4),
)
def test_garbage_only_raises_protocol_error(first: Any, rest: list[Any]) -> None:
    decoder = sio.Decoder()
    for message in [first, *rest]:
        try:
            decoder.add(message)
        except ProtocolError:
            decoder = sio.Decoder()


@settings(max_examples=300)
@given(st.sampled_from(["0", "2", "3", "5", "51-", "2/nsp,", "3/a,12"]), json_values)
def test_structured_garbage_only_raises_protocol_error(prefix: str, value: Any) -> None:
    try:
        sio.Decoder().add(prefix + _json.dumps(value))
    except ProtocolError:
        pass


def test_decimal_is_encoded_exactly() -> None:
    assert _json.dumps({"price": decimal.Decimal("19.990")}) == '{"price":19.990}'
    assert _json.dumps([2**80]) == "[1208925819614629174706176]"
    with pytest.raises(TypeError):
        _json.dumps(decimal.Decimal("NaN"))


# -- Socket.IO 0.6 frames and form bodies ----------------------------------------------

from tornad_io.engineio import legacy_codec  # noqa: E402
from tornad_io.transports.engineio import _jsonp_body  # noqa: E402


@settings(max_examples=300)
@given(st.lists(st.text(max_size=40), max_size=8))
def test_legacy_frames_round_trip(messages: list[str]) -> None:
    payload = "".join(legacy_codec.frame(m) for m in messages)
    assert legacy_codec.decode_frames(payload) == messages


@settings(max_examples=500)
@given(st.text(max_size=200), st.booleans())
def test_legacy_garbage_only_raises_protocol_error(text: str, crlf: bool) -> None:
    try:
        legacy_codec.decode_payload(text, crlf_tolerant=crlf, strict=True)
    except ProtocolError:
        pass
    legacy_codec.decode_payload(text, crlf_tolerant=crlf)  # the tolerant mode never raises


@settings(max_examples=300)
@given(st.text(max_size=200))
def test_jsonp_bodies_only_raise_protocol_error(text: str) -> None:
    try:
        eio.decode_payload(_jsonp_body(text))
    except ProtocolError:
        pass


def test_hostile_sizes_are_refused_quickly() -> None:
    with pytest.raises(ProtocolError):
        legacy_codec.decode_frames("~m~999999999~m~x")
    with pytest.raises(ProtocolError):
        sio.Decoder().add("2" + "[" * 100_000)  # nesting beyond the JSON parser's limit
    with pytest.raises(ProtocolError):
        sio.Decoder().add('2["a","\\ud800"]')  # a lone surrogate
    with pytest.raises(ProtocolError):
        sio.Decoder(max_attachments=100).add('5999999-["a"]')


@pytest.mark.parametrize(
    "payload, messages, dropped",
    [
        ("~m~5~m~hello", ["hello"], []),
        ('~m~10~m~~j~[1,"a"]~m~4~m~~h~7', [[1, "a"], legacy_codec.Message(beat="7")], []),
        ('~m~8~m~~j~{"a":~m~1~m~z', ["z"], ["a ~j~ frame that is not JSON: '~j~{\"a\":'"]),
        ("~m~2~m~ok~m~99~m~short", ["ok"], ["the rest of the payload: frame shorter than its declared length"]),
        ("~m~2~m~ok~x", ["ok"], ["the rest of the payload: frame does not start with ~m~"]),
        ("nonsense", [], ["the rest of the payload: frame does not start with ~m~"]),
        ("~m~5~m~a\nb\nc", ["a\nb\nc"], []),
    ],
)
def test_legacy_payload_table_with_what_was_dropped(payload: str, messages: list[Any], dropped: list[str]) -> None:
    expected = [m if isinstance(m, legacy_codec.Message) else legacy_codec.Message(m) for m in messages]
    reasons: list[str] = []
    assert legacy_codec.decode_payload(payload, dropped=reasons) == expected
    assert reasons == dropped
    assert legacy_codec.decode_payload(payload) == expected  # without a list, drops are silent


def test_legacy_codec_does_not_log(caplog: Any) -> None:
    with caplog.at_level(logging.DEBUG):
        legacy_codec.decode_payload('~m~8~m~~j~{"a":~m~1~m~z~m~99~m~short')
    assert caplog.records == []


# -- WebSocket frames (RFC 6455) ---------------------------------------------------------

from tornad_io.exceptions import FrameError  # noqa: E402
from tornad_io.websocket import frames as ws  # noqa: E402

KEY = b"\x37\xfa\x21\x3d"  # the masking key of RFC 6455's examples (section 5.7)


def client(first: int, payload: bytes, key: bytes = KEY, masked: bool = True, length: int | None = None) -> bytes:
    """A client frame built by hand: first byte (FIN, RSV, opcode), then length, key and masked payload."""
    n = len(payload) if length is None else length
    bit = 0x80 if masked else 0
    if n < 126:
        head = bytes([first, bit | n])
    elif n < 65536:
        head = bytes([first, bit | 126]) + n.to_bytes(2, "big")
    else:
        head = bytes([first, bit | 127]) + n.to_bytes(8, "big")
    if not masked:
        return head + payload
    return head + key + bytes(b ^ key[i % 4] for i, b in enumerate(payload))


FIN = 0x80
O = ws.Opcode  # noqa: E741


@pytest.mark.parametrize(
    "wire, messages",
    [
        # RFC 6455 section 5.7: a masked "Hello"
        (bytes.fromhex("818537fa213d7f9f4d5158"), [(O.TEXT, b"Hello")]),
        (client(FIN | 0x1, "héllo €".encode()), [(O.TEXT, "héllo €".encode())]),
        (client(FIN | 0x2, b"\x00\xff\x10"), [(O.BINARY, b"\x00\xff\x10")]),
        (client(FIN | 0x8, (1000).to_bytes(2, "big") + b"bye"), [(O.CLOSE, b"\x03\xe8bye")]),
        (client(FIN | 0x9, b"are you there"), [(O.PING, b"are you there")]),
        (client(FIN | 0xA, b""), [(O.PONG, b"")]),
        # lengths: 7 bits (0 and 125), 16 bits (126 and 65535), 64 bits (65536)
        (client(FIN | 0x2, b""), [(O.BINARY, b"")]),
        (client(FIN | 0x2, b"a" * 125), [(O.BINARY, b"a" * 125)]),
        (client(FIN | 0x2, b"b" * 126), [(O.BINARY, b"b" * 126)]),
        (client(FIN | 0x2, b"c" * 65535), [(O.BINARY, b"c" * 65535)]),
        (client(FIN | 0x1, b"d" * 65536), [(O.TEXT, b"d" * 65536)]),
        # a message in three fragments, a ping between two of them
        (
            client(0x1, b"one ") + client(0x0, b"two ") + client(FIN | 0x9, b"p") + client(FIN | 0x0, b"three"),
            [(O.PING, b"p"), (O.TEXT, b"one two three")],
        ),
        (client(0x2, b"\x01") + client(FIN | 0x0, b"\x02"), [(O.BINARY, b"\x01\x02")]),
        # several frames in one read
        (
            client(FIN | 0x1, b"a") + client(FIN | 0x2, b"b") + client(FIN | 0x1, b"c"),
            [(O.TEXT, b"a"), (O.BINARY, b"b"), (O.TEXT, b"c")],
        ),
        # each frame with its own key
        (
            client(FIN | 0x1, b"xy", b"\x00\x00\x00\x00") + client(FIN | 0x1, b"xy", b"\xff\xff\xff\xff"),
            [(O.TEXT, b"xy"), (O.TEXT, b"xy")],
        ),
    ],
)
def test_frame_parser_table(wire: bytes, messages: list[tuple[ws.Opcode, bytes]]) -> None:
    got = ws.FrameParser(100_000).feed(wire)
    assert got == messages
    assert [type(opcode) for opcode, _ in got] == [ws.Opcode] * len(messages)  # named opcodes
    # the same bytes fed one at a time give the same messages
    parser = ws.FrameParser(100_000)
    assert [m for i in range(len(wire)) for m in parser.feed(wire[i : i + 1])] == messages


@pytest.mark.parametrize(
    "wire, code, reason",
    [
        (client(FIN | 0x40 | 0x1, b"x"), 1002, "reserved bits set"),
        (client(FIN | 0x10 | 0x1, b"x"), 1002, "reserved bits set"),
        (client(FIN | 0x3, b"x"), 1002, "unknown opcode"),
        (client(FIN | 0xB, b"x"), 1002, "unknown opcode"),
        (client(FIN | 0x9, b"p" * 126), 1002, "bad control frame"),
        (client(0x9, b"p"), 1002, "bad control frame"),
        (client(FIN | 0x1, b"x", masked=False), 1002, "client frames must be masked"),
        (client(FIN | 0x1, b"x" * 1001), 1009, "message too big"),
        (client(0x1, b"x" * 600) + client(FIN | 0x0, b"x" * 401), 1009, "message too big"),
        (client(FIN | 0x0, b"x"), 1002, "continuation of nothing"),
        (client(0x1, b"x") + client(FIN | 0x1, b"y"), 1002, "new message inside a fragmented one"),
    ],
)
def test_frame_errors_table(wire: bytes, code: int, reason: str) -> None:
    with pytest.raises(FrameError) as caught:
        ws.FrameParser(1000).feed(wire)
    assert caught.value.code == code and caught.value.reason == reason and str(caught.value) == reason
    assert isinstance(caught.value, ProtocolError)
    assert code in set(ws.CloseCode)


def test_too_big_is_refused_from_the_header_alone() -> None:
    # 2 GiB announced: refused before any of it arrives (nothing is buffered for it)
    with pytest.raises(FrameError) as caught:
        ws.FrameParser(1_000_000).feed(bytes([FIN | 0x2, 0x80 | 127]) + (2**31).to_bytes(8, "big"))
    assert caught.value.code == ws.CloseCode.MESSAGE_TOO_BIG


@pytest.mark.parametrize(
    "opcode, size, head",
    [
        (ws.Opcode.TEXT, 0, b"\x81\x00"),
        (ws.Opcode.TEXT, 125, b"\x81\x7d"),
        (ws.Opcode.BINARY, 126, b"\x82\x7e\x00\x7e"),
        (ws.Opcode.BINARY, 65535, b"\x82\x7e\xff\xff"),
        (ws.Opcode.TEXT, 65536, b"\x81\x7f\x00\x00\x00\x00\x00\x01\x00\x00"),
        (ws.Opcode.CLOSE, 2, b"\x88\x02"),
        (ws.Opcode.PING, 1, b"\x89\x01"),
        (ws.Opcode.PONG, 1, b"\x8a\x01"),
    ],
)
def test_server_frame_table(opcode: ws.Opcode, size: int, head: bytes) -> None:
    payload = b"z" * size
    assert ws.frame(opcode, payload) == head + payload  # final, unmasked


@pytest.mark.parametrize(
    "key, data, masked",
    [
        (KEY, b"Hello", bytes.fromhex("7f9f4d5158")),  # RFC 6455 section 5.7
        (KEY, b"", b""),
        (b"\x00\x00\x00\x00", b"same", b"same"),
        (b"\xff\xff\xff\xff", b"\x00\x0f", b"\xff\xf0"),
        (b"\x01\x02\x03\x04", b"\x00" * 9, b"\x01\x02\x03\x04\x01\x02\x03\x04\x01"),
    ],
)
def test_mask_table(key: bytes, data: bytes, masked: bytes) -> None:
    assert ws.mask(key, data) == masked
    assert ws.mask(key, masked) == data


@given(st.binary(min_size=4, max_size=4), st.binary(max_size=3000))
def test_pure_mask_agrees_with_tornados_c_mask(key: bytes, data: bytes) -> None:
    from tornad_io import _tornado_compat

    fast = _tornado_compat.websocket_mask
    if fast is None:
        pytest.skip("Tornado's C masking is not available")
    assert ws.mask(key, data) == fast(key, data)


message_strategy = st.tuples(st.sampled_from([ws.Opcode.TEXT, ws.Opcode.BINARY]), st.binary(max_size=300))


@settings(max_examples=200)
@given(st.lists(message_strategy, max_size=6), st.data())
def test_frames_round_trip_whatever_the_fragments_and_reads(messages: list[tuple[ws.Opcode, bytes]], data: Any) -> None:
    wire = b""
    for opcode, payload in messages:
        cuts = sorted(data.draw(st.lists(st.integers(0, len(payload)), max_size=3)))
        pieces = [payload[a:b] for a, b in zip([0, *cuts], [*cuts, len(payload)], strict=True)]
        for i, piece in enumerate(pieces):
            first = (opcode if i == 0 else 0) | (FIN if i == len(pieces) - 1 else 0)
            wire += client(first, piece, data.draw(st.binary(min_size=4, max_size=4)))
    reads = sorted(data.draw(st.lists(st.integers(0, len(wire)), max_size=8)))
    parser = ws.FrameParser(10_000)
    got = [m for a, b in zip([0, *reads], [*reads, len(wire)], strict=True) for m in parser.feed(wire[a:b])]
    assert got == messages


@given(st.binary(max_size=200))
def test_frame_garbage_only_raises_frame_error(data: bytes) -> None:
    try:
        ws.FrameParser(1000).feed(data)
    except FrameError as error:
        assert error.code in (1002, 1009)


def test_pure_modules_import_neither_tornado_nor_asyncio() -> None:
    code = (
        "import sys\n"
        "import tornad_io.socketio.codec, tornad_io.engineio.codec, tornad_io.engineio.legacy_codec\n"
        "import tornad_io.websocket.frames, tornad_io.exceptions, tornad_io._json\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('tornado', 'asyncio'))\n"
        "assert not bad, bad\n"
        "import tornad_io\n"
        "assert tornad_io.Server.__name__ == 'Server'  # the public names still load, on first use\n"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
