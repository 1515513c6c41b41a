// Load generator for the benchmarks: raw Engine.IO v4 / Socket.IO v5 frames over `ws` and
// keep-alive HTTP, no client library in the way (a socket.io-client per simulated client would
// cost more CPU than the servers being measured).
//
//   node benchmarks/loadgen.mjs <scenario> --port P [--clients C] [--duration S] [--messages M] [--payload B]
// scenarios: ws-echo, poll-echo, fanout, mixed (0.6 and v4 clients in one room; this project only), idle,
// connect-client (the real client's default path: polling handshake, CONNECT, upgrade to WebSocket),
// fanout-latency (one emit to a room, repeated: emit -> first / median / last delivery), idle-many (one share of
// the idle-100k scenario, driven over stdin by run.py). Prints one JSON object (idle: a line when all are
// connected, then waits for a line on stdin before closing, so the caller can read the server's RSS).
import WebSocket from "ws";
import http from "node:http";
import readline from "node:readline";

const argv = process.argv.slice(2);
const scenario = argv[0];
const opt = (name, fallback) => {
  const i = argv.indexOf("--" + name);
  return i >= 0 ? argv[i + 1] : fallback;
};
const port = Number(opt("port"));
const port2 = Number(opt("port2", opt("port"))); // fan-out subscribers alternate between two servers (cluster)
const clients = Number(opt("clients", 10));
const duration = Number(opt("duration", 5)) * 1000;
const messages = Number(opt("messages", 10));
const payload = "x".repeat(Number(opt("payload", 32)));
const deadline = Number(opt("timeout", 120)) * 1000; // hard bound on any scenario

setTimeout(() => {
  process.stdout.write(JSON.stringify({ error: "timed out" }) + "\n");
  process.exit(2);
}, deadline).unref();

function connectWs(onMessage, onPort = port, localAddress = undefined) {
  // resolves once the Socket.IO connection to "/" is confirmed
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`ws://127.0.0.1:${onPort}/socket.io/?EIO=4&transport=websocket`, {
      perMessageDeflate: false,
      localAddress,
    });
    ws.on("error", reject);
    ws.on("message", (data, isBinary) => {
      const text = isBinary ? data : data.toString();
      if (text === "2") return ws.send("3");
      if (typeof text === "string" && text[0] === "0") return ws.send("40");
      if (typeof text === "string" && text.startsWith("40")) return resolve(ws);
      onMessage(ws, text);
    });
  });
}

async function inBatches(count, batch, make) {
  const made = [];
  for (let i = 0; i < count; i += batch) {
    made.push(...(await Promise.all(Array.from({ length: Math.min(batch, count - i) }, (_, j) => make(i + j)))));
  }
  return made;
}

function percentile(sorted, p) {
  if (!sorted.length) return 0;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

async function wsEcho() {
  const latencies = [];
  let done = 0;
  let stop = false;
  const state = new Map();
  const send = (ws) => {
    const s = state.get(ws);
    s.id++;
    s.sent = process.hrtime.bigint();
    s.prefix = `43${s.id}[`;
    ws.send(`42${s.id}["echo","${payload}"]`);
  };
  const sockets = await inBatches(clients, 50, () =>
    connectWs((ws, text) => {
      const s = state.get(ws);
      if (s && typeof text === "string" && text.startsWith(s.prefix)) {
        latencies.push(Number(process.hrtime.bigint() - s.sent) / 1e6);
        done++;
        if (!stop) send(ws);
      }
    }),
  );
  for (const ws of sockets) state.set(ws, { id: 0 });
  const start = process.hrtime.bigint();
  sockets.forEach(send);
  await new Promise((r) => setTimeout(r, duration));
  stop = true;
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  sockets.forEach((ws) => ws.terminate());
  latencies.sort((a, b) => a - b);
  return { rate: done / seconds, p50_ms: percentile(latencies, 50), p99_ms: percentile(latencies, 99), count: done };
}

function httpRequest(agent, method, path, body) {
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        host: "127.0.0.1",
        port,
        method,
        path,
        agent,
        headers: body
          ? { "Content-Type": "text/plain;charset=UTF-8", "Content-Length": Buffer.byteLength(body) }
          : {},
      },
      (res) => {
        let data = "";
        res.setEncoding("utf8");
        res.on("data", (c) => (data += c));
        res.on("end", () => (res.statusCode === 200 ? resolve(data) : reject(new Error(`${res.statusCode} ${data}`))));
      },
    );
    req.on("error", reject);
    if (body) req.write(body);
    req.end();
  });
}

async function pollEcho() {
  const latencies = [];
  let done = 0;
  let stop = false;
  const base = "/socket.io/?EIO=4&transport=polling";
  async function client() {
    const agent = new http.Agent({ keepAlive: true, maxSockets: 2 });
    const open = await httpRequest(agent, "GET", base);
    const sid = JSON.parse(open.slice(1)).sid;
    const path = `${base}&sid=${sid}`;
    let id = 0;
    let sent = 0n;
    let waiting = null;
    let connected;
    const joined = new Promise((r) => (connected = r));
    const poll = async () => {
      while (!stop) {
        const body = await httpRequest(agent, "GET", path);
        for (const packet of body.split("\x1e")) {
          if (packet.startsWith("40")) connected();
          else if (packet === "2") httpRequest(agent, "POST", path, "3").catch(() => {});
          else if (waiting && packet.startsWith(waiting)) {
            latencies.push(Number(process.hrtime.bigint() - sent) / 1e6);
            done++;
            waiting = null;
            if (!stop) fire();
          }
        }
      }
    };
    const fire = () => {
      id++;
      waiting = `43${id}[`;
      sent = process.hrtime.bigint();
      httpRequest(agent, "POST", path, `42${id}["echo","${payload}"]`).catch(() => {});
    };
    // like socket.io-client: the long-poll is already waiting when the CONNECT packet is posted
    const polling = poll().catch((e) => {
      if (!stop) process.stderr.write(`poll failed: ${e}\n`);
    });
    await httpRequest(agent, "POST", path, "40");
    await joined; // the namespace is joined before the first echo
    return { fire, polling, agent };
  }
  const all = await inBatches(clients, 25, client);
  const start = process.hrtime.bigint();
  all.forEach((c) => c.fire());
  await new Promise((r) => setTimeout(r, duration));
  stop = true;
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  all.forEach((c) => c.agent.destroy());
  latencies.sort((a, b) => a - b);
  return { rate: done / seconds, p50_ms: percentile(latencies, 50), p99_ms: percentile(latencies, 99), count: done };
}

async function fanout() {
  let finished = 0;
  let last = 0n;
  let start = 0n;
  let resolveAll;
  const all = new Promise((r) => (resolveAll = r));
  const counts = new Map();
  let first = 0n;
  const subscribers = await inBatches(clients, 200, async (i) => {
    const ws = await connectWs((w, text) => {
      if (typeof text === "string" && text.startsWith('42["bcast"')) {
        if (!first) first = process.hrtime.bigint();
        const n = counts.get(w) + 1;
        counts.set(w, n);
        if (n === messages) {
          last = process.hrtime.bigint();
          if (++finished === clients) resolveAll();
        }
      } else if (typeof text === "string" && text.startsWith("43")) {
        w.emit("joined");
      }
    }, i % 2 ? port2 : port);
    counts.set(ws, 0);
    const joined = new Promise((r) => ws.once("joined", r));
    ws.send('421["join","room"]');
    await joined;
    return ws;
  });
  const driver = await connectWs(() => {});
  start = process.hrtime.bigint();
  driver.send(`421["broadcast",{"n":${messages},"room":"room","payload":"${payload}"}]`);
  await all;
  const seconds = Number(last - start) / 1e9;
  subscribers.forEach((ws) => ws.terminate());
  driver.terminate();
  return {
    rate: (clients * messages) / seconds,
    first_delivery_ms: Number(first - start) / 1e6,
    last_delivery_ms: seconds * 1000,
    count: clients * messages,
  };
}

// Half the room are Socket.IO 0.6 clients (a SocketIOHandler route), half v4 clients, in one room.
function connectLegacy(onMessage) {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`ws://127.0.0.1:${port}/mixed/websocket`, { perMessageDeflate: false });
    const frame = (text) => `~m~${text.length}~m~${text}`;
    let joined = false;
    let asked = false;
    ws.on("error", reject);
    ws.on("message", (data) => {
      const text = data.toString();
      if (!joined) {
        if (text.includes("joined")) {
          joined = true;
          return resolve(ws);
        }
        if (!asked) {
          asked = true; // the first payload carries the session id
          ws.send(frame("join"));
        }
      }
      for (const beat of text.matchAll(/~h~(\d+)/g)) ws.send(frame(`~h~${beat[1]}`));
      onMessage(ws, text);
    });
  });
}

async function mixed() {
  let finished = 0;
  let last = 0n;
  let resolveAll;
  const all = new Promise((r) => (resolveAll = r));
  const counts = new Map();
  let first = 0n;
  const count = (ws, n) => {
    if (!first) first = process.hrtime.bigint();
    const total = counts.get(ws) + n;
    counts.set(ws, total);
    if (total === messages) {
      last = process.hrtime.bigint();
      if (++finished === clients) resolveAll();
    }
  };
  const url = `ws://127.0.0.1:${port}/mixed/?EIO=4&transport=websocket`;
  const modern = (onMessage) =>
    new Promise((resolve, reject) => {
      const ws = new WebSocket(url, { perMessageDeflate: false });
      ws.on("error", reject);
      ws.on("message", (data) => {
        const text = data.toString();
        if (text === "2") return ws.send("3");
        if (text[0] === "0") return ws.send("40");
        if (text.startsWith("40")) return resolve(ws);
        onMessage(ws, text);
      });
    });
  const subscribers = await inBatches(clients, 200, async (i) => {
    if (i % 2) {
      const ws = await connectLegacy((w, text) => {
        const n = text.split('"event":"bcast"').length - 1;
        if (n) count(w, n);
      });
      counts.set(ws, 0);
      return ws;
    }
    const ws = await modern((w, text) => {
      if (text.startsWith('42["bcast"')) count(w, 1);
      else if (text.startsWith("43")) w.emit("joined");
    });
    counts.set(ws, 0);
    const joined = new Promise((r) => ws.once("joined", r));
    ws.send('421["join","room"]');
    await joined;
    return ws;
  });
  const driver = await modern(() => {});
  const start = process.hrtime.bigint();
  driver.send(`421["broadcast",{"n":${messages},"room":"room","payload":"${payload}"}]`);
  await all;
  const seconds = Number(last - start) / 1e9;
  subscribers.forEach((ws) => ws.terminate());
  driver.terminate();
  return {
    rate: (clients * messages) / seconds,
    first_delivery_ms: Number(first - start) / 1e6,
    last_delivery_ms: seconds * 1000,
    count: clients * messages,
  };
}

async function idle() {
  const start = process.hrtime.bigint();
  const sockets = await inBatches(clients, 100, () => connectWs(() => {}));
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  process.stdout.write(JSON.stringify({ phase: "connected", rate: clients / seconds, count: clients }) + "\n");
  const rl = readline.createInterface({ input: process.stdin });
  await new Promise((r) => rl.once("line", r));
  sockets.forEach((ws) => ws.terminate());
  return { rate: clients / seconds, count: clients };
}

const nowMs = () => Number(process.hrtime.bigint()) / 1e6; // CLOCK_MONOTONIC: one clock for every process
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const median = (values) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)];

// One client along socket.io-client's default path: the polling handshake; then, as engine.io-client does on
// "open", the CONNECT packet posted, the long-poll started and the WebSocket probe (2probe / 3probe); once the
// probe is answered, polling pauses (the in-flight poll and post complete), then "5" over the WebSocket. Resolves
// when the namespace is joined (40 received, over either transport) and the upgrade packet is sent, the two
// moments the real client emits "connect" and "upgrade".
function realClient() {
  const started = process.hrtime.bigint();
  const agent = new http.Agent({ keepAlive: true, maxSockets: 2 });
  const base = "/socket.io/?EIO=4&transport=polling";
  return httpRequest(agent, "GET", base).then(
    (open) =>
      new Promise((resolve, reject) => {
        const sid = JSON.parse(open.split("\x1e")[0].slice(1)).sid;
        const path = `${base}&sid=${sid}`;
        let connected = false;
        let upgraded = false;
        let pausing = false;
        let polling = false;
        let writing = 0;
        const ws = new WebSocket(`ws://127.0.0.1:${port}/socket.io/?EIO=4&transport=websocket&sid=${sid}`, {
          perMessageDeflate: false,
        });
        const finish = () => {
          if (connected && upgraded) resolve({ ws, agent, ms: Number(process.hrtime.bigint() - started) / 1e6 });
        };
        const onPacket = (packet) => {
          if (packet.startsWith("40")) {
            connected = true;
            finish();
          } else if (packet === "2") {
            if (upgraded) ws.send("3");
            else post("3");
          }
        };
        const tryUpgrade = () => {
          if (pausing && !polling && !writing && !upgraded) {
            upgraded = true;
            ws.send("5");
            finish();
          }
        };
        const post = (body) => {
          writing++;
          httpRequest(agent, "POST", path, body).then(() => {
            writing--;
            tryUpgrade();
          }, reject);
        };
        const poll = () => {
          polling = true;
          httpRequest(agent, "GET", path).then((body) => {
            polling = false;
            body.split("\x1e").forEach(onPacket);
            if (pausing) tryUpgrade();
            else poll();
          }, reject);
        };
        ws.on("error", reject);
        ws.on("open", () => ws.send("2probe"));
        ws.on("message", (data) => {
          const text = data.toString();
          if (text === "3probe") {
            pausing = true;
            tryUpgrade();
          } else if (upgraded) onPacket(text);
        });
        post("40");
        poll();
      }),
  );
}

// `count` calls of make(i) with at most `width` in flight: a new one starts as soon as one completes.
async function inWindow(count, width, make) {
  const made = new Array(count);
  let next = 0;
  const worker = async () => {
    while (next < count) {
      const i = next++;
      made[i] = await make(i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(width, count) }, worker));
  return made;
}

// Not in barrier batches: Node's and Bun's engines answer the paused long-poll from a 100 ms interval timer, so a
// batch would wait for its slowest client and measure that timer rather than the server's work.
async function connectClient() {
  const inflight = Number(opt("inflight", 100));
  const start = process.hrtime.bigint();
  const made = await inWindow(clients, inflight, realClient);
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  made.forEach((c) => {
    c.ws.terminate();
    c.agent.destroy();
  });
  const times = made.map((c) => c.ms).sort((a, b) => a - b);
  return { rate: clients / seconds, p50_ms: percentile(times, 50), p99_ms: percentile(times, 99), count: clients };
}

// One emit (n = 1) to a room of `clients`, `rounds` times: from the moment the driver sent the "broadcast" event to
// the first, the median and the last client's receipt.
async function fanoutLatency() {
  const rounds = Number(opt("rounds", 5));
  const settle = Number(opt("settle", 200)); // ms before each emit, for the previous round's acks and writes
  let current = null;
  const subscribers = await inBatches(clients, 200, async () => {
    const ws = await connectWs((w, text) => {
      if (typeof text !== "string") return;
      if (text.startsWith('42["bcast"')) {
        if (current && current.times.push(process.hrtime.bigint()) === clients) current.done();
      } else if (text.startsWith("43")) w.emit("joined");
    });
    const joined = new Promise((r) => ws.once("joined", r));
    ws.send('421["join","room"]');
    await joined;
    return ws;
  });
  const driver = await connectWs(() => {});
  const first = [];
  const middle = [];
  const last = [];
  for (let round = 1; round <= rounds; round++) {
    await sleep(settle);
    const state = { times: [] };
    const all = new Promise((r) => (state.done = r));
    current = state;
    const start = process.hrtime.bigint();
    driver.send(`42${round}["broadcast",{"n":1,"room":"room","payload":"${payload}"}]`);
    await all;
    current = null;
    const ms = state.times.map((t) => Number(t - start) / 1e6); // in order of arrival
    first.push(ms[0]);
    middle.push(ms[Math.floor(ms.length / 2)]);
    last.push(ms[ms.length - 1]);
  }
  subscribers.forEach((ws) => ws.terminate());
  driver.terminate();
  return {
    rate: clients / (median(last) / 1000),
    first_delivery_ms: median(first),
    median_delivery_ms: median(middle),
    last_delivery_ms: median(last),
    rounds: { first, median: middle, last },
    count: clients * rounds,
  };
}

// One share of the idle-100k scenario (run.py starts several of these): `clients` WebSocket clients that join the
// room "all" and answer the server's heartbeats, spread over the source addresses 127.0.0.2, 127.0.0.3, ...
// (`per-address` each, counted from `offset`, so that no address runs out of ephemeral ports). A socket bound to a
// source address before it connects takes a port that no other socket on that address holds, TIME_WAIT ones
// included, so run.py starts each measurement at a fresh `address-base` (the n-th address is
// 127.0.<n / 250>.<2 + n % 250>): the previous measurement's closed connections still hold their ports. Prints
// {"phase": "connected"}; on a line on stdin, the --driver share emits one broadcast to the room and every share
// prints its receipt times (milliseconds on the shared monotonic clock); on the next line all close.
async function idleMany() {
  const offset = Number(opt("offset", 0));
  const perAddress = Number(opt("per-address", 20000));
  const addressBase = Number(opt("address-base", 0));
  const batch = Number(opt("batch", 100));
  const wait = Number(opt("wait", 60)) * 1000;
  const lines = readline.createInterface({ input: process.stdin })[Symbol.asyncIterator]();
  const times = [];
  let allReceived = null;
  const startedMs = nowMs();
  const sockets = await inBatches(clients, batch, async (i) => {
    const n = addressBase + Math.floor((offset + i) / perAddress);
    const address = `127.0.${Math.floor(n / 250)}.${2 + (n % 250)}`;
    const ws = await connectWs(
      (w, text) => {
        if (typeof text !== "string") return;
        if (text.startsWith('42["bcast"')) {
          if (times.push(nowMs()) === clients && allReceived) allReceived();
        } else if (text.startsWith("43")) w.emit("joined");
      },
      port,
      address,
    );
    const joined = new Promise((r) => ws.once("joined", r));
    ws.send('421["join","all"]');
    await joined;
    return ws;
  });
  const finishedMs = nowMs();
  const driver = argv.includes("--driver") ? await connectWs(() => {}) : null;
  const connected = { phase: "connected", count: clients, started_ms: startedMs, finished_ms: finishedMs };
  process.stdout.write(JSON.stringify(connected) + "\n");
  await lines.next();
  const all = new Promise((r) => (allReceived = r));
  if (times.length === clients) allReceived();
  let emittedMs = null;
  if (driver) {
    emittedMs = nowMs();
    driver.send(`421["broadcast",{"n":1,"room":"all","payload":"${payload}"}]`);
  }
  await Promise.race([all, sleep(wait)]);
  const received = { phase: "received", emitted_ms: emittedMs, times: times.map((t) => Math.round(t * 1000) / 1000) };
  process.stdout.write(JSON.stringify(received) + "\n");
  await lines.next();
  sockets.forEach((ws) => ws.terminate());
  if (driver) driver.terminate();
  return { count: clients };
}

const scenarios = {
  "ws-echo": wsEcho,
  "poll-echo": pollEcho,
  fanout,
  mixed,
  idle,
  "connect-client": connectClient,
  "fanout-latency": fanoutLatency,
  "idle-many": idleMany,
};
scenarios[scenario]()
  .then((result) => {
    process.stdout.write(JSON.stringify(result) + "\n");
    process.exit(0);
  })
  .catch((error) => {
    process.stdout.write(JSON.stringify({ error: String(error) }) + "\n");
    process.exit(1);
  });
