"""Which worker process this is, and which worker owns a session id (no Tornado, no asyncio).

Set in each worker right after the fork by :mod:`tornad_io.process`; the engine
reads :func:`owner_prefix` when it makes a session id. In a single process
nothing is set and ids are as they always were.

A node of a cluster that forwards requests between nodes (``serve(...,
advertise=...)``) also has a :class:`Node` identity: its tag, of
``TAG_LENGTH`` characters, starts every session id, before the worker's
character (which is then always there, ``0`` in a single process). So a session
id reads ``<node tag><worker><random id>``.
"""

from __future__ import annotations

import re
import string
from typing import Any

#: The characters that name a worker at the start of a session id (at most 62 workers).
OWNER_ALPHABET = string.digits + string.ascii_letters
#: The most workers :func:`tornad_io.serve` starts.
MAX_PROCESSES = len(OWNER_ALPHABET)

#: The length of a node's tag in a session id.
TAG_LENGTH = 8

_SID_QUERY = re.compile(rb"[?&]sid=([0-9A-Za-z_-]+)")
_LEGACY_SID = re.compile(rb"/[a-z-]+/([0-9a-zA-Z]{33,64})(?=[/?\s])")
_EIO_ID_LENGTH = 20  # secrets.token_urlsafe(15)
_LEGACY_ID_LENGTH = 32  # secrets.token_hex(16)


class Node:
    """What a node of a forwarding cluster knows of itself: its tag and its forwarding token."""

    __slots__ = ("tag", "token")

    def __init__(self, tag: str, token: str) -> None:
        #: The ``TAG_LENGTH`` (8) characters of ``[0-9a-zA-Z]`` that start this node's session ids.
        self.tag = tag
        #: The secret other nodes present when they forward a connection here (published in the directory).
        self.token = token


class Worker:
    """What a worker process knows of itself: its index, the worker count, its channel."""

    def __init__(self, index: int, count: int) -> None:
        #: This worker's index (0 to count - 1), the first character of its session ids.
        self.index = index
        #: How many workers the supervisor keeps alive (updated when one dies or returns).
        self.count = count
        #: Its :class:`~tornad_io.process.WorkerChannel` to the supervisor, once the worker's loop runs.
        self.channel: Any = None


def current_worker() -> Worker | None:
    """This process's :class:`Worker` under :func:`tornad_io.serve` with several processes, else None."""
    return _worker


def current_node() -> Node | None:
    """This node's :class:`Node` identity when it forwards requests between nodes, else None."""
    return _node


def owner_prefix() -> str:
    """What a new session id starts with here: the node's tag and the worker's character (or nothing)."""
    if _node is not None:
        return _node.tag + OWNER_ALPHABET[_worker.index if _worker is not None else 0]
    return OWNER_ALPHABET[_worker.index] if _worker is not None else ""


def owner(head: bytes) -> tuple[str | None, int | None]:
    """The node tag and worker index that own the session a request names, from its first line.

    ``(None, None)`` when the line names no session (a handshake) or an id
    made without that information; the tag is None unless this node forwards.
    """
    line = head.split(b"\n", 1)[0]
    prefix = (TAG_LENGTH + 1) if _node is not None else 1
    match = _SID_QUERY.search(line)
    if match is not None:
        sid, length = match.group(1), _EIO_ID_LENGTH
    else:
        match = _LEGACY_SID.search(line)
        if match is None:
            return None, None
        sid, length = match.group(1), _LEGACY_ID_LENGTH
    if len(sid) != prefix + length:
        return None, None
    worker = OWNER_ALPHABET.find(chr(sid[prefix - 1]))
    tag = sid[:TAG_LENGTH].decode() if _node is not None else None
    return tag, (worker if worker >= 0 else None)


def owner_of(head: bytes) -> int | None:
    """The worker that owns the session a request names, from its first line; None if it names none."""
    return owner(head)[1]


_worker: Worker | None = None
_node: Node | None = None


def set_node(node: Node | None) -> None:
    """Called before serving (and before any fork): this node forwards, with identity *node*."""
    global _node
    _node = node


def start(index: int, count: int) -> Worker:
    """Called in a worker just forked: this process is worker *index* of *count*."""
    global _worker
    _worker = Worker(index, count)
    return _worker
