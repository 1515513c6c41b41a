"""Moved to :mod:`tornad_io._usercode`; re-exported for the modules that still import it from here."""

from .._usercode import ack_args, call_user, spawn

__all__ = ["ack_args", "call_user", "spawn"]
