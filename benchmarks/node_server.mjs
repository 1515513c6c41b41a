// Node socket.io 4.8 with the benchmark's three handlers: node benchmarks/node_server.mjs --port N
import { Server } from "socket.io";

const port = Number(process.argv[process.argv.indexOf("--port") + 1]);
const io = new Server(port, { cors: { origin: "*" } });
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
