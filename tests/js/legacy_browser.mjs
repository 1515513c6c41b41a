// The real Socket.IO 0.6 browser client in headless Chromium, driven by the Python tests.
//
// One JSON command per line on stdin, one JSON report per line on stdout (like remote_client.mjs).
//   {"cmd":"open","id":"a","url":"http://127.0.0.1:P/page.html","transport":"xhr-polling","resource":"echoTest/123abc"}
//   {"cmd":"send","id":"a","message":"text or JSON value"}
//   {"cmd":"disconnect","id":"a"}
//   {"cmd":"exit"}
// Reports: ready | connect {transport, sessionid} | message {message} | disconnect | error {message}
//
// Chromium has no ActiveX, no multipart XHR and no Flash, so three transports need small test-only
// shims (installed only for them): htmlfile gets an ActiveXObject("htmlfile") backed by a hidden
// same-origin iframe; xhr-multipart gets an XHR whose multipart requests stream through fetch();
// flashsocket gets WebSocket.__addTask and a Flash version check that pass, so the client's
// flashsocket code path runs over the browser's own WebSocket.
import { launchChromium, removeProfile } from "./chromium.mjs";
import readline from "node:readline";

const out = (report) => process.stdout.write(JSON.stringify(report) + "\n");

const SHIMS = {
  htmlfile: () => {
    window.ActiveXObject = function (name) {
      if (name !== "htmlfile") throw new Error("no ActiveX " + name);
      const frame = document.createElement("iframe");
      frame.style.display = "none";
      document.body.appendChild(frame);
      const doc = frame.contentDocument;
      doc.parentWindow = frame.contentWindow;
      return doc;
    };
    window.attachEvent = (event, fn) => window.addEventListener(event.replace(/^on/, ""), fn);
    window.CollectGarbage = () => {};
  },
  "xhr-multipart": () => {
    const open = XMLHttpRequest.prototype.open;
    const send = XMLHttpRequest.prototype.send;
    XMLHttpRequest.prototype.multipart = false;
    XMLHttpRequest.prototype.open = function (method, url) {
      this.__url = url;
      return open.apply(this, arguments);
    };
    XMLHttpRequest.prototype.send = function (body) {
      if (!this.multipart) return send.apply(this, arguments);
      const xhr = this;
      const controller = new AbortController();
      xhr.abort = () => controller.abort();
      const part = (text) => {
        Object.defineProperty(xhr, "readyState", { value: 4, configurable: true });
        Object.defineProperty(xhr, "responseText", { value: text, configurable: true });
        if (xhr.onreadystatechange) xhr.onreadystatechange();
      };
      fetch(xhr.__url, { signal: controller.signal }).then(async (response) => {
        // The boundary comes from the Content-Type header, as a browser's multipart parser takes it.
        const type = response.headers.get("Content-Type") || "";
        const found = /boundary="?([^";]+)"?/.exec(type);
        const delimiter = "--" + (found ? found[1] : "socketio") + "\n";
        const reader = response.body.getReader();
        const decoder = new TextDecoder();
        let buffer = "";
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          buffer += decoder.decode(value, { stream: true });
          if (buffer.startsWith(delimiter)) buffer = buffer.slice(delimiter.length);
          for (;;) {
            const head = buffer.indexOf("\n\n");
            const end = buffer.indexOf("\n" + delimiter, head + 2);
            if (head < 0 || end < 0) break;
            part(buffer.slice(head + 2, end));
            buffer = buffer.slice(end + 1 + delimiter.length);
          }
        }
      }).catch(() => {});
    };
  },
  flashsocket: () => {
    WebSocket.__addTask = (task) => task();
    swfobject.hasFlashPlayerVersion = () => true;
  },
};

function start(opts) {
  const socket = new io.Socket(location.hostname, {
    port: Number(location.port),
    resource: opts.resource,
    transports: [opts.transport],
    rememberTransport: false,
    reconnect: false,
  });
  socket.on("connect", () =>
    window.__report({ type: "connect", transport: socket.transport.type, sessionid: socket.transport.sessionid }),
  );
  socket.on("message", (message) => window.__report({ type: "message", message }));
  socket.on("disconnect", () => window.__report({ type: "disconnect" }));
  window.__socket = socket;
  socket.connect();
}

const context = await launchChromium("legacy");
const browser = context;
const pages = new Map();

async function open({ id, url, transport, resource }) {
  const page = await context.newPage();
  pages.set(id, page);
  page.on("pageerror", (error) => out({ type: "error", id, message: String(error) }));
  await page.exposeFunction("__report", (report) => out({ ...report, id }));
  // the endless htmlfile iframe never lets "load" fire: wait for the DOM only
  await page.goto(url, { waitUntil: "domcontentloaded" });
  await page.waitForFunction(() => typeof io !== "undefined" && document.body !== null);
  if (SHIMS[transport]) await page.evaluate(SHIMS[transport]);
  await page.evaluate(start, { transport, resource });
}

async function handle(command) {
  const page = pages.get(command.id);
  switch (command.cmd) {
    case "open":
      await open(command);
      break;
    case "send":
      await page.evaluate((message) => window.__socket.send(message), command.message);
      break;
    case "disconnect":
      await page.evaluate(() => window.__socket.disconnect());
      break;
    case "close":
      await page.close();
      pages.delete(command.id);
      break;
    case "exit":
      await browser.close();
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
  await browser.close();
  removeProfile(context);
  process.exit(0);
});
out({ type: "ready" });
