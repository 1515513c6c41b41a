// Node socket.io 4.8 with the benchmark's three handlers: node benchmarks/node_server.mjs --port N
import { createServer } from "node:http";
import { Server } from "socket.io";
import { createAdapter } from "@socket.io/redis-adapter";
import { createClient } from "redis";

const arg = (name) => (process.argv.includes(name) ? process.argv[process.argv.indexOf(name) + 1] : undefined);
const port = Number(arg("--port"));
const options = { cors: { origin: "*" } };
const redis = arg("--redis");
if (redis) {
  // a cluster node: @socket.io/redis-adapter through the given Redis
  const pub = createClient({ url: redis });
  const sub = pub.duplicate();
  await Promise.all([pub.connect(), sub.connect()]);
  options.adapter = createAdapter(pub, sub);
}
const httpServer = createServer();
const io = new Server(httpServer, options);
httpServer.listen(port, "127.0.0.1"); // loopback only, like the other benchmark servers
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
