"""The README's quick starts type-check under ``mypy --strict``, so they cannot drift from the API."""

from __future__ import annotations

import os
import re
import textwrap

import pytest

from .conftest import ROOT
from .typecheck import mypy_strict

SECTIONS = ("## Quick start (modern API)", "## Quick start (original SocketTornad.IO API)")


def python_blocks(heading: str) -> list[str]:
    """The ```python blocks between *heading* and the next heading of its level (indented ones too)."""
    with open(os.path.join(ROOT, "README.md"), encoding="utf-8") as file:
        text = file.read()
    start = text.index(heading + "\n")
    end = text.find("\n## ", start + len(heading))
    section = text[start : end if end != -1 else len(text)]
    blocks = re.findall(r"^([ \t]*)```python\n(.*?)^\1```$", section, flags=re.M | re.S)
    return [textwrap.dedent(body) for _, body in blocks]


def test_each_quick_start_has_code() -> None:
    assert len(python_blocks(SECTIONS[0])) >= 2  # the server, the class-based namespace
    assert len(python_blocks(SECTIONS[1])) >= 1


@pytest.mark.parametrize("heading", SECTIONS)
def test_quick_start_type_checks_strictly(heading: str) -> None:
    sources = {f"block{i}": code for i, code in enumerate(python_blocks(heading))}
    errors, output = mypy_strict(sources)
    assert all(not found for found in errors.values()), "\n\n".join([*sources.values(), output])
