// A Node socket.io 4.8 server with @socket.io/redis-streams-adapter 0.3.1 and connection state recovery,
// driven by the tests (tests/test_redis_streams.py).
//
//   node tests/js/streams_node.mjs <redis-url> <port> [streamCount] [sharded]   a cluster node on 127.0.0.1:<port>
//   ("sharded": useShardedPubSub)
//
// One JSON command per line on stdin, one JSON report per line on stdout.
// Commands (rooms select with "to"/"except"; "flags" may hold volatile, local):
//   {"cmd":"emit","to":[rooms],"except":[rooms],"volatile":bool,"local":bool,"event":"e","args":[...]}
//   {"cmd":"direct","sid":"…","event":"e","args":[...]}       socket.emit on a local socket (CSR stores it)
//   {"cmd":"drop","sid":"…"}                                   socket.conn.close(): a recoverable cut
//   {"cmd":"fetch","to":[rooms],"tag":"t"}                    -> {"type":"fetched","tag","sockets":[{id,rooms,data}]}
//   {"cmd":"ssemit","event":"e","args":[...],"ack":bool,"tag":"t"} -> {"type":"ssacked","tag","error","responses"}
//   {"cmd":"join"|"leave","to":[rooms],"rooms":[...]} / {"cmd":"disconnect","to":[rooms],"close":bool}
//   {"cmd":"emitack","event":"e","args":[...],"timeout":ms,"tag":"t"} -> {"type":"acked","tag","error","responses"}
//   {"cmd":"count","tag":"t"}                                 -> {"type":"count","tag","count":n}
//   {"cmd":"rooms","sid":"…","tag":"t"}                       -> {"type":"rooms","tag","rooms":[...]}
// Reports: ready; connection {id, recovered, rooms, data}; disconnect {id, reason}; sse {event, args}.
// Binary values travel as {"$bin": "<base64>"} both ways.
import { Server } from "socket.io";
import { createAdapter } from "@socket.io/redis-streams-adapter";
import { createClient } from "redis";
import readline from "node:readline";

const [url, port, streamCount = "1", pubsub = ""] = process.argv.slice(2);
const out = (report) => process.stdout.write(JSON.stringify(report) + "\n");

const toWire = (value) => {
  if (Buffer.isBuffer(value) || value instanceof ArrayBuffer || ArrayBuffer.isView(value)) {
    return { $bin: Buffer.from(value instanceof ArrayBuffer ? new Uint8Array(value) : value).toString("base64") };
  }
  if (Array.isArray(value)) return value.map(toWire);
  if (value && typeof value === "object") return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, toWire(v)]));
  return value;
};
const fromWire = (value) => {
  if (Array.isArray(value)) return value.map(fromWire);
  if (value && typeof value === "object") {
    if (typeof value.$bin === "string") return Buffer.from(value.$bin, "base64");
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, fromWire(v)]));
  }
  return value;
};
const select = (op, c) => {
  let target = op;
  if (c.to && c.to.length) target = target.to(c.to);
  if (c.except && c.except.length) target = target.except(c.except);
  if (c.volatile) target = target.volatile;
  if (c.local) target = target.local;
  return target;
};

const client = createClient({ url });
await client.connect();
const io = new Server({
  adapter: createAdapter(client, { streamCount: Number(streamCount), useShardedPubSub: pubsub === "sharded" }),
  connectionStateRecovery: { maxDisconnectionDuration: 60000 },
  pingInterval: 60000,
});
const sockets = new Map();
io.on("connection", (socket) => {
  sockets.set(socket.id, socket);
  if (!socket.recovered) socket.data.node = "node:" + port;
  socket.on("join", (room, ack) => {
    socket.join(room);
    ack && ack(true);
  });
  socket.on("disconnect", (reason) => out({ type: "disconnect", id: socket.id, reason }));
  out({ type: "connection", id: socket.id, recovered: socket.recovered, rooms: [...socket.rooms], data: socket.data });
});
io.on("ping", (...args) => {
  const ack = typeof args[args.length - 1] === "function" ? args.pop() : null;
  out({ type: "sse", event: "ping", args: toWire(args) });
  if (ack) ack("pong from node:" + port);
});
io.listen(Number(port));

readline.createInterface({ input: process.stdin }).on("line", async (line) => {
  const c = JSON.parse(line);
  const args = fromWire(c.args || []);
  try {
    switch (c.cmd) {
      case "emit":
        select(io, c).emit(c.event, ...args);
        break;
      case "direct":
        sockets.get(c.sid).emit(c.event, ...args);
        break;
      case "drop":
        sockets.get(c.sid).conn.close();
        break;
      case "fetch": {
        const found = await select(io, c).fetchSockets();
        out({ type: "fetched", tag: c.tag, sockets: found.map((s) => ({ id: s.id, rooms: [...s.rooms], data: s.data })) });
        break;
      }
      case "ssemit":
        if (c.ack) {
          try {
            const responses = await io.serverSideEmitWithAck(c.event, ...args);
            out({ type: "ssacked", tag: c.tag, error: null, responses });
          } catch (error) {
            out({ type: "ssacked", tag: c.tag, error: String(error), responses: error.responses || [] });
          }
        } else io.serverSideEmit(c.event, ...args);
        break;
      case "join":
        select(io, c).socketsJoin(c.rooms);
        break;
      case "leave":
        select(io, c).socketsLeave(c.rooms);
        break;
      case "disconnect":
        select(io, c).disconnectSockets(c.close);
        break;
      case "emitack":
        select(io, c)
          .timeout(c.timeout)
          .emit(c.event, ...args, (error, responses) =>
            out({ type: "acked", tag: c.tag, error: error ? String(error) : null, responses: toWire(responses) }),
          );
        break;
      case "count":
        out({ type: "count", tag: c.tag, count: await io.of("/").adapter.serverCount() });
        break;
      case "rooms":
        out({ type: "rooms", tag: c.tag, rooms: [...(io.of("/").adapter.sids.get(c.sid) || [])] });
        break;
    }
  } catch (error) {
    out({ type: "error", tag: c.tag, message: String(error) });
  }
});
out({ type: "ready" });
