"""Where the Admin UI's login sessions are kept, so that a reconnecting UI need not log in again.

After a login with username and password, the server sends the UI a session
id (the ``session`` event); the UI presents it (``auth.sessionId``) when it
connects again, and the store says whether it is known. :class:`InMemoryStore`
keeps them in the process; :class:`RedisStore` shares them between the servers
of a cluster, with the keys of the reference's ``RedisStore``
(``socket.io-admin#<id>``), so Node servers can share it too.
"""

from __future__ import annotations

from typing import Any, Protocol

__all__ = ["InMemoryStore", "RedisStore", "Store"]


class Store(Protocol):
    """What :func:`tornad_io.admin.instrument` needs of a session store."""

    async def does_session_exist(self, session_id: str) -> bool:
        """Whether *session_id* was saved (and has not expired)."""

    async def save_session(self, session_id: str) -> None:
        """Remember *session_id*."""


class InMemoryStore:
    """Sessions in this process's memory, for as long as it runs (the default)."""

    def __init__(self) -> None:
        #: The session ids saved so far.
        self.sessions: set[str] = set()

    async def does_session_exist(self, session_id: str) -> bool:
        """Whether *session_id* was saved."""
        return session_id in self.sessions

    async def save_session(self, session_id: str) -> None:
        """Remember *session_id*."""
        self.sessions.add(session_id)


class RedisStore:
    """Sessions in Redis, shared by the servers of a cluster, each kept *session_duration* seconds.

    *client* is a ``redis.asyncio`` client (the ``redis`` extra). Keys are
    ``<prefix>#<session id>``, as the reference's ``RedisStore`` writes them.
    """

    def __init__(self, client: Any, prefix: str = "socket.io-admin", session_duration: int = 86400) -> None:
        #: The ``redis.asyncio`` client.
        self.client = client
        #: The start of every key.
        self.prefix = prefix
        #: Seconds a session is kept (reference: one day).
        self.session_duration = session_duration

    def _key(self, session_id: str) -> str:
        return f"{self.prefix}#{session_id}"

    async def does_session_exist(self, session_id: str) -> bool:
        """Whether *session_id* is in Redis."""
        return bool(await self.client.exists(self._key(session_id)))

    async def save_session(self, session_id: str) -> None:
        """Store *session_id* in Redis with its expiry."""
        await self.client.set(self._key(session_id), "true", ex=self.session_duration)
