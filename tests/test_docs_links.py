"""Relative links in the Markdown documentation lead somewhere.

Every relative link and image in README.md, docs/**/*.md and examples/**/*.md must name a file
or directory of the repository, and a ``#fragment`` pointing into a Markdown file must name one
of its headings, slugged as GitHub does. Links inside code (fenced blocks, inline spans) are not
links; absolute URLs are not checked (no network in the tests). Separately, a Markdown file named
in an inline code span (such as ``docs/cluster.md`` written between backticks) must exist too, so
prose cannot point at documents that are not in the repository.
"""

from __future__ import annotations

import glob
import os
import re
from urllib.parse import unquote

import pytest

from .conftest import ROOT


def documents() -> list[str]:
    found = {os.path.join(ROOT, "README.md")}
    for folder in ("docs", "examples"):
        found.update(glob.glob(os.path.join(ROOT, folder, "**", "*.md"), recursive=True))
    return sorted(path for path in found if os.path.isfile(path))


FENCE = re.compile(r"^\s{0,3}(`{3,}|~{3,})")
CODE_SPAN = re.compile(r"(`+)(.+?)\1")
INLINE_TARGET = re.compile(r"\]\(\s*(<[^>]*>|[^)\s]+)")  # [text](target ...) and ![alt](target ...)
REFERENCE = re.compile(r"^\s{0,3}\[[^\]]+\]:\s*(<[^>]*>|\S+)")  # [label]: target
HTML_TARGET = re.compile(r"<(?:a|img)\b[^>]*?\b(?:href|src)\s*=\s*[\"']([^\"']+)[\"']", re.IGNORECASE)
ATX_HEADING = re.compile(r"^\s{0,3}#{1,6}\s+(.*?)(?:\s+#+)?\s*$")
SETEXT_UNDERLINE = re.compile(r"^\s{0,3}(=+|-+)\s*$")
HTML_ANCHOR = re.compile(r"<a\b[^>]*\b(?:name|id)\s*=\s*[\"']([^\"']+)[\"']", re.IGNORECASE)
SCHEME = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*:")


def prose_lines(text: str) -> list[tuple[int, str]]:
    """(line number, line) outside fenced code blocks."""
    out: list[tuple[int, str]] = []
    fence: str | None = None
    for number, line in enumerate(text.splitlines(), 1):
        match = FENCE.match(line)
        if fence is None:
            if match:
                fence = match.group(1)
                continue
            out.append((number, line))
        elif match and match.group(1)[0] == fence[0] and len(match.group(1)) >= len(fence):
            fence = None
    return out


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: the rendered text, lower case, punctuation dropped, spaces as hyphens."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link shows its text
    text = re.sub(r"<[^>]+>", "", text).replace("`", "")
    text = re.sub(r"[^\w\- ]", "", text.strip().lower())
    return text.replace(" ", "-")


_anchors: dict[str, set[str]] = {}


def anchors(path: str) -> set[str]:
    """Every anchor GitHub makes for *path*: heading slugs (repeats numbered -1, -2 …) and HTML anchors."""
    if path not in _anchors:
        with open(path, encoding="utf-8") as f:
            lines = prose_lines(f.read())
        headings: list[str] = []
        found: set[str] = set()
        previous = ""
        for _, line in lines:
            atx = ATX_HEADING.match(line)
            if atx:
                headings.append(atx.group(1))
            elif SETEXT_UNDERLINE.match(line) and previous.strip() and not previous.lstrip().startswith("|"):
                headings.append(previous.strip())
            found.update(HTML_ANCHOR.findall(line))
            previous = line
        seen: dict[str, int] = {}
        for heading in headings:
            base = slug(heading)
            count = seen.get(base, 0)
            seen[base] = count + 1
            found.add(base if count == 0 else f"{base}-{count}")
        _anchors[path] = found
    return _anchors[path]


def targets(path: str) -> list[tuple[int, str]]:
    """(line number, target) of every link and image of *path*, code excluded."""
    with open(path, encoding="utf-8") as f:
        lines = prose_lines(f.read())
    out: list[tuple[int, str]] = []
    for number, line in lines:
        line = CODE_SPAN.sub(lambda m: " " * len(m.group(0)), line)
        for pattern in (INLINE_TARGET, REFERENCE, HTML_TARGET):
            out.extend((number, target.strip("<>")) for target in pattern.findall(line))
    return out


def problem(document: str, target: str) -> str | None:
    """Why *target*, linked from *document*, does not resolve (None if it does)."""
    if SCHEME.match(target) or target.startswith("//"):
        return None  # absolute URL
    path, _, fragment = target.partition("#")
    path = unquote(path)
    if not path:
        resolved = document
    elif path.startswith("/"):
        resolved = os.path.normpath(os.path.join(ROOT, path.lstrip("/")))
    else:
        resolved = os.path.normpath(os.path.join(os.path.dirname(document), path))
    if os.path.relpath(resolved, ROOT).startswith(".."):
        return "points outside the repository"
    if not os.path.exists(resolved):
        return "no such file"
    if fragment and resolved.endswith(".md") and os.path.isfile(resolved):
        if unquote(fragment).lower() not in anchors(resolved):
            return f"no heading #{fragment} in {os.path.relpath(resolved, ROOT)}"
    return None


DOCUMENTS = documents()
IDS = [os.path.relpath(path, ROOT) for path in DOCUMENTS]


def test_documents_found() -> None:
    assert {"README.md", os.path.join("docs", "architecture.md")} <= set(IDS)


@pytest.mark.parametrize("document", DOCUMENTS, ids=IDS)
def test_relative_links_resolve(document: str) -> None:
    broken = []
    for number, target in targets(document):
        reason = problem(document, target)
        if reason is not None:
            broken.append(f"{os.path.relpath(document, ROOT)}:{number}: ({target}) {reason}")
    assert not broken, "\n".join(broken)


MARKDOWN_PATH = re.compile(r"^[\w./-]+\.md$")


@pytest.mark.parametrize("document", DOCUMENTS, ids=IDS)
def test_markdown_files_named_in_code_exist(document: str) -> None:
    with open(document, encoding="utf-8") as f:
        lines = prose_lines(f.read())
    missing = []
    for number, line in lines:
        for _, span in CODE_SPAN.findall(line):
            name = span.strip()
            if not MARKDOWN_PATH.match(name) or SCHEME.match(name):
                continue
            here = os.path.join(os.path.dirname(document), name)
            if not (os.path.exists(os.path.join(ROOT, name)) or os.path.exists(here)):
                missing.append(f"{os.path.relpath(document, ROOT)}:{number}: `{name}` is not in the repository")
    assert not missing, "\n".join(missing)


def test_slugs_follow_github() -> None:
    assert slug("The client's address: `trusted_proxies`") == "the-clients-address-trusted_proxies"
    assert (
        slug("Load balancing: sticky sessions, or WebSocket only") == "load-balancing-sticky-sessions-or-websocket-only"
    )
    assert slug("Quick start (modern API)") == "quick-start-modern-api"
    assert slug("Server.http_server_options()") == "serverhttp_server_options"
    assert slug("A [linked](x.md) heading — with a dash") == "a-linked-heading--with-a-dash"


def test_no_install_command_names_a_package_index_release() -> None:
    """tornad_io is not on the package index: a bare ``pip install tornad_io`` cannot work."""
    bare = re.compile(r"""pip install\s+["']?tornad_io(\[[a-z,]+\])?(?!\s*@)["']?(\s|$)""")
    offenders = []
    for path in [os.path.join(ROOT, "README.md"), *glob.glob(os.path.join(ROOT, "docs", "**", "*.md"), recursive=True)]:
        with open(path, encoding="utf-8") as file:
            for number, line in enumerate(file, 1):
                if bare.search(line):
                    offenders.append(f"{os.path.relpath(path, ROOT)}:{number}: {line.strip()}")
    for root, _, files in os.walk(os.path.join(ROOT, "tornad_io")):
        for name in files:
            if name.endswith(".py"):
                with open(os.path.join(root, name), encoding="utf-8") as file:
                    for number, line in enumerate(file, 1):
                        if bare.search(line):
                            offenders.append(f"{name}:{number}: {line.strip()}")
    assert not offenders, offenders
