"""Parsing a request's header block as Tornado does, faster in the common case.

``tornado.httputil.HTTPHeaders.parse`` checks every name and value with its
own regular expression and normalises every name: about a fifth of the lean
polling path's time per request (cProfile of ``benchmarks/run.py``'s
poll-echo). :func:`parse_headers` checks the whole block with one regular
expression that accepts only what Tornado accepts, and then fills an
``HTTPHeaders`` through its public mapping interface; a block it does not
accept (folded lines, bare LFs, characters Tornado refuses, anything unusual)
goes to ``HTTPHeaders.parse`` itself, which gives its answer or its error.
``tests/test_lean_http.py`` checks both against each other.
"""

from __future__ import annotations

import re

from tornado.httputil import HTTPHeaders

# One header line as Tornado's ABNF accepts it: a token, a colon, optional whitespace, a value of
# visible or obs-text characters with inner spaces or tabs (or none), optional whitespace, CRLF.
_VCHAR = r"\x21-\x7e\x80-\xff"
_LINE = rf"[!#$%&'*+\-.^_`|~0-9A-Za-z]+:[ \t]*(?:[{_VCHAR}](?:[ \t{_VCHAR}]*[{_VCHAR}])?)?[ \t]*\r\n"
_BLOCK = re.compile(rf"(?:\r\n)?(?:{_LINE})*")
_NAMES: dict[str, str] = {}
_NAMES_MAX = 512


def _normalized(name: str) -> str:
    norm = _NAMES.get(name)
    if norm is None:
        norm = "-".join([word.capitalize() for word in name.split("-")])  # as Tornado's _normalize_header
        if len(_NAMES) < _NAMES_MAX:
            _NAMES[name] = norm
    return norm


def parse_headers(text: str) -> HTTPHeaders:
    """``HTTPHeaders.parse(text)`` for a latin-1 header block of CRLF lines (the text after the request line)."""
    block = text if text.endswith("\r\n") else text + "\r\n"
    if not _BLOCK.fullmatch(block):
        return HTTPHeaders.parse(text)
    headers = HTTPHeaders()
    for line in block.split("\r\n"):
        if not line:
            continue
        name, _, value = line.partition(":")
        norm = _normalized(name)
        value = value.strip(" \t")
        if norm in headers:
            headers.add(norm, value)
        else:
            headers[norm] = value
    return headers
