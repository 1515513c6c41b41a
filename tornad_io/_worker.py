"""Which worker process this is, and which worker owns a session id (no Tornado, no asyncio).

Set in each worker right after the fork by :mod:`tornad_io.process`; the engine
reads :func:`owner_prefix` when it makes a session id. In a single process
nothing is set and ids are as they always were.
"""

from __future__ import annotations

import re
import string
from typing import Any

#: The characters that name a worker at the start of a session id (at most 62 workers).
OWNER_ALPHABET = string.digits + string.ascii_letters
#: The most workers :func:`tornad_io.serve` starts.
MAX_PROCESSES = len(OWNER_ALPHABET)

_SID_QUERY = re.compile(rb"[?&]sid=([0-9A-Za-z_-]+)")
_LEGACY_SID = re.compile(rb"/[a-z-]+/([0-9a-zA-Z]{33})(?=[/?\s])")


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


def owner_prefix() -> str:
    """The character a new session id starts with in this worker (empty in a single process)."""
    return OWNER_ALPHABET[_worker.index] if _worker is not None else ""


def owner_of(head: bytes) -> int | None:
    """The worker that owns the session a request names, from its first line; None if it names none."""
    line = head.split(b"\n", 1)[0]
    match = _SID_QUERY.search(line)
    if match is not None:
        sid = match.group(1)
        return OWNER_ALPHABET.find(chr(sid[0])) if len(sid) == 21 else None
    match = _LEGACY_SID.search(line)
    if match is not None:
        return OWNER_ALPHABET.find(chr(match.group(1)[0]))
    return None


_worker: Worker | None = None


def start(index: int, count: int) -> Worker:
    """Called in a worker just forked: this process is worker *index* of *count*."""
    global _worker
    _worker = Worker(index, count)
    return _worker
