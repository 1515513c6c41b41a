// A remote-controlled socket.io-client 2.5 (Engine.IO v3) for the Python tests.
//
// The same line protocol as remote_client.mjs (one JSON command per line on stdin, one JSON report per
// line on stdout, binary values as {"$bin": "<base64>"} both ways), for the 2.x client:
//   {"cmd":"connect","id":"a","url":"http://127.0.0.1:1234/nsp","opts":{...},"acks":{"event":value}}
//   {"cmd":"emit","id":"a","event":"e","args":[...],"ack":true,"tag":"t"}
//   {"cmd":"disconnect","id":"a"}
//   {"cmd":"drop","id":"a"}          (closes the Engine.IO connection underneath)
//   {"cmd":"stop_pinging","id":"a"}  (the client stops its heartbeat and its own ping timeout; reports "stopped")
//   {"cmd":"exit"}
// Reports:
//   {"type":"connect","id":"a","sid":"<socket.id>","engine":"<Engine.IO id>","transport":"polling"}
//   {"type":"error","id":"a","data":...}            (an ERROR packet: a refused namespace)
//   {"type":"connect_error","id":"a","message":"..."}
//   {"type":"disconnect","id":"a","reason":"..."}
//   {"type":"upgrade","id":"a","transport":"websocket"}
//   {"type":"pong","id":"a"}                         (the server answered a heartbeat)
//   {"type":"event","id":"a","event":"e","args":[...]}
//   {"type":"ack","id":"a","tag":"t","args":[...]}
// 2.x has no onAny: incoming events are taken where the client dispatches them (Socket#onevent).
import io from "socket.io-client-v2";
import readline from "node:readline";

const sockets = new Map();

function out(report) {
  process.stdout.write(JSON.stringify(report) + "\n");
}

function toWire(value) {
  if (Buffer.isBuffer(value) || value instanceof ArrayBuffer || ArrayBuffer.isView(value)) {
    return { $bin: Buffer.from(value instanceof ArrayBuffer ? new Uint8Array(value) : value).toString("base64") };
  }
  if (Array.isArray(value)) return value.map(toWire);
  if (value && typeof value === "object") {
    const copy = {};
    for (const [k, v] of Object.entries(value)) copy[k] = toWire(v);
    return copy;
  }
  return value;
}

function fromWire(value) {
  if (Array.isArray(value)) return value.map(fromWire);
  if (value && typeof value === "object") {
    if (typeof value.$bin === "string") return Buffer.from(value.$bin, "base64");
    const copy = {};
    for (const [k, v] of Object.entries(value)) copy[k] = fromWire(v);
    return copy;
  }
  return value;
}

function connect({ id, url, opts = {}, acks = {} }) {
  const socket = io(url, { forceNew: true, reconnection: false, ...fromWire(opts) });
  sockets.set(id, socket);
  const manager = socket.io;
  manager.on("open", () => {
    manager.engine.on("upgrade", (transport) => out({ type: "upgrade", id, transport: transport.name }));
  });
  manager.on("pong", () => out({ type: "pong", id }));
  socket.on("connect", () => {
    out({ type: "connect", id, sid: socket.id, engine: manager.engine.id, transport: manager.engine.transport.name });
  });
  socket.on("error", (data) => out({ type: "error", id, data: toWire(data ?? null) }));
  socket.on("connect_error", (err) => out({ type: "connect_error", id, message: String(err && err.message) }));
  socket.on("disconnect", (reason) => out({ type: "disconnect", id, reason }));
  socket.onevent = function (packet) {
    const args = packet.data || [];
    const [event, ...rest] = args;
    out({ type: "event", id, event, args: toWire(rest) });
    if (packet.id != null) {
      const answer = this.ack(packet.id);
      if (Object.prototype.hasOwnProperty.call(acks, event)) answer(fromWire(acks[event]));
      else answer({ echo: rest });
    }
  };
}

function emit({ id, event, args = [], ack = false, tag }) {
  const socket = sockets.get(id);
  const values = fromWire(args);
  if (ack) socket.emit(event, ...values, (...res) => out({ type: "ack", id, tag, args: toWire(res) }));
  else socket.emit(event, ...values);
}

function stopPinging(id) {
  const engine = sockets.get(id).io.engine;
  engine.off("heartbeat", engine.onHeartbeat);
  engine.setPing = () => {};
  clearTimeout(engine.pingIntervalTimer);
  clearTimeout(engine.pingTimeoutTimer);
  out({ type: "stopped", id });
}

const rl = readline.createInterface({ input: process.stdin });
rl.on("line", (line) => {
  if (!line.trim()) return;
  const command = JSON.parse(line);
  switch (command.cmd) {
    case "connect":
      connect(command);
      break;
    case "emit":
      emit(command);
      break;
    case "disconnect":
      sockets.get(command.id)?.disconnect();
      break;
    case "drop":
      sockets.get(command.id)?.io.engine.close();
      break;
    case "stop_pinging":
      stopPinging(command.id);
      break;
    case "exit":
      for (const socket of sockets.values()) socket.disconnect();
      process.exit(0);
  }
});
rl.on("close", () => process.exit(0));
out({ type: "ready" });
