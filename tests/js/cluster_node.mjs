// A Node socket.io 4.8 server with @socket.io/redis-adapter (or a redis-emitter), driven by the tests.
//
//   node tests/js/cluster_node.mjs server <redis-url> <port>     a cluster node on 127.0.0.1:<port>
//   node tests/js/cluster_node.mjs sharded <redis-url> <port>    the same with createShardedAdapter
//   node tests/js/cluster_node.mjs emitter <redis-url>           @socket.io/redis-emitter
// One JSON command per line on stdin, one JSON report per line on stdout.
// Server commands:
//   {"cmd":"emit","to":[rooms],"except":[rooms],"nsp":"/","event":"e","args":[...]}
//   {"cmd":"fetch","to":[rooms],"tag":"t"}            -> {"type":"fetched","tag","sockets":[{id,rooms,data}]}
//   {"cmd":"ssemit","event":"e","args":[...],"ack":bool,"tag":"t"} -> {"type":"ssacked","tag","error","responses"}
//   {"cmd":"join"|"leave","to":[rooms],"rooms":[...]} / {"cmd":"disconnect","to":[rooms],"close":bool}
//   {"cmd":"emitack","event":"e","args":[...],"timeout":ms,"tag":"t"} -> {"type":"acked","tag","error","responses"}
//   {"cmd":"count","tag":"t"}                          -> {"type":"count","tag","count":n}
// Server reports: ready, connection {id, data}, sse {event, args} (server-side emit received).
// Emitter commands: {"cmd":"emit","nsp":"/","to":[...],"except":[...],"event":"e","args":[...]} (then "emitted").
import { Server } from "socket.io";
import { createAdapter, createShardedAdapter } from "@socket.io/redis-adapter";
import { Emitter } from "@socket.io/redis-emitter";
import { createClient } from "redis";
import readline from "node:readline";

const [mode, url, port] = process.argv.slice(2);
const out = (report) => process.stdout.write(JSON.stringify(report) + "\n");
const select = (op, c) => {
  let target = op;
  if (c.to && c.to.length) target = target.to(c.to);
  if (c.except && c.except.length) target = target.except(c.except);
  return target;
};

if (mode === "emitter") {
  const client = createClient({ url });
  await client.connect();
  const emitter = new Emitter(client);
  readline.createInterface({ input: process.stdin }).on("line", (line) => {
    const c = JSON.parse(line);
    const target = select(c.nsp && c.nsp !== "/" ? emitter.of(c.nsp) : emitter, c);
    target.emit(c.event, ...(c.args || []));
    out({ type: "emitted", tag: c.tag });
  });
  out({ type: "ready" });
} else {
  const pub = createClient({ url });
  const sub = pub.duplicate();
  await Promise.all([pub.connect(), sub.connect()]);
  const adapter =
    mode === "sharded"
      ? createShardedAdapter(pub, sub, { requestsTimeout: 3000 })
      : createAdapter(pub, sub, { requestsTimeout: 3000 });
  const io = new Server({ adapter });
  io.of("/chat"); // a second namespace, for the emitter's of("/chat")
  io.on("connection", (socket) => {
    socket.data.node = "node:" + port;
    socket.on("join", (room, ack) => {
      socket.join(room);
      ack && ack(true);
    });
    out({ type: "connection", id: socket.id });
  });
  io.on("ping", (...args) => {
    const ack = typeof args[args.length - 1] === "function" ? args.pop() : null;
    out({ type: "sse", event: "ping", args });
    if (ack) ack("pong from node:" + port);
  });
  io.listen(Number(port));
  readline.createInterface({ input: process.stdin }).on("line", async (line) => {
    const c = JSON.parse(line);
    try {
      switch (c.cmd) {
        case "emit":
          select(c.nsp && c.nsp !== "/" ? io.of(c.nsp) : io, c).emit(c.event, ...(c.args || []));
          break;
        case "fetch": {
          const sockets = await select(io, c).fetchSockets();
          out({ type: "fetched", tag: c.tag, sockets: sockets.map((s) => ({ id: s.id, rooms: [...s.rooms], data: s.data })) });
          break;
        }
        case "ssemit":
          if (c.ack) {
            try {
              const responses = await io.serverSideEmitWithAck(c.event, ...(c.args || []));
              out({ type: "ssacked", tag: c.tag, error: null, responses });
            } catch (error) {
              out({ type: "ssacked", tag: c.tag, error: String(error), responses: error.responses || [] });
            }
          } else io.serverSideEmit(c.event, ...(c.args || []));
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
            .emit(c.event, ...(c.args || []), (error, responses) =>
              out({ type: "acked", tag: c.tag, error: error ? String(error) : null, responses }),
            );
          break;
        case "count":
          out({ type: "count", tag: c.tag, count: await io.of("/").adapter.serverCount() });
          break;
      }
    } catch (error) {
      out({ type: "error", tag: c.tag, message: String(error) });
    }
  });
  out({ type: "ready" });
}
