"""Client-chosen values in log records: quoted, escaped and cut short.

A namespace or event name, an origin or a header comes from the network. Logged
raw, a newline or an ANSI escape in it would forge a log line or rewrite the
terminal; ``repr`` escapes both, and the cut keeps one record small.
"""

from __future__ import annotations

from typing import Any

_LIMIT = 100


def safe_repr(value: Any, limit: int = _LIMIT) -> str:
    """``repr(value)`` of at most about *limit* characters, marked when cut."""
    if isinstance(value, str) and len(value) > limit:
        return repr(value[:limit]) + f"...(+{len(value) - limit} chars)"
    text = repr(value)
    if len(text) > limit + 2:
        return text[:limit] + f"...(+{len(text) - limit} chars)"
    return text
