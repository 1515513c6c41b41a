"""The Engine.IO v3 codec and the Socket.IO v4-protocol encoding: tables, round trips, and garbage.

The tables are the examples of the v3 protocol description (``socketio/engine.io-protocol``, branch ``v3``)
and of its test suite, plus what socket.io-client 2.5 puts on the wire.
"""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tornad_io.engineio import eio3_codec as v3
from tornad_io.exceptions import ProtocolError
from tornad_io.socketio import codec as sio
from tornad_io.socketio.eio3_client import encode_v4, split_namespace

from .conftest import ROOT

# -- packets ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "packet, decoded",
    [
        ("4hello", ("4", "hello")),
        ("2probe", ("2", "probe")),
        ("2", ("2", "")),
        ("5", ("5", "")),
        ("b4AQIDBA==", ("4", b"\x01\x02\x03\x04")),  # base64 binary, type digit after the b
        ("b4", ("4", b"")),
        (b"\x04\x01\x02\x03\x04", ("4", b"\x01\x02\x03\x04")),  # binary: the first byte is the type
        (b"\x04", ("4", b"")),
    ],
)
def test_packet_table(packet: Any, decoded: tuple[str, Any]) -> None:
    assert v3.decode_packet(packet) == decoded


@pytest.mark.parametrize("packet", ["", "x", "7", "b", "b7AA==", "b4@@", b"", b"\x07abc", b"4abc"])
def test_packet_garbage(packet: Any) -> None:
    with pytest.raises(ProtocolError):
        v3.decode_packet(packet)


def test_binary_message_forms() -> None:
    assert v3.binary_message(b"\x01\x02", base64=False) == b"\x04\x01\x02"
    assert v3.binary_message(b"\x01\x02", base64=True) == "b4AQI="


@pytest.mark.parametrize("text, units", [("", 0), ("abc", 3), ("€", 1), ("😀", 2), ("a😀€𝄞", 6), ("中文", 2)])
def test_utf16_length(text: str, units: int) -> None:
    assert v3.utf16_length(text) == units


# -- text payloads -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "payload, packets",
    [
        ("6:4hello", ["4hello"]),
        ("6:4hello6:4world", ["4hello", "4world"]),
        ("6:4test16:4test26:4test3", ["4test1", "4test2", "4test3"]),
        ("2:4€", ["4€"]),  # the spec's example: characters, not bytes
        ("3:4😀", ["4😀"]),  # an astral character counts two UTF-16 units, as String.length does
        ("5:4😀😀1:2", ["4😀😀", "2"]),
        ("10:b4AQIDBA==", [b"\x04\x01\x02\x03\x04"]),
        ("2:4€10:b4AQIDBA==", ["4€", b"\x04\x01\x02\x03\x04"]),  # the spec's mixed example
        ("6:4hello10:b4AQIDBA==", ["4hello", b"\x04\x01\x02\x03\x04"]),  # the v3 test suite's
        ("1:21:31:6", ["2", "3", "6"]),
        (
            '96:0{"sid":"lv_VI97HAXpY6yYWAAAC","upgrades":["websocket"],"pingInterval":25000,"pingTimeout":5000}',
            ['0{"sid":"lv_VI97HAXpY6yYWAAAC","upgrades":["websocket"],"pingInterval":25000,"pingTimeout":5000}'],
        ),
    ],
)
def test_text_payload_table(payload: str, packets: list[Any]) -> None:
    assert v3.decode_text_payload(payload) == packets
    assert v3.encode_text_payload(packets) == payload


def test_zero_length_packets_are_skipped() -> None:
    assert v3.decode_text_payload("0:") == []
    assert v3.decode_text_payload("0:1:6") == ["6"]


@pytest.mark.parametrize(
    "payload",
    [
        "",  # empty
        "4hello",  # no length
        ":4hello",  # empty length
        "x:4",  # not a number
        "٣:4ab",  # a digit, but not an ASCII one
        "5:4a",  # shorter than announced
        "6:4hello1",  # trailing garbage
        "2:4😀",  # the length ends between the two halves of a character
        "1:7",  # unknown type
        "2:b9",  # unknown type in base64 form
        "4:b4@@",  # bad base64
        "99999999999:4",  # more digits than a length may have
    ],
)
def test_text_payload_garbage(payload: str) -> None:
    with pytest.raises(ProtocolError):
        v3.decode_text_payload(payload)


def test_text_payload_packet_limit() -> None:
    with pytest.raises(ProtocolError):
        v3.decode_text_payload("1:6" * 11, max_packets=10)


# -- binary payloads -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "payload, packets",
    [
        # the spec's example: "€" as UTF-8 (length in bytes), then 4 bytes of binary with their type byte
        (
            bytes([0x00, 0x04, 0xFF, 0x34, 0xE2, 0x82, 0xAC, 0x01, 0x05, 0xFF, 0x04, 0x01, 0x02, 0x03, 0x04]),
            ["4€", b"\x04\x01\x02\x03\x04"],
        ),
        # the v3 test suite's: "4hello" and a binary message
        (
            bytes([0, 6, 255, 52, 104, 101, 108, 108, 111, 1, 5, 255, 4, 1, 2, 3, 4]),
            ["4hello", b"\x04\x01\x02\x03\x04"],
        ),
        # a length of two digits, each its own byte
        (bytes([1, 1, 2, 255, 4]) + bytes(range(11)), [b"\x04" + bytes(range(11))]),
        (bytes([0, 1, 255]) + b"2", ["2"]),
    ],
)
def test_binary_payload_table(payload: bytes, packets: list[Any]) -> None:
    assert v3.decode_binary_payload(payload) == packets
    assert v3.encode_binary_payload(packets) == payload


@pytest.mark.parametrize(
    "payload",
    [
        b"",
        bytes([2, 1, 255, 52]),  # neither text (0) nor binary (1)
        bytes([0, 255, 52]),  # no length digits
        bytes([0, 10, 255, 52]),  # a "digit" above 9
        bytes([0, 1]),  # no 0xFF
        bytes([0, 5, 255, 52]),  # shorter than announced
        bytes([1, 2, 255, 9, 9]),  # unknown binary type
        bytes([0, 2, 255, 55, 55]),  # unknown text type
        bytes([0, 2, 255, 52, 0xFF]),  # not UTF-8
        bytes([0, 0, 255]),  # an empty packet
        bytes([0, *([9] * 12), 255, 52]),  # too many digits
    ],
)
def test_binary_payload_garbage(payload: bytes) -> None:
    with pytest.raises(ProtocolError):
        v3.decode_binary_payload(payload)


def test_binary_payload_packet_limit() -> None:
    with pytest.raises(ProtocolError):
        v3.decode_binary_payload(bytes([0, 1, 255, 54]) * 11, max_packets=10)


def test_payload_form_follows_what_the_client_takes() -> None:
    packets: list[Any] = ["4a", b"\x04\x01"]
    assert v3.encode_payload(packets, binary=True) == bytes([0, 2, 255, 52, 97, 1, 2, 255, 4, 1])
    assert v3.encode_payload(packets, binary=False) == "2:4a6:b4AQ=="
    assert v3.encode_payload(["4a"], binary=True) == "2:4a"  # text stays text when nothing is binary


# -- round trips and garbage (hypothesis) ------------------------------------------------------

text_packet = st.builds(lambda t, d: t + d, st.sampled_from("0123456"), st.text())
binary_packet = st.builds(lambda t, d: bytes([t]) + d, st.integers(0, 6), st.binary())
wire_packet = st.one_of(text_packet, binary_packet)


@given(st.lists(wire_packet, min_size=1, max_size=20))
def test_text_payload_round_trip(packets: list[Any]) -> None:
    assert v3.decode_text_payload(v3.encode_text_payload(packets)) == packets


@given(st.lists(wire_packet, min_size=1, max_size=20))
def test_binary_payload_round_trip(packets: list[Any]) -> None:
    assert v3.decode_binary_payload(v3.encode_binary_payload(packets)) == packets


@given(st.text(max_size=200))
def test_text_payload_garbage_only_raises_protocol_error(text: str) -> None:
    try:
        v3.decode_text_payload(text)
    except ProtocolError:
        pass


@given(st.binary(max_size=200))
def test_binary_payload_garbage_only_raises_protocol_error(data: bytes) -> None:
    try:
        v3.decode_binary_payload(data)
    except ProtocolError:
        pass


@given(st.one_of(st.text(max_size=50), st.binary(max_size=50)))
def test_packet_garbage_only_raises_protocol_error(packet: Any) -> None:
    try:
        v3.decode_packet(packet)
    except ProtocolError:
        pass


# -- Socket.IO protocol v4 (socket.io-parser 3.x) ------------------------------------------------


@pytest.mark.parametrize(
    "args, wire",
    [
        ((sio.CONNECT, "/", {"sid": "ignored"}), ["40"]),  # no payload in v4-protocol CONNECT
        ((sio.CONNECT, "/admin"), ["40/admin,"]),
        ((sio.DISCONNECT, "/"), ["41"]),
        ((sio.DISCONNECT, "/admin"), ["41/admin,"]),
        ((sio.EVENT, "/", ["chat", "hi"]), ['42["chat","hi"]']),
        ((sio.EVENT, "/admin", ["chat", 1], 7), ['42/admin,7["chat",1]']),
        ((sio.ACK, "/", ["ok"], 3), ['433["ok"]']),
        ((sio.CONNECT_ERROR, "/", "Not authorized"), ['44"Not authorized"']),  # an ERROR packet: a string
        ((sio.CONNECT_ERROR, "/admin", "Invalid namespace"), ['44/admin,"Invalid namespace"']),
        (
            (sio.EVENT, "/", ["file", b"\x01\x02", {"n": b"\x03"}]),
            ['452-["file",{"_placeholder":true,"num":0},{"n":{"_placeholder":true,"num":1}}]', b"\x01\x02", b"\x03"],
        ),
        ((sio.ACK, "/x", [b"\xff"], 9), ['461-/x,9[{"_placeholder":true,"num":0}]', b"\xff"]),
    ],
)
def test_socketio_v4_protocol_encoding(args: tuple[Any, ...], wire: list[Any]) -> None:
    assert encode_v4(*args) == wire


@pytest.mark.parametrize(
    "name, split",
    [
        ("/", ("/", {})),
        ("/admin", ("/admin", {})),
        ("/admin?token=abc&x=1", ("/admin", {"token": "abc", "x": "1"})),
        ("/admin?token=a%20b&empty=", ("/admin", {"token": "a b", "empty": ""})),
        ("/admin?x=1&x=2", ("/admin", {"x": "2"})),  # the last value wins, as URLSearchParams → object
    ],
)
def test_connect_namespace_carries_the_query(name: str, split: tuple[str, dict[str, str]]) -> None:
    assert split_namespace(name) == split


def test_client_packets_decode_with_the_shared_decoder() -> None:
    """What socket.io-client 2.5 sends decodes with the v5 decoder (same packet grammar)."""
    decoder = sio.Decoder()
    assert decoder.add("0/admin?token=abc,") == sio.Packet(sio.CONNECT, "/admin?token=abc")
    assert decoder.add('2/admin,5["chat","x"]') == sio.Packet(sio.EVENT, "/admin", ["chat", "x"], 5)
    assert decoder.add('51-["up",{"_placeholder":true,"num":0}]') is None
    assert decoder.add(b"\x00\x01") == sio.Packet(sio.BINARY_EVENT, "/", ["up", b"\x00\x01"])


def test_the_v3_codec_is_pure() -> None:
    code = (
        "import sys\n"
        "import tornad_io.engineio.eio3_codec\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('tornado', 'asyncio'))\n"
        "assert not bad, bad\n"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
