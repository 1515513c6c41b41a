// Writes tests/data/msgpack-parser-vectors.jsonl: packets encoded and decoded by the real
// socket.io-msgpack-parser 3.0.2 (with its notepack.io 2.2), for tests/test_msgpack_parser.py.
//
// Run from the repository root after `npm ci`:   node tests/js/msgpack_vectors.mjs
// The output is deterministic; the file in the repository is this script's output.
//
// One JSON object per line:
//   {"kind":"encode","name":...,"packet":{type,data,nsp,id},"hex":...}
//       a packet as the server sends it (keys in the order type, data, nsp, id), and the bytes
//       the npm Encoder makes of it: tornad_io's MsgpackParser must write the same bytes.
//   {"kind":"decode","name":...,"hex":...,"npm":{"ok":packet}|{"error":message},"stricter"|"lenient":why}
//       bytes a client may send (most built as socket.io-client 4.8 builds its packets, then
//       encoded by the npm Encoder; some written by hand) and what the npm Decoder makes of
//       them: tornad_io must decode the same packet, or refuse what npm refuses. "stricter"
//       marks bytes npm accepts and tornad_io refuses on purpose (the JSON parser's rules),
//       "lenient" bytes npm refuses and tornad_io reads (a null CONNECT or DISCONNECT payload,
//       which python-socketio's msgpack client sends, read as none).
// Values in "packet": {"$bin":base64} for a Buffer or ArrayBuffer, {"$date":ms} for a Date,
// {"$undefined":true} for undefined (which JSON cannot hold), [type, {"$bin"}] for other extensions.
import parser from "socket.io-msgpack-parser";
import { createHash } from "node:crypto";
import { writeFileSync } from "node:fs";

const rows = [];

function wire(value) {
  if (value === undefined) return { $undefined: true };
  if (Buffer.isBuffer(value)) return { $bin: value.toString("base64") };
  if (value instanceof ArrayBuffer) return { $bin: Buffer.from(value).toString("base64") };
  if (value instanceof Date) return { $date: value.getTime() };
  if (Array.isArray(value)) return value.map(wire);
  if (value && typeof value === "object") {
    const copy = {};
    for (const [k, v] of Object.entries(value)) copy[k] = wire(v);
    return copy;
  }
  return value;
}

function encode(packet) {
  const parts = new parser.Encoder().encode(packet);
  if (parts.length !== 1) throw new Error("one message per packet expected");
  return Buffer.from(parts[0]).toString("hex");
}

function npmDecode(hex) {
  const decoder = new parser.Decoder();
  let got;
  decoder.on("decoded", (packet) => (got = packet));
  try {
    decoder.add(Buffer.from(hex, "hex"));
  } catch (error) {
    return { error: error.message };
  }
  return { ok: wire(got) };
}

// Packets of more than 4 KiB are written in short: their repetitive values as
// {"$binfill":[byte,count]}, {"$strfill":[text,count]} or {"$arrayfill":[value,count]}, their
// bytes as "size", "sha256" and the first 64 bytes ("head") instead of "hex".
function expand(value) {
  if (Array.isArray(value)) return value.map(expand);
  if (value && typeof value === "object") {
    if (value.$binfill) return Buffer.alloc(value.$binfill[1], value.$binfill[0]);
    if (value.$strfill) return value.$strfill[0].repeat(value.$strfill[1]);
    if (value.$arrayfill) return Array.from({ length: value.$arrayfill[1] }, () => value.$arrayfill[0]);
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, expand(v)]));
  }
  return value;
}

function serverPacket(name, packet, short) {
  const row = { kind: "encode", name, packet: short ?? wire(packet) };
  const bytes = encode(short ? expand(short) : packet);
  if (bytes.length > 8192) {
    row.size = bytes.length / 2;
    row.sha256 = createHash("sha256").update(Buffer.from(bytes, "hex")).digest("hex");
    row.head = bytes.slice(0, 128);
  } else {
    row.hex = bytes;
  }
  rows.push(row);
}

function clientBytes(name, hex, note = {}) {
  rows.push({ kind: "decode", name, hex, npm: npmDecode(hex), ...note });
}

function clientPacket(name, packet, note) {
  clientBytes(name, encode(packet), note);
}

// -- what the server sends --------------------------------------------------------------

serverPacket("connect answer", { type: 0, data: { sid: "dGVzdHRlc3R0ZXN0dGVz" }, nsp: "/" });
serverPacket("connect answer with pid, namespace", { type: 0, data: { sid: "abc", pid: "def" }, nsp: "/admin" });
serverPacket("connect error", { type: 4, data: { message: "Invalid namespace" }, nsp: "/nope" });
serverPacket("connect error with data", {
  type: 4,
  data: { message: "not authorized", data: { code: 403, retry: false, why: ["token", null] } },
  nsp: "/",
});
serverPacket("disconnect", { type: 1, nsp: "/" });
serverPacket("disconnect, namespace", { type: 1, nsp: "/chat" });
serverPacket("event", { type: 2, data: ["chat", "hello"], nsp: "/" });
serverPacket("event with ack id", { type: 2, data: ["question", 42], nsp: "/", id: 7 });
serverPacket("event, namespace, big ack id", { type: 2, data: ["e"], nsp: "/admin", id: 70000 });
serverPacket("ack", { type: 3, data: ["answer", { ok: true }], nsp: "/", id: 0 });
serverPacket("ack without arguments", { type: 3, data: [], nsp: "/x", id: 300 });
serverPacket("event with binary", {
  type: 2,
  data: ["file", Buffer.from([0, 1, 2, 255]), { nested: [Buffer.alloc(0), "text"] }],
  nsp: "/",
});
serverPacket("ack with binary", { type: 3, data: [Buffer.from("bytes")], nsp: "/", id: 5 });
serverPacket("binary of 300 bytes (bin 16)", { type: 2, data: ["big", Buffer.alloc(300, 7)], nsp: "/" });
serverPacket("binary of 70000 bytes (bin 32)", null, { type: 2, data: ["bigger", { $binfill: [9, 70000] }], nsp: "/" });
serverPacket("integers of every width", {
  type: 2,
  data: ["ints", 0, 127, 128, 255, 256, 65535, 65536, 4294967295, 4294967296, 2 ** 53,
    -1, -32, -33, -128, -129, -32768, -32769, -2147483648, -2147483649, -(2 ** 53)],
  nsp: "/",
});
serverPacket("floats, booleans, null", { type: 2, data: ["misc", 1.5, -0.25, 1.1e-300, -1234.5678, true, false, null], nsp: "/" });
serverPacket("strings of every width", {
  type: 2,
  data: ["strings", "", "a".repeat(31), "b".repeat(32), "c".repeat(255), "d".repeat(256)],
  nsp: "/",
});
serverPacket("string of 65536 bytes (str 32)", null, { type: 2, data: ["long", { $strfill: ["é", 32768] }], nsp: "/" });
serverPacket("unicode", { type: 2, data: ["üñíçødé", "€ 𝄞 日本語", { "ключ": "значение" }], nsp: "/ns-ü" });
serverPacket("arrays and maps of every width", {
  type: 2,
  data: [
    "containers",
    Array.from({ length: 15 }, (_, i) => i),
    Array.from({ length: 16 }, (_, i) => i),
    Object.fromEntries(Array.from({ length: 15 }, (_, i) => [`k${i}`, i])),
    Object.fromEntries(Array.from({ length: 16 }, (_, i) => [`k${i}`, i])),
  ],
  nsp: "/",
});
serverPacket("array of 70000 items (array 32)", null, { type: 2, data: ["many", { $arrayfill: [1, 70000] }], nsp: "/" });
serverPacket("nested", { type: 2, data: ["deep", [[[[{ a: [{ b: [] }] }]]]], {}], nsp: "/" });
serverPacket("date", { type: 2, data: ["when", new Date(1700000000123), new Date(-1000)], nsp: "/" });
serverPacket("recovery offset last", { type: 2, data: ["news", "text", "5f3a9c1e-1f"], nsp: "/" });

// -- what clients send --------------------------------------------------------------------

// socket.io-client 4.8: CONNECT is {type, data: auth} (auth undefined without the option)
clientPacket("connect without auth", { type: 0, data: undefined, nsp: "/" });
clientPacket("connect with auth", { type: 0, data: { token: "abc", n: 1 }, nsp: "/admin" });
clientPacket("connect to recover", { type: 0, data: { pid: "p1", offset: "o1", token: "t" }, nsp: "/" });
// EVENT is {type, data, options: {compress}, id?, nsp}
clientPacket("event", { type: 2, data: ["chat", "hi"], options: { compress: true }, nsp: "/" });
clientPacket("event with ack id", { type: 2, data: ["q", 1, 2], options: { compress: true }, id: 0, nsp: "/" });
clientPacket("event, namespace", { type: 2, data: ["q"], options: { compress: false }, id: 12, nsp: "/admin" });
clientPacket("event named by a number", { type: 2, data: [5, "x"], options: { compress: true }, nsp: "/" });
clientPacket("event with a Buffer", {
  type: 2,
  data: ["upload", Buffer.from([1, 2, 3]), { inner: Buffer.from("xyz") }],
  options: { compress: true },
  nsp: "/",
});
clientPacket("event with typed arrays and an ArrayBuffer (ext type 0)", {
  type: 2,
  data: ["typed", new Uint8Array([1, 2, 3]), new Uint8Array([0]).buffer, new Float64Array([1.5]), new ArrayBuffer(0)],
  options: { compress: true },
  nsp: "/",
});
clientPacket("event with undefined and a Date", {
  type: 2,
  data: ["values", undefined, null, new Date(1700000000123), { gone: undefined, kept: 1 }],
  options: { compress: true },
  nsp: "/",
});
clientPacket("ack", { type: 3, id: 4, data: ["reply", { ok: true }], nsp: "/" });
clientPacket("ack with binary", { type: 3, id: 9, data: [Buffer.from([9, 8])], nsp: "/" });
clientPacket("disconnect", { type: 1, nsp: "/admin" });
clientPacket("integer-valued float type and id", { type: 2.0, data: ["f"], id: 3.0, nsp: "/" });

// by hand: what the npm Decoder refuses, and what tornad_io refuses beyond it
const hex = (value) => encode(value);
clientPacket("type 5 (no BINARY types in this format)", { type: 5, data: ["a"], nsp: "/" });
clientPacket("type as a string", { type: "2", data: ["a"], nsp: "/" });
clientPacket("type missing", { data: ["a"], nsp: "/" });
clientPacket("namespace missing", { type: 2, data: ["a"] });
clientPacket("namespace a number", { type: 2, data: ["a"], nsp: 1 });
clientPacket("id a string", { type: 2, data: ["a"], nsp: "/", id: "1" });
clientPacket("id null", { type: 2, data: ["a"], nsp: "/", id: null });
clientPacket("id a fraction", { type: 2, data: ["a"], nsp: "/", id: 1.5 });
clientPacket("connect data an array", { type: 0, data: [1], nsp: "/" });
const NULL_PAYLOAD = { lenient: "python-socketio's msgpack client sends a null payload" };
clientPacket("connect data null", { type: 0, data: null, nsp: "/" }, NULL_PAYLOAD);
clientPacket("disconnect data null", { type: 1, data: null, nsp: "/" }, NULL_PAYLOAD);
clientPacket("disconnect with data", { type: 1, data: {}, nsp: "/" });
clientPacket("event data a map", { type: 2, data: { a: 1 }, nsp: "/" });
clientPacket("event data missing", { type: 2, nsp: "/" });
clientPacket("ack data a string", { type: 3, data: "a", nsp: "/", id: 1 });
clientPacket("connect error data a number", { type: 4, data: 1, nsp: "/" });
clientBytes("not a map", hex([2, ["a"], "/"]));
clientBytes("trailing bytes", hex({ type: 2, data: ["a"], nsp: "/" }) + "c0");
clientBytes("truncated", hex({ type: 2, data: ["a"], nsp: "/" }).slice(0, -4));
clientBytes("empty", "");
clientPacket("empty event", { type: 2, data: [], nsp: "/" }, { stricter: "an EVENT names its event" });
clientPacket("reserved event name", { type: 2, data: ["connect"], nsp: "/" }, { stricter: "reserved event names" });
clientPacket("event named by null", { type: 2, data: [null], nsp: "/" }, { stricter: "an event name is a string or a number" });
clientPacket("negative id", { type: 2, data: ["a"], nsp: "/", id: -1 }, { stricter: "ids are 0 to 10^16" });
clientPacket("id above 10^16", { type: 2, data: ["a"], nsp: "/", id: 2 ** 60 }, { stricter: "ids are 0 to 10^16" });
clientBytes(
  "integer map key inside data",
  hex({ type: 2, data: ["a"], nsp: "/" }).replace("91a161", "92a16181" + "01" + "02"),
  { stricter: "map keys are strings" },
);

writeFileSync(new URL("../data/msgpack-parser-vectors.jsonl", import.meta.url), rows.map((r) => JSON.stringify(r)).join("\n") + "\n");
console.log(`${rows.length} vectors`);
