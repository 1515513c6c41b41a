"""Engine.IO v4 and Socket.IO v5 codecs: tables, round trips, and garbage."""

from __future__ import annotations

import decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tornad_io import _json
from tornad_io.engineio import codec as eio
from tornad_io.exceptions import ProtocolError
from tornad_io.socketio import codec as sio

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
