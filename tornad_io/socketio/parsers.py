"""The parser seam: how Socket.IO v5 packets become Engine.IO messages and back.

A server has one parser (the ``parser`` option): :class:`JSONParser` by
default, which is the official text format with binary attachments
(``tornad_io/socketio/codec.py``), or ``"msgpack"``, the format of the npm
package ``socket.io-msgpack-parser`` 3.x
(:class:`~tornad_io.socketio.msgpack_parser.MsgpackParser`, with the
``msgpack`` extra). Any object that satisfies :class:`Parser` can be given
instead; the client must use the matching parser.

Sans-IO, like the codecs: this module imports neither Tornado nor asyncio.

What a parser owes the rest of the server:

- :meth:`Parser.encode` turns one :class:`~tornad_io.socketio.codec.Packet`
  into the Engine.IO MESSAGE payloads that carry it, in order: a ``str`` goes
  out as a text message, ``bytes`` as a binary one. The result is shared by
  every recipient of a broadcast, so it must not depend on the recipient.
  Packet types the server sends: CONNECT (data ``{"sid": ..., "pid": ...}``),
  DISCONNECT (no data), EVENT and ACK (a list, maybe holding ``bytes``; with an
  ``id`` when an acknowledgement is asked for or answered) and CONNECT_ERROR
  (``{"message": ..., "data": ...}``). BINARY_EVENT and BINARY_ACK are never
  passed in: a parser that needs them (the JSON one) chooses them itself.
  Values it cannot encode raise :exc:`TypeError`.
- :meth:`Parser.decoder` gives one :class:`Decoder` per connection, which is
  fed the payload of every MESSAGE the client sends and returns a packet once
  one is complete. Its input is hostile: it raises
  :class:`~tornad_io.exceptions.ProtocolError` and nothing else on anything
  malformed (the server then closes the connection with ``parse error``), and
  it keeps within the limits below.

The limits a decoder keeps. Each message it gets is already at most
``max_http_buffer_size`` bytes (the transports cut bigger ones off). It must not
hold more than *max_attachments* pending binary parts, nor more than
*max_attachment_bytes* bytes of them, for one packet
(:class:`~tornad_io.exceptions.PayloadTooLarge` beyond), must refuse nesting
deeper than 1 024 levels (``orjson``'s limit, and the C ``msgpack``
unpacker's) without exhausting the interpreter's recursion limit, and must
check what the server relies on: a ``str`` namespace, an integer ``id``
from 0 up to (not including) 10\\ :sup:`16`, a ``dict`` (or nothing) as CONNECT data, nothing
as DISCONNECT data, and for EVENT a non-empty ``list`` whose first item is a
string that is not a reserved event name (or a number); ACK data is a
``list``. :func:`check_packet` does that last part.
"""

from __future__ import annotations

import importlib
import weakref
from typing import Any, Protocol, runtime_checkable

from ..exceptions import ProtocolError
from . import codec

#: The most nested containers one message may hold (``orjson`` and the C ``msgpack`` unpacker stop there too).
MAX_DEPTH = 1024
#: The largest ack id a decoder lets through (the JSON format allows 16 digits; JavaScript numbers
#: lose precision beyond that anyway).
MAX_ACK_ID = 10**16 - 1


class Decoder(Protocol):
    """Reassembles one connection's packets from the Engine.IO messages its client sends."""

    def add(self, message: str | bytes) -> codec.Packet | None:
        """Feed one MESSAGE payload; return the packet it completes, or None while parts are due.

        Raises :class:`~tornad_io.exceptions.ProtocolError` (only) on malformed input.
        """


@runtime_checkable
class Parser(Protocol):
    """A Socket.IO packet format: an encoder, and a decoder per connection (see the module)."""

    #: A short name for logs and reports (``"json"``, ``"msgpack"``).
    name: str

    def encode(self, packet: codec.Packet) -> list[str | bytes]:
        """*packet* as Engine.IO MESSAGE payloads: ``str`` for text messages, ``bytes`` for binary ones."""

    def decoder(self, max_attachments: int, max_attachment_bytes: int | None) -> Decoder:
        """A new decoder for one connection, with the limits of the server's options."""


class JSONParser:
    """The default parser: the Socket.IO v5 text format with binary attachments.

    ``2["chat","hi"]`` for an event; binary values travel as separate binary
    messages after the text, which holds ``{"_placeholder":true,"num":n}`` in
    their place (``tornad_io/socketio/codec.py``).
    """

    __slots__ = ()

    #: The parser's name.
    name = "json"

    def encode(self, packet: codec.Packet) -> list[str | bytes]:
        """The text part of *packet*, then its attachments (EVENT with bytes becomes BINARY_EVENT)."""
        return codec.encode(packet.type, packet.nsp, packet.data, packet.id)

    def decoder(self, max_attachments: int, max_attachment_bytes: int | None) -> codec.Decoder:
        """A :class:`codec.Decoder <tornad_io.socketio.codec.Decoder>` with these limits."""
        return codec.Decoder(max_attachments, max_attachment_bytes)

    def __repr__(self) -> str:
        return "JSONParser()"


#: The default parser (one instance is enough: it holds nothing).
JSON_PARSER = JSONParser()

# Parsers known by name: where each one's class lives, and the extra that brings its dependency.
_NAMED = {"msgpack": ("tornad_io.socketio.msgpack_parser", "MsgpackParser")}


def resolve(setting: str | Parser) -> Parser:
    """The parser for the ``parser`` option: ``"json"``, ``"msgpack"``, or a :class:`Parser` as it is.

    ``"msgpack"`` needs the ``msgpack`` package (``pip install tornad_io[msgpack]``);
    without it, :exc:`ImportError` says so.
    """
    if isinstance(setting, str):
        if setting == "json":
            return JSON_PARSER
        home = _NAMED.get(setting)
        if home is None:
            raise ValueError(f"unknown parser {setting!r}: use 'json', 'msgpack' or a Parser object")
        parser: Parser = getattr(importlib.import_module(home[0]), home[1])()
        return parser
    if isinstance(setting, Parser):
        return setting
    raise TypeError(f"parser must be 'json', 'msgpack' or a Parser object, not {type(setting).__name__}")


class Encoding:
    """What an adapter's encode-once cache is keyed by: a protocol generation and a parser.

    Get it from :func:`encoding_for`, which gives the same object for the same
    pair, so that every client of a server shares its broadcasts' encoding,
    and different objects for different parsers. Hashed and compared by
    identity: a broadcast looks one up per recipient, and a tuple key
    (hashed anew each time) measured about 5% slower on 1 000 recipients.
    """

    __slots__ = ("generation", "parser", "__weakref__")

    def __init__(self, generation: str, parser: Parser) -> None:
        #: The protocol generation's name (``"v5"``).
        self.generation = generation
        #: The parser.
        self.parser = parser

    def __repr__(self) -> str:
        return f"Encoding({self.generation!r}, {self.parser!r})"


# Live keys by (generation, id(parser)): a key holds its parser, so the id is not reused while it lives.
_ENCODINGS: weakref.WeakValueDictionary[tuple[str, int], Encoding] = weakref.WeakValueDictionary()


def encoding_for(generation: str, parser: Parser) -> Encoding:
    """The one :class:`Encoding` of *generation* and *parser* (built on first use)."""
    key = (generation, id(parser))
    encoding = _ENCODINGS.get(key)
    if encoding is None:
        encoding = _ENCODINGS[key] = Encoding(generation, parser)
    return encoding


def check_packet(type: int, nsp: Any, data: Any, id: Any, has_data: bool) -> None:
    """Raise :class:`~tornad_io.exceptions.ProtocolError` unless the packet's fields are what the server relies on.

    *type* is already known to be CONNECT, DISCONNECT, EVENT, ACK or
    CONNECT_ERROR (or a BINARY type); *has_data* tells an absent payload from
    one that is null.
    """
    if not isinstance(nsp, str):
        raise ProtocolError("invalid namespace")
    if id is not None and (isinstance(id, bool) or not isinstance(id, int) or not 0 <= id <= MAX_ACK_ID):
        raise ProtocolError("invalid packet id")
    if has_data:
        if not codec._payload_valid(type, data):
            raise ProtocolError("invalid payload")
    elif type in (codec.EVENT, codec.ACK, codec.BINARY_EVENT, codec.BINARY_ACK, codec.CONNECT_ERROR):
        raise ProtocolError("missing payload")
