// The real Socket.IO Admin UI (@socket.io/admin-ui 0.5.1, its built ui/dist served by the chat demo at /admin/)
// in headless Chromium, against the demo server instrumented with tornad_io.admin.
//
//   node tests/js/admin_ui_browser.mjs http://127.0.0.1:PORT OUTPUT_DIR USERNAME PASSWORD SERVER_PID
//
// Two socket.io-client 4.x clients (Node) connect to the demo and join the chat (the room "chat"). The UI's
// connect form is filled in like a person would: server URL, a wrong password (the form must say so), then the
// right one. Then the Sockets and Rooms pages are read from the DOM. Requests that leave 127.0.0.1 (the UI's
// web fonts and icon font) are refused: the tests run offline. Writes one JSON report on stdout for
// tests/test_admin_ui.py; screenshots go to OUTPUT_DIR.
import { launchChromium, removeProfile } from "./chromium.mjs";
import { io } from "socket.io-client";
import path from "node:path";

const [url, outputDir, username, password, serverPid] = process.argv.slice(2);
const WAIT = 15000;
const report = { clients: {}, failed: [], errors: [], blocked: [], console: [], serverPid };

function client(name) {
  return new Promise((resolve, reject) => {
    const socket = io(url, { forceNew: true, reconnection: false });
    socket.on("connect_error", reject);
    socket.on("connect", () => {
      socket.emit("join", name, (answer) => {
        report.clients[name] = { id: socket.id, answer };
        resolve(socket);
      });
    });
  });
}

const sockets = [await client("ann"), await client("bob")];

const context = await launchChromium("admin", { viewport: { width: 1280, height: 800 } });
context.setDefaultTimeout(WAIT);
const local = new URL(url).host;
await context.route(
  (requestUrl) => requestUrl.host !== local,
  (route) => {
    report.blocked.push(route.request().url());
    return route.abort();
  },
);

// a screenshot once the page has slid in (the UI animates every change of page)
async function shoot(page, name, options = {}) {
  await page.waitForFunction(() => !document.querySelector('[class*="-transition-enter-active"], [class*="-transition-leave-active"]'));
  await page.screenshot({ path: path.join(outputDir, name + ".png"), ...options });
}

// rows of the data table on screen (pages that slid away may linger in the DOM, hidden), as text cells
const rows = (page) =>
  page.$$eval(".v-data-table tbody tr", (trs) =>
    trs.filter((tr) => tr.getClientRects().length > 0).map((tr) => [...tr.querySelectorAll("td")].map((td) => td.textContent.trim())),
  );

try {
  const page = await context.newPage();
  page.on("requestfailed", (request) => {
    if (new URL(request.url()).host === local) report.failed.push({ url: request.url(), error: request.failure()?.errorText });
  });
  page.on("pageerror", (error) => report.errors.push(String(error)));
  page.on("console", (message) => {
    if (message.type() === "error") report.console.push(message.text());
  });
  await page.goto(url + "/admin/");

  // the connect form: a wrong password first
  await page.getByLabel("Server URL").fill(url);
  await page.getByLabel("Username").fill(username);
  await page.getByLabel("Password").fill("not the password");
  await page.getByRole("button", { name: "Connect" }).click();
  await page.getByText("Invalid credentials").waitFor();
  report.refused = true;
  await shoot(page, "admin-login-refused");

  // then the right one: the form closes
  await page.getByLabel("Password").fill(password);
  await page.getByRole("button", { name: "Connect" }).click();
  await page.getByLabel("Server URL").waitFor({ state: "hidden" });
  report.sessionId = await page.evaluate(() => localStorage.getItem("session_id"));

  // the Sockets page lists both clients
  await page.goto(url + "/admin/#/sockets/");
  const ids = Object.values(report.clients).map((c) => c.id);
  await page.waitForFunction(
    (wanted) => wanted.every((id) => [...document.querySelectorAll(".v-data-table tbody td")].some((td) => td.textContent.trim() === id)),
    ids,
  );
  report.socketRows = await rows(page);
  await shoot(page, "admin-sockets");

  // the Rooms page shows the chat room with its two sockets
  await page.goto(url + "/admin/#/rooms/");
  await page.waitForFunction(() =>
    [...document.querySelectorAll(".v-data-table tbody tr")].some((tr) => tr.querySelector("td")?.textContent.trim() === "chat"),
  );
  report.roomRows = await rows(page);
  await shoot(page, "admin-rooms");

  // a socket's details page, reached by clicking its row: its rooms
  await page.goto(url + "/admin/#/sockets/");
  await page.getByText(report.clients.ann.id, { exact: true }).click();
  await page.waitForFunction(() => location.hash.includes("/sockets/"));
  await page.getByText("chat", { exact: true }).first().waitFor();
  report.socketPage = await page.evaluate(() => document.querySelector("main").innerText);
  await shoot(page, "admin-socket", { fullPage: true });
  // the Servers page: this server, from its server_stats (serverId, hostname, pid, clients)
  await page.goto(url + "/admin/#/servers/");
  await page.waitForFunction(
    (pid) => [...document.querySelectorAll(".v-data-table tbody td")].some((td) => td.textContent.trim() === pid),
    String(report.serverPid),
  );
  report.serverRows = await rows(page);
  await shoot(page, "admin-servers");

  // the dashboard, with the stats that came in meanwhile
  await page.goto(url + "/admin/#/");
  await page.waitForFunction(() => /websocket/i.test(document.querySelector("main")?.innerText ?? ""));
  report.dashboardText = await page.evaluate(() => document.querySelector("main").innerText);
  await shoot(page, "admin-dashboard");
  report.ok = true;
} catch (error) {
  report.ok = false;
  report.exception = String(error && error.stack ? error.stack : error);
} finally {
  await context.close();
  removeProfile(context);
  for (const socket of sockets) socket.disconnect();
}
process.stdout.write(JSON.stringify(report) + "\n");
process.exit(0);
