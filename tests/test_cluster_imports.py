"""One import path for the Redis adapters, and their errors in tornad_io.exceptions."""

from __future__ import annotations

import subprocess
import sys

import tornad_io.cluster
import tornad_io.exceptions
import tornad_io.redis_adapter

from .conftest import ROOT


def test_the_cluster_errors_live_in_the_exceptions_module() -> None:
    from tornad_io.exceptions import ClusterConnectionError, ClusterTimeout, TornadIOError

    assert tornad_io.cluster.ClusterTimeout is ClusterTimeout
    assert tornad_io.cluster.ClusterConnectionError is ClusterConnectionError
    assert ClusterTimeout.__module__ == ClusterConnectionError.__module__ == "tornad_io.exceptions"
    assert issubclass(ClusterTimeout, TornadIOError) and issubclass(ClusterTimeout, TimeoutError)
    assert issubclass(ClusterConnectionError, TornadIOError) and issubclass(ClusterConnectionError, ConnectionError)


def test_the_cluster_errors_can_be_caught_without_the_redis_extra() -> None:
    code = (
        "import sys; sys.modules['redis'] = None; sys.modules['msgpack'] = None\n"
        "from tornad_io.exceptions import ClusterTimeout, ClusterConnectionError\n"
        "try:\n    raise ClusterTimeout('late')\nexcept TimeoutError as error:\n    print(type(error).__name__)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ClusterTimeout"


def test_tornad_io_redis_adapter_is_only_an_alias_of_tornad_io_cluster() -> None:
    alias, module = tornad_io.redis_adapter, tornad_io.cluster
    assert alias.__all__ == module.__all__
    for name in module.__all__:
        assert getattr(alias, name) is getattr(module, name), name
    own = {name for name in vars(alias) if not name.startswith("__")}
    assert own <= set(module.__all__), own - set(module.__all__)
