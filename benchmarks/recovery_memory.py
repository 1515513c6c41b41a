"""Memory of connection state recovery: bytes per stored session and per stored packet.

    python benchmarks/recovery_memory.py [--sessions 100000] [--packets 100000]

Sessions are kept as the server keeps them when sockets drop (an id, a private
id, two rooms and a small ``data`` dict); packets as a broadcast keeps them (a
60-byte event). Measured with ``tracemalloc`` (Python allocations only), so the
figures are the store's own cost, without the process around it.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tracemalloc

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from tornad_io.engineio.session import new_id  # noqa: E402
from tornad_io.recovery import RecoveryStore  # noqa: E402


def measure(sessions: int, packets: int) -> dict[str, float]:
    now = [0.0]
    store = RecoveryStore(max_duration=120.0, max_bytes=1 << 40, time=lambda: now[0])
    ids = [(new_id(), new_id()) for _ in range(sessions)]
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    for sid, pid in ids:
        store.persist(sid, pid, [sid, "lobby"], {"user": "someone"})
    after_sessions = tracemalloc.get_traced_memory()[0]
    for i in range(packets):
        offset = store.next_offset()
        store.keep(
            offset, [f'42["news",{{"n":{i},"text":"a short message"}},"{offset}"]'], frozenset({"lobby"}), frozenset()
        )
    after_packets = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    assert store.sessions == sessions
    return {
        "bytes per stored session": (after_sessions - before) / sessions,
        "bytes per stored packet": (after_packets - after_sessions) / packets,
        "sessions": sessions,
        "packets": packets,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=100_000)
    parser.add_argument("--packets", type=int, default=100_000)
    args = parser.parse_args()
    print(json.dumps(measure(args.sessions, args.packets), indent=2))


if __name__ == "__main__":
    main()
