// A remote-controlled socket.io-client 4.x for the Python tests.
//
// Reads one JSON command per line on stdin and writes one JSON report per
// line on stdout. Binary values travel as {"$bin": "<base64>"} both ways, Dates as {"$date": ms}.
//
// Commands:
//   {"cmd":"connect","id":"a","url":"http://127.0.0.1:1234/nsp","opts":{...},"acks":{"event":value}}
//       (opts.parser "msgpack" stands for require("socket.io-msgpack-parser"))
//   {"cmd":"emit","id":"a","event":"e","args":[...],"ack":true,"timeout":ms,"tag":"t","volatile":true}
//   {"cmd":"burst","id":"a","event":"e","count":N}   (emits e with 0..N-1)
//   {"cmd":"disconnect","id":"a"}
//   {"cmd":"drop","id":"a"}                         (closes the transport: the client reconnects if allowed)
//   {"cmd":"exit"}
// Reports:
//   {"type":"connect","id":"a","sid":"...","transport":"polling","recovered":false}
//   {"type":"connect_error","id":"a","message":"...","data":...}
//   {"type":"disconnect","id":"a","reason":"..."}
//   {"type":"upgrade","id":"a","transport":"websocket"}
//   {"type":"event","id":"a","event":"e","args":[...]}
//   {"type":"ack","id":"a","tag":"t","error":null|"...","args":[...]}
import { io } from "socket.io-client";
import msgpackParser from "socket.io-msgpack-parser";
import readline from "node:readline";

const sockets = new Map();
const PARSERS = { msgpack: msgpackParser };

function out(report) {
  process.stdout.write(JSON.stringify(report) + "\n");
}

function toWire(value) {
  if (Buffer.isBuffer(value) || value instanceof ArrayBuffer || ArrayBuffer.isView(value)) {
    return { $bin: Buffer.from(value instanceof ArrayBuffer ? new Uint8Array(value) : value).toString("base64") };
  }
  if (value instanceof Date) return { $date: value.getTime() };
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
    if (typeof value.$date === "number") return new Date(value.$date);
    const copy = {};
    for (const [k, v] of Object.entries(value)) copy[k] = fromWire(v);
    return copy;
  }
  return value;
}

function connect({ id, url, opts = {}, acks = {} }) {
  const options = fromWire(opts);
  if (typeof options.parser === "string") options.parser = PARSERS[options.parser];
  const socket = io(url, { forceNew: true, reconnection: false, ...options });
  sockets.set(id, socket);
  socket.io.on("open", () => {
    socket.io.engine.on("upgrade", (transport) => out({ type: "upgrade", id, transport: transport.name }));
  });
  socket.on("connect", () => {
    out({ type: "connect", id, sid: socket.id, transport: socket.io.engine.transport.name, recovered: socket.recovered });
  });
  socket.on("connect_error", (err) => out({ type: "connect_error", id, message: err.message, data: toWire(err.data ?? null) }));
  socket.on("disconnect", (reason) => out({ type: "disconnect", id, reason }));
  socket.onAny((event, ...args) => {
    let callback = null;
    if (args.length && typeof args[args.length - 1] === "function") callback = args.pop();
    out({ type: "event", id, event, args: toWire(args) });
    if (callback) {
      if (Object.prototype.hasOwnProperty.call(acks, event)) callback(fromWire(acks[event]));
      else callback({ echo: args });
    }
  });
}

function emit({ id, event, args = [], ack = false, timeout, tag, volatile = false }) {
  const socket = sockets.get(id);
  const values = fromWire(args);
  if (!ack) {
    (volatile ? socket.volatile : socket).emit(event, ...values);
    return;
  }
  const target = timeout !== undefined ? socket.timeout(timeout) : socket;
  const reply = timeout !== undefined
    ? (err, ...res) => out({ type: "ack", id, tag, error: err ? err.message : null, args: toWire(res) })
    : (...res) => out({ type: "ack", id, tag, error: null, args: toWire(res) });
  target.emit(event, ...values, reply);
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
    case "burst": {
      // count emits in one go (they queue in the client while it upgrades)
      const socket = sockets.get(command.id);
      for (let i = 0; i < command.count; i++) socket.emit(command.event, i);
      break;
    }
    case "disconnect":
      sockets.get(command.id)?.disconnect();
      break;
    case "drop":
      sockets.get(command.id)?.io.engine.close();
      break;
    case "exit":
      for (const socket of sockets.values()) socket.disconnect();
      process.exit(0);
  }
});
rl.on("close", () => process.exit(0));
out({ type: "ready" });
