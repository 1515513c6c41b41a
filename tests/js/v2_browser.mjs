// socket.io-client 2.5 (Engine.IO v3) in headless Chromium, and example pages, driven by the Python tests.
//
// One JSON command per line on stdin, one JSON report per line on stdout (like remote_client_v2.mjs, whose
// commands and reports the "connect" family shares; binary values are {"$bin": "<base64>"}, ArrayBuffers in
// the page):
//   {"cmd":"connect","id":"a","page":"http://127.0.0.1:P/v2.html","url":"http://127.0.0.1:P/","opts":{...}}
//        opens the page (which loads the 2.x bundle) and connects io(url, opts) in it
//   {"cmd":"emit","id":"a","event":"e","args":[...],"ack":true,"tag":"t"}
//   {"cmd":"disconnect","id":"a"}
//   {"cmd":"page","id":"p","url":"http://127.0.0.1:P/legacy.html"}
//        opens a page as it is (the chatroom's): each entry its script adds to <ul id="log"> is reported
//        as {"type":"log","id":"p","entry":<the entry's JSON>}
//   {"cmd":"type","id":"p","text":"..."}  types into the page's <input id="t"> and submits <form id="f">
//   {"cmd":"exit"}
// Reports also carry {"type":"error","id":..,"message":..} for page errors.
import { launchChromium, removeProfile } from "./chromium.mjs";
import readline from "node:readline";

const out = (report) => process.stdout.write(JSON.stringify(report) + "\n");

// Runs in the page: the 2.x client, reporting through window.__report.
function start({ url, opts, acks }) {
  const toBase64 = (buffer) => {
    let text = "";
    for (const byte of new Uint8Array(buffer)) text += String.fromCharCode(byte);
    return btoa(text);
  };
  const fromBase64 = (text) => Uint8Array.from(atob(text), (c) => c.charCodeAt(0)).buffer;
  const toWire = (value) => {
    if (value instanceof ArrayBuffer) return { $bin: toBase64(value) };
    if (ArrayBuffer.isView(value)) return { $bin: toBase64(value.buffer.slice(value.byteOffset, value.byteOffset + value.byteLength)) };
    if (Array.isArray(value)) return value.map(toWire);
    if (value && typeof value === "object") return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, toWire(v)]));
    return value;
  };
  const fromWire = (value) => {
    if (Array.isArray(value)) return value.map(fromWire);
    if (value && typeof value === "object") {
      if (typeof value.$bin === "string") return fromBase64(value.$bin);
      return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, fromWire(v)]));
    }
    return value;
  };
  const report = window.__report;
  const socket = io(url, Object.assign({ forceNew: true, reconnection: false }, opts));
  const manager = socket.io;
  manager.on("open", () => manager.engine.on("upgrade", (t) => report({ type: "upgrade", transport: t.name })));
  socket.on("connect", () =>
    report({ type: "connect", sid: socket.id, engine: manager.engine.id, transport: manager.engine.transport.name }),
  );
  socket.on("error", (data) => report({ type: "error_packet", data: toWire(data ?? null) }));
  socket.on("disconnect", (reason) => report({ type: "disconnect", reason }));
  socket.onevent = function (packet) {
    const [event, ...rest] = packet.data || [];
    report({ type: "event", event, args: toWire(rest) });
    if (packet.id != null) {
      const answer = this.ack(packet.id);
      if (Object.prototype.hasOwnProperty.call(acks, event)) answer(fromWire(acks[event]));
      else answer({ echo: rest });
    }
  };
  window.__emit = ({ event, args, ack, tag }) => {
    const values = fromWire(args);
    if (ack) socket.emit(event, ...values, (...res) => report({ type: "ack", tag, args: toWire(res) }));
    else socket.emit(event, ...values);
  };
  window.__socket = socket;
}

// Runs in an example page: report every entry added to #log.
function watchLog() {
  const log = document.getElementById("log");
  const send = (li) => {
    let entry = li.textContent;
    try {
      entry = JSON.parse(entry);
    } catch (e) {}
    window.__report({ type: "log", entry });
  };
  for (const li of log.children) send(li);
  new MutationObserver((records) => {
    for (const record of records) for (const node of record.addedNodes) if (node.nodeName === "LI") send(node);
  }).observe(log, { childList: true });
}

const context = await launchChromium("v2");
const pages = new Map();

async function newPage(id) {
  const page = await context.newPage();
  pages.set(id, page);
  page.on("pageerror", (error) => out({ type: "error", id, message: String(error) }));
  await page.exposeFunction("__report", (report) => out({ ...report, id }));
  return page;
}

async function handle(command) {
  const { id } = command;
  switch (command.cmd) {
    case "connect": {
      const page = await newPage(id);
      await page.goto(command.page, { waitUntil: "load" });
      await page.evaluate(start, { url: command.url, opts: command.opts || {}, acks: command.acks || {} });
      break;
    }
    case "emit":
      await pages.get(id).evaluate((c) => window.__emit(c), { event: command.event, args: command.args || [], ack: !!command.ack, tag: command.tag });
      break;
    case "disconnect":
      await pages.get(id).evaluate(() => window.__socket.disconnect());
      break;
    case "page": {
      const page = await newPage(id);
      await page.goto(command.url, { waitUntil: "load" });
      await page.evaluate(watchLog);
      break;
    }
    case "type":
      await pages.get(id).fill("#t", command.text);
      await pages.get(id).press("#t", "Enter");
      break;
    case "exit":
      await context.close();
      removeProfile(context);
      process.exit(0);
  }
}

// Commands run one after another, in order.
let queue = Promise.resolve();
const rl = readline.createInterface({ input: process.stdin });
rl.on("line", (line) => {
  if (!line.trim()) return;
  const command = JSON.parse(line);
  queue = queue.then(() => handle(command)).catch((error) => out({ type: "error", id: command.id, message: String(error) }));
});
rl.on("close", async () => {
  await queue;
  await context.close();
  removeProfile(context);
  process.exit(0);
});
out({ type: "ready" });
