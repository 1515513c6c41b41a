"""The chat demo's page in headless Chromium: three pages, typed into like a person would (tests/js/chat_demo_browser.mjs)."""

from __future__ import annotations

import asyncio
import json
import os
from typing import Any

import pytest

from examples.chat.app import MAX_TEXT, make_app

from .conftest import NODE, ROOT

pytestmark = pytest.mark.slow  # headless Chromium (about 4 s)

LONG = "0123456789" * 300  # what the script sends: 3 000 characters without a break opportunity
CUT = LONG[:MAX_TEXT]


async def run_script(url: str, output_dir: str, timeout: float = 120) -> dict[str, Any]:
    proc = await asyncio.create_subprocess_exec(
        NODE,
        os.path.join(ROOT, "tests", "js", "chat_demo_browser.mjs"),
        url,
        output_dir,
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
    )
    try:
        stdout, _ = await asyncio.wait_for(proc.communicate(), timeout)
    except asyncio.TimeoutError:
        proc.kill()
        await proc.wait()
        raise
    assert proc.returncode == 0, stdout
    report: dict[str, Any] = json.loads(stdout)
    return report


def texts(page: dict[str, Any], cls: str | None = None) -> list[str]:
    return [line["text"] for line in page["lines"] if cls is None or line["cls"] == cls]


async def test_chat_demo_in_three_browser_pages(serve: Any, tmp_path: Any) -> None:
    if not os.path.exists(os.environ.get("CHROMIUM", "/usr/bin/chromium")):
        pytest.fail("chromium is missing: run the README's test command (it installs Debian's chromium)")
    app, io = make_app()
    served: list[tuple[int, str]] = []  # every request the server answered: (status, path)
    app.settings["log_function"] = lambda handler: served.append((handler.get_status(), handler.request.path))
    server = await serve(app)
    report = await run_script(server.url + "/", str(tmp_path))
    assert report["ok"], report.get("exception")

    # both chatted, each saw the other's message (and their own)
    for name in ("ann", "bob"):
        lines = texts(report[name])
        assert "Ann: hello Bob ☀" in lines and "Bob: hi Ann, long time no see" in lines
        # the 3 000-character word arrived cut to the server's limit, for both
        assert "Ann: " + CUT in lines and not any(LONG[: MAX_TEXT + 1] in line for line in lines)
    # a message from someone ends the "is typing" note about them
    assert report["bobTypingAfterAnnSaid"] == ""
    # only the sender is told about the cut
    notice = f"your message had {len(LONG)} characters: only the first {MAX_TEXT} were sent"
    assert notice in texts(report["ann"], "warn")
    assert not any(line.startswith("your message had") for line in texts(report["bob"]))

    # the long word wraps inside the log box: nothing sticks out of it, and the page does not scroll sideways
    for name in ("ann", "bob", "cid"):
        layout = report[name]["layout"]
        assert layout["scrollWidth"] <= layout["clientWidth"], (name, layout)
        assert layout["widestLine"] <= layout["logWidth"], (name, layout)
        assert layout["documentScrollWidth"] <= layout["viewportWidth"], (name, layout)

    # the late joiner sees the last messages (all three here; test_demo.py checks the bound of HISTORY) and
    # who is online
    assert texts(report["cid"], "past") == [
        "Ann: hello Bob ☀",
        "Bob: hi Ann, long time no see",
        "Ann: " + CUT,
    ]
    assert "online: Ann, Bob" in texts(report["cid"], "note")

    # no request answered 404 or failed, no script error. Chromium's own favicon request does not reach
    # the page's "response" events (a 404 of it shows as a console error), so the server's log is checked too.
    assert report["responses"], "no responses were seen"
    assert [r for r in report["responses"] if r["status"] >= 400] == []
    assert ("/favicon.ico" not in {path for _, path in served}) and [s for s in served if s[0] >= 400] == []
    assert report["failed"] == [] and report["errors"] == [] and report["console"] == []

    # screenshots were written and hold a rendered page, not an empty image
    for key in ("screenshotChat", "screenshot", "screenshotLate"):
        with open(report[key], "rb") as png:
            head = png.read(24)
        assert head[:8] == b"\x89PNG\r\n\x1a\n"
        width, height = int.from_bytes(head[16:20], "big"), int.from_bytes(head[20:24], "big")
        assert width >= 600 and height >= 400, (width, height)
        assert os.path.getsize(report[key]) > 10_000
    await io.shutdown()
