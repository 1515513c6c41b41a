"""Where users go wrong, the error says what to do."""

from __future__ import annotations

import subprocess
import sys

import pytest

from .conftest import ROOT


def import_without(module: str, statement: str) -> subprocess.CompletedProcess[str]:
    """Run *statement* in a fresh interpreter in which *module* cannot be imported."""
    code = f"import sys; sys.modules[{module!r}] = None\n{statement}"
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize("missing", ["msgpack", "redis"])
@pytest.mark.parametrize(
    "statement",
    [
        "import tornad_io.redis_adapter",
        "from tornad_io.redis_adapter import redis_adapter",
        "import tornad_io.cluster",
        "from tornad_io.cluster.classic import RedisAdapter",
    ],
)
def test_the_redis_adapter_without_its_extra_says_how_to_install_it(missing: str, statement: str) -> None:
    result = import_without(missing, statement)
    assert result.returncode != 0
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("ImportError: the Redis adapters need the optional dependencies redis and msgpack")
    assert f"({missing} is missing)" in last and "pip install 'tornad_io[redis]'" in last


def test_the_core_needs_neither_redis_nor_msgpack() -> None:
    result = import_without("msgpack", "import sys; sys.modules['redis'] = None\nimport tornad_io; tornad_io.Server()")
    assert result.returncode == 0, result.stderr
