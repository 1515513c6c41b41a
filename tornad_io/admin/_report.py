"""What the Admin UI is sent: sockets as the reference serializes them, aggregated events, observed data."""

from __future__ import annotations

import datetime
import os
import time
from typing import Any, Callable, Mapping

from ..adapter import FetchedSocket


def timestamp() -> str:
    """Now, as a JavaScript ``Date`` reaches the UI in JSON (``2026-11-25T13:52:00.123Z``)."""
    now = datetime.datetime.now(datetime.timezone.utc)
    return now.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def plain(value: Any) -> Any:
    """*value* as something the Socket.IO encoder takes: what it cannot carry becomes its ``str``."""
    if value is None or isinstance(value, (str, bool, int, float, bytes)):
        return value
    if isinstance(value, Mapping):
        return {str(key): plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [plain(item) for item in value]
    return str(value)


def data_without_admin(data: Any) -> Any:
    """``socket.data`` as the UI shows it: without the instrumentation's ``_admin`` entry."""
    if isinstance(data, Mapping):
        return {str(key): plain(item) for key, item in data.items() if key != "_admin"}
    return plain(data) if data is not None else {}


def serialize(socket: FetchedSocket, nsp: str) -> dict[str, Any]:
    """A socket as the reference's ``serialize`` writes it (``all_sockets``, ``socket_connected``)."""
    data = socket.data
    admin = data.get("_admin") if isinstance(data, Mapping) else None
    handshake = socket.handshake
    headers = dict(handshake.headers)
    out: dict[str, Any] = {"id": socket.id}
    if isinstance(admin, Mapping):
        # A JavaScript undefined is left out of the JSON: so are missing values here.
        if admin.get("clientId") is not None:
            out["clientId"] = admin["clientId"]
        if admin.get("transport") is not None:
            out["transport"] = admin["transport"]
    out["nsp"] = nsp
    out["data"] = data_without_admin(data)
    out["handshake"] = {
        "address": headers.get("cf-connecting-ip") or headers.get("x-forwarded-for") or handshake.address,
        "headers": headers,
        "query": dict(handshake.query),
        "issued": handshake.issued,
        "secure": handshake.secure,
        "time": handshake.time,
        "url": handshake.url,
        "xdomain": handshake.xdomain,
        # the auth payload and anything else are left out, as the reference does
    }
    out["rooms"] = list(socket.rooms)
    return out


class EventBuffer:
    """Counts of engine events per second and kind, until the next ``server_stats`` takes them."""

    __slots__ = ("_counts",)

    def __init__(self) -> None:
        self._counts: dict[tuple[int, str, str | None], dict[str, Any]] = {}

    def push(self, type: str, sub_type: str | None = None, count: int = 1) -> None:
        """Count *count* events of *type* (and *sub_type*) in the current second."""
        second = int(time.time()) * 1000
        key = (second, type, sub_type)
        entry = self._counts.get(key)
        if entry is None:
            entry = self._counts[key] = {"timestamp": second, "type": type, "count": 0}
            if sub_type is not None:
                entry["subType"] = sub_type
        entry["count"] += count

    def take(self) -> list[dict[str, Any]]:
        """The counts so far (the reference's ``aggregatedEvents``), and start again."""
        values = list(self._counts.values())
        self._counts.clear()
        return values


class ObservedData(dict):  # type: ignore[type-arg]
    """``socket.data`` under instrumentation: a dict that reports changes (``socket_updated``).

    Setting or removing a key, at the top or in a dict stored in it, calls the
    observer (the reference watches ``socket.data`` through a JavaScript Proxy).
    Lists are not watched.
    """

    __slots__ = ("_changed",)

    def __init__(self, changed: Callable[[], None] | None = None) -> None:
        super().__init__()
        self._changed = changed

    def __reduce_ex__(self, protocol: Any) -> Any:
        # A copy or a pickle is a plain dict: it neither reports changes nor carries the observer.
        return (dict, (dict(self),))

    def _tell(self) -> None:
        changed = getattr(self, "_changed", None)
        if changed is not None:
            changed()

    def quietly(self, key: Any, value: Any) -> None:
        """Set *key* without telling the observer."""
        dict.__setitem__(self, key, watched(value, getattr(self, "_changed", None)))

    def __setitem__(self, key: Any, value: Any) -> None:
        dict.__setitem__(self, key, watched(value, getattr(self, "_changed", None)))
        self._tell()

    def __delitem__(self, key: Any) -> None:
        dict.__delitem__(self, key)
        self._tell()

    def update(self, *args: Any, **kwargs: Any) -> None:
        for key, value in dict(*args, **kwargs).items():
            self.quietly(key, value)
        self._tell()

    def setdefault(self, key: Any, default: Any = None) -> Any:
        if key in self:
            return self[key]
        self[key] = default
        return self[key]

    def pop(self, key: Any, *default: Any) -> Any:
        had = key in self
        value = dict.pop(self, key, *default)
        if had:
            self._tell()
        return value

    def popitem(self) -> tuple[Any, Any]:
        item = dict.popitem(self)
        self._tell()
        return item

    def clear(self) -> None:
        dict.clear(self)
        self._tell()


def watched(value: Any, changed: Callable[[], None] | None) -> Any:
    """A plain dict becomes an :class:`ObservedData` telling *changed*; anything else is kept."""
    if type(value) is dict:
        observed = ObservedData(changed)
        for key, item in value.items():
            observed.quietly(key, item)
        return observed
    return value


def _process_started() -> float:
    """When this process started, in seconds since the epoch (Linux ``/proc``; else when first asked)."""
    try:
        with open("/proc/self/stat", encoding="ascii") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
        with open("/proc/uptime", encoding="ascii") as uptime:
            since_boot = float(uptime.read().split()[0])
        started_after_boot = int(fields[19]) / os.sysconf("SC_CLK_TCK")
        return time.time() - (since_boot - started_after_boot)
    except (OSError, ValueError, IndexError):
        return time.time()


_STARTED = _process_started()


def uptime() -> float:
    """Seconds since the process started (Node's ``process.uptime()``)."""
    return max(0.0, time.time() - _STARTED)
