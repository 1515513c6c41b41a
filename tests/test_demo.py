"""The chat demo, driven by two real socket.io-client instances."""

from __future__ import annotations

from typing import Any

from examples.chat.app import HISTORY, MAX_TEXT, make_app


async def test_chat_demo(serve: Any, node: Any) -> None:
    app, io = make_app()
    server = await serve(app)
    node.connect("ann", server.url, transports=["polling"])
    node.connect("bob", server.url)
    await node.expect("connect", "ann")
    await node.expect("connect", "bob")
    node.emit("ann", "join", "Ann", ack=True, tag="j1")
    assert (await node.expect("ack", "ann", tag="j1"))["args"][0]["name"] == "Ann"
    await node.expect("event", "bob", event="joined", args=["Ann"])
    node.emit("bob", "join", "Bob", ack=True, tag="j2")
    assert (await node.expect("ack", "bob", tag="j2"))["args"][0]["users"] == ["Ann", "Bob"]
    node.emit("bob", "say", "hi Ann ☀", ack=True, tag="s1")
    for cid in ("ann", "bob"):
        await node.expect("event", cid, event="said", args=[{"name": "Bob", "text": "hi Ann ☀"}])
    assert (await node.expect("ack", "bob", tag="s1"))["args"] == [
        {"ok": True, "truncated": False, "length": 8, "limit": MAX_TEXT}
    ]
    # a message over the limit is cut for everyone, and the sender's answer says so
    node.emit("ann", "say", "x" * 3000, ack=True, tag="s2")
    await node.expect("event", "bob", event="said", args=[{"name": "Ann", "text": "x" * MAX_TEXT}])
    assert (await node.expect("ack", "ann", tag="s2"))["args"] == [
        {"ok": True, "truncated": True, "length": 3000, "limit": MAX_TEXT}
    ]
    # a late joiner gets who is online and the last HISTORY messages; saying before joining is refused
    for n in range(HISTORY):
        node.emit("bob", "say", f"n{n}", ack=True, tag=f"n{n}")
    await node.expect("ack", "bob", tag=f"n{HISTORY - 1}")
    node.connect("cid", server.url)
    history = await node.expect("event", "cid", event="history")
    assert history["args"] == [
        {"users": ["Ann", "Bob"], "messages": [{"name": "Bob", "text": f"n{n}"} for n in range(HISTORY)]}
    ]
    node.emit("cid", "say", "who am I?", ack=True, tag="s3")
    assert (await node.expect("ack", "cid", tag="s3"))["args"] == [{"ok": False}]
    node.send(cmd="disconnect", id="bob")
    await node.expect("event", "ann", event="left", args=["Bob"])
