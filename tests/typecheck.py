"""Type-check code as a user would: ``mypy --strict`` in a subprocess, the package importable."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile

from .conftest import ROOT

# The package is found through MYPYPATH: an editable install's import hook is invisible to mypy.
_CONFIG = """\
[mypy]
strict = True
warn_unused_configs = False

[mypy-msgpack]
ignore_missing_imports = True
"""

_LINE = re.compile(r"^(?P<file>[^:]+\.py):(?P<line>\d+): (?P<kind>error|note): (?P<message>.*)$")


def mypy_strict(sources: dict[str, str]) -> tuple[dict[str, list[tuple[int, str]]], str]:
    """Run ``mypy --strict`` once on several modules (name → source).

    Returns each module's errors as ``(line, message)`` (notes left out), and
    mypy's whole output for assertion messages.
    """
    with tempfile.TemporaryDirectory() as tmp:
        paths = []
        for name, source in sources.items():
            path = os.path.join(tmp, name + ".py")
            with open(path, "w", encoding="utf-8") as file:
                file.write(source)
            paths.append(path)
        config = os.path.join(tmp, "mypy.ini")
        with open(config, "w", encoding="utf-8") as file:
            file.write(_CONFIG)
        env = dict(os.environ, MYPYPATH=ROOT)
        result = subprocess.run(
            [sys.executable, "-m", "mypy", "--config-file", config, "--cache-dir", os.path.join(tmp, "cache"), *paths],
            cwd=tmp,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        output = result.stdout + result.stderr
        errors: dict[str, list[tuple[int, str]]] = {name: [] for name in sources}
        for line in output.splitlines():
            found = _LINE.match(line)
            if found is None or found["kind"] != "error":
                continue
            name = os.path.splitext(os.path.basename(found["file"]))[0]
            if name not in errors:  # an error inside the package itself
                raise AssertionError(f"mypy reports an error outside the checked code:\n{output}")
            errors[name].append((int(found["line"]), found["message"]))
        if result.returncode not in (0, 1) or "error: " in result.stderr:
            raise AssertionError(f"mypy did not run:\n{output}")
        return errors, output
