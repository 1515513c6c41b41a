// socket.io 4.8 on Bun with the official @socket.io/bun-engine (Bun's own HTTP and WebSocket server), with the
// benchmark's three handlers: node_modules/.bin/bun benchmarks/bun_server.mjs --port N [--redis URL]
import { Server as Engine } from "@socket.io/bun-engine";
import { Server } from "socket.io";
import { createAdapter } from "@socket.io/redis-adapter";
import { createClient } from "redis";

const arg = (name) => (process.argv.includes(name) ? process.argv[process.argv.indexOf(name) + 1] : undefined);
const port = Number(arg("--port"));
const options = {};
const redis = arg("--redis");
if (redis) {
  // a cluster node: @socket.io/redis-adapter through the given Redis, as node_server.mjs does
  const pub = createClient({ url: redis });
  const sub = pub.duplicate();
  await Promise.all([pub.connect(), sub.connect()]);
  options.adapter = createAdapter(pub, sub);
}
const io = new Server(options);
const engine = new Engine({ path: "/socket.io/", cors: { origin: "*" } });
io.bind(engine);
io.on("connection", (socket) => {
  socket.on("echo", (payload, ack) => ack(payload));
  socket.on("join", (room, ack) => {
    socket.join(room);
    ack(true);
  });
  socket.on("broadcast", (spec, ack) => {
    const target = io.to(spec.room);
    for (let i = 0; i < spec.n; i++) target.emit("bcast", spec.payload);
    ack(spec.n);
  });
});
Bun.serve({ hostname: "127.0.0.1", port, ...engine.handler() });
