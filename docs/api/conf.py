"""Sphinx configuration of the API reference (``docs/api``).

Build: ``python -m sphinx -W --keep-going -b html docs/api build/api`` (``pip install -e ".[test]"``
installs Sphinx). ``tests/test_api_reference.py`` runs exactly that, so a broken docstring or
cross-reference fails CI.

Why Sphinx: Tornado's own documentation is built with it, so the reference reads like the
framework's (autodoc from the same reST docstrings, Tornado's docstring style), it checks every
cross-reference (``nitpicky``), and it builds this reference with ``-W`` in a few seconds, with no
network and no theme beyond the built-in one.
"""

from __future__ import annotations

import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, ROOT)  # the checkout's package, installed or not

project = "tornad_io"
author = "tornad_io contributors"
copyright = "2010-2026, tornad_io contributors; Apache-2.0"
extensions = ["sphinx.ext.autodoc"]

# Every reference must resolve: to a documented name, a builtin or a typing name. Names of other
# projects (Tornado, asyncio, redis-py) are left unlinked: intersphinx would need their inventories
# from the network at build time.
nitpicky = True
nitpick_ignore_regex = [
    (r"py:.*", r"(tornado|httputil|asyncio|socket|redis|aioredis|collections\.abc|typing_extensions)(\..*)?"),
]
# Internal classes that appear in signatures; the docstrings say what they offer.
nitpick_ignore = [
    ("py:class", "Client"),
    ("py:class", "_Shared"),
    ("py:class", "_asyncio.Future"),
    ("py:class", "tornad_io.engineio.legacy_codec.Message"),
    ("py:class", "tornad_io.socketio.socket._TimedEmitter"),
    ("py:class", "tornad_io.socketio.socket._VolatileEmitter"),
    ("py:class", "tornad_io.socketio.socket._CompressEmitter"),
]

autodoc_member_order = "bysource"
autodoc_typehints = "signature"
autodoc_default_options = {"members": True}
autoclass_content = "class"
add_module_names = False

html_theme = "alabaster"
html_title = "tornad_io API reference"
