"""An alias of :mod:`tornad_io.cluster`, kept for code written against earlier releases.

Earlier releases documented ``from tornad_io.redis_adapter import redis_adapter``;
that keeps working and gives the same objects. New code imports from
:mod:`tornad_io.cluster`.
"""

from .cluster import *  # noqa: F403 - the same names, nothing else
from .cluster import __all__ as __all__
