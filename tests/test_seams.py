"""The seams hold: no shared code branches on a protocol generation's or a transport's name."""

from __future__ import annotations

import os
import re

from .conftest import ROOT

NAMES = r"(polling|websocket|flashsocket|xhr-polling|jsonp-polling|xhr-multipart|htmlfile|0\.6|v4|v5|EIO3|3|4)"
# a name compared with ==, != or `in`, or a .name/.generation compared with anything
LITERAL = re.compile(rf"""(==|!=|\bin\b)\s*\(?\s*["']{NAMES}["']|["']{NAMES}["']\s*(==|!=)""")
ATTRIBUTE = re.compile(r"transport\.name\s*(==|!=|in\b)|\.generation\s*(==|!=)|(==|!=)\s*[\w.]*\.generation\b")

# A transport's or generation's own module may speak of itself by name.
OWN_MODULES = {
    "tornad_io/transports/engineio.py",  # Engine.IO v4's polling and websocket handlers
    "tornad_io/transports/lean_websocket.py",  # the lean WebSocket handshake (the HTTP Upgrade token)
    "tornad_io/transports/legacy.py",  # the six 0.6 transports
    "tornad_io/engineio/server.py",  # Engine.IO v4 request checks (the transport query parameter)
    "tornad_io/options.py",  # validation of the transports option
}


def package_files() -> list[str]:
    found = []
    for root, _, files in os.walk(os.path.join(ROOT, "tornad_io")):
        for name in files:
            if name.endswith(".py"):
                found.append(os.path.relpath(os.path.join(root, name), ROOT))
    return sorted(found)


def test_no_shared_code_compares_generation_or_transport_names() -> None:
    offenders = []
    for path in package_files():
        with open(os.path.join(ROOT, path), encoding="utf-8") as file:
            for number, line in enumerate(file, 1):
                code = line.split("#", 1)[0]
                if path not in OWN_MODULES and (LITERAL.search(code) or ATTRIBUTE.search(code)):
                    offenders.append(f"{path}:{number}: {line.strip()}")
    assert not offenders, "\n".join(offenders)


def test_the_check_finds_what_it_looks_for() -> None:
    assert LITERAL.search('if session.generation == "0.6":')
    assert LITERAL.search('if transport.name == "polling" and x:')
    assert ATTRIBUTE.search("if self.transport.name == kind:")
    assert not LITERAL.search('if self.transport.pulls and "x" == y:')
