"""The chat demo, driven by two real socket.io-client instances."""

from __future__ import annotations

from typing import Any

from examples.chat.app import make_app


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
    node.emit("bob", "say", "hi Ann ☀")
    for cid in ("ann", "bob"):
        await node.expect("event", cid, event="said", args=[{"name": "Bob", "text": "hi Ann ☀"}])
    node.send(cmd="disconnect", id="bob")
    await node.expect("event", "ann", event="left", args=["Bob"])
