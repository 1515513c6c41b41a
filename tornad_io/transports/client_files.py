"""The client bundle at ``/socket.io/socket.io.js`` (server option ``serve_client``), as the reference serves it.

The files come from an installed ``socket.io-client`` package (its ``dist``
folder): ``socket.io.js``, ``socket.io.min.js``, ``socket.io.esm.min.js``,
``socket.io.msgpack.min.js`` and their source maps. As in the reference, the
ETag is the package's version in quotes, a matching ``If-None-Match`` (strong
or weak) gets ``304 Not Modified``, responses say ``Cache-Control: public,
max-age=0`` and ``application/javascript`` (``application/json`` for maps),
and the body is gzip- or deflate-compressed when the client accepts it (the
reference also offers Brotli, which the standard library lacks).
"""

from __future__ import annotations

import gzip
import json
import os
import re
import zlib
from typing import Any

import tornado.web

__all__ = ["CLIENT_FILES", "ClientBundle", "client_routes"]

#: The files served, as the reference lists them.
CLIENT_FILES = frozenset(
    name + suffix
    for name in ("socket.io.js", "socket.io.min.js", "socket.io.esm.min.js", "socket.io.msgpack.min.js")
    for suffix in ("", ".map")
)


class ClientBundle:
    """An installed ``socket.io-client`` package: its version and its ``dist`` files, read once."""

    def __init__(self, package_dir: str) -> None:
        self.package_dir = package_dir
        self.dist = os.path.join(package_dir, "dist")
        try:
            with open(os.path.join(package_dir, "package.json"), encoding="utf-8") as file:
                version = json.load(file)["version"]
        except (OSError, ValueError, KeyError) as error:
            raise ValueError(
                f"serve_client: {package_dir!r} is not an installed socket.io-client package "
                f"(no readable package.json with a version): {error}"
            ) from None
        if not os.path.isfile(os.path.join(self.dist, "socket.io.js")):
            raise ValueError(f"serve_client: {package_dir!r} has no dist/socket.io.js (is it socket.io-client?)")
        self.version = str(version)
        #: The ETag of every file: the package's version, quoted.
        self.etag = f'"{self.version}"'
        self._bodies: dict[tuple[str, str], bytes] = {}

    def body(self, filename: str, encoding: str = "identity") -> bytes:
        """The bytes of *filename*, compressed with *encoding* (``gzip``, ``deflate`` or ``identity``)."""
        key = (filename, encoding)
        body = self._bodies.get(key)
        if body is None:
            if encoding == "identity":
                with open(os.path.join(self.dist, filename), "rb") as file:
                    body = file.read()
            elif encoding == "gzip":
                body = gzip.compress(self.body(filename), compresslevel=9, mtime=0)
            else:
                body = zlib.compress(self.body(filename), 9)
            self._bodies[key] = body
        return body


def _accepted_encoding(header: str) -> str:
    """The best of gzip and deflate that an ``Accept-Encoding`` header accepts, else ``identity``."""
    weights: dict[str, float] = {}
    for part in header.split(","):
        coding, _, params = part.strip().partition(";")
        quality = 1.0
        match = re.search(r"q\s*=\s*([0-9.]+)", params)
        if match:
            try:
                quality = float(match.group(1))
            except ValueError:
                quality = 0.0
        weights[coding.strip().lower()] = quality
    best, best_quality = "identity", 0.0
    for coding in ("gzip", "deflate"):
        quality = weights.get(coding, weights.get("*", 0.0))
        if quality > best_quality:
            best, best_quality = coding, quality
    return best


class ClientFileHandler(tornado.web.RequestHandler):
    """One of :data:`CLIENT_FILES`, with the reference's caching headers."""

    def initialize(self, bundle: ClientBundle, options: Any) -> None:
        self.bundle = bundle
        self.opts = options

    def compute_etag(self) -> str | None:
        return None  # the ETag is the package version, set below

    def check_xsrf_cookie(self) -> None:
        return None

    def _cors(self) -> None:
        origin = self.request.headers.get("Origin")
        allowed = self.opts.cors_allowed_origins
        if origin is None or allowed is None:
            return
        if allowed == "*" and not self.opts.cors_credentials:
            self.set_header("Access-Control-Allow-Origin", "*")
            return
        if (
            allowed == "*"
            or (callable(allowed) and allowed(origin))
            or origin == allowed
            or (not isinstance(allowed, str) and not callable(allowed) and origin in allowed)
        ):
            self.set_header("Access-Control-Allow-Origin", origin)
            self.add_header("Vary", "Origin")
            if self.opts.cors_credentials:
                self.set_header("Access-Control-Allow-Credentials", "true")

    def head(self, filename: str) -> None:
        self.get(filename)

    def get(self, filename: str) -> None:
        bundle = self.bundle
        self._cors()
        if self.request.headers.get("If-None-Match") in (bundle.etag, "W/" + bundle.etag):
            self.set_status(304)
            self.finish()
            return
        is_map = filename.endswith(".map")
        self.set_header("Cache-Control", "public, max-age=0")
        self.set_header("Content-Type", f"application/{'json' if is_map else 'javascript'}; charset=utf-8")
        self.set_header("ETag", bundle.etag)
        self.add_header("Vary", "Accept-Encoding")
        encoding = _accepted_encoding(self.request.headers.get("Accept-Encoding", ""))
        if encoding != "identity":
            self.set_header("Content-Encoding", encoding)
        body = bundle.body(filename, encoding)
        if self.request.method == "HEAD":
            self.set_header("Content-Length", str(len(body)))
            self.finish()
            return
        self.finish(body)


def client_routes(package_dir: str, path: str, options: Any) -> list[tuple[str, type, dict[str, Any]]]:
    """The URL rule serving the client bundle from *package_dir* under the mount *path*."""
    bundle = ClientBundle(package_dir)
    mount = path.rstrip("/")
    names = "|".join(re.escape(name) for name in sorted(CLIENT_FILES))
    return [(re.escape(mount) + f"/({names})", ClientFileHandler, {"bundle": bundle, "options": options})]
