"""The Redis adapters (the ``redis`` extra: ``pip install "/path/to/tornad_io[redis]"``); see :mod:`tornad_io.cluster`.

::

    from tornad_io import Server
    from tornad_io.redis_adapter import redis_adapter

    io = Server(adapter=redis_adapter("redis://127.0.0.1:6379/0"))
"""

from .cluster import *  # noqa: F403 - this module is the documented import path
from .cluster import __all__ as __all__
