// The chat demo's page (examples/chat/index.html) in headless Chromium, as people use it.
//
//   node tests/js/chat_demo_browser.mjs http://127.0.0.1:PORT/ OUTPUT_DIR
//
// Two pages (Ann and Bob) join and chat through the page's own form; Ann sends one unbroken 3 000-character
// word; a third page opened afterwards is the late joiner. Every wait is for something the page shows,
// bounded by Playwright's timeout. Writes one JSON report on stdout, with what each page showed, for the
// Python test (tests/test_chat_demo_browser.py) to check. Screenshots go to OUTPUT_DIR: Bob's page after the
// first exchange, Ann's after the long word, and the late joiner's (its log scrolled to the top).
import { launchChromium, removeProfile } from "./chromium.mjs";
import path from "node:path";

const [url, outputDir] = process.argv.slice(2);
const LONG = "0123456789".repeat(300); // 3 000 characters, no break opportunity
const WAIT = 15000;

const context = await launchChromium("chat", { viewport: { width: 900, height: 760 } });
context.setDefaultTimeout(WAIT);

const report = { responses: [], failed: [], errors: [], console: [] };
let closing = false; // requests cut by closing the browser at the end are not failures

async function openPage(name) {
  const page = await context.newPage();
  page.on("response", (response) => report.responses.push({ page: name, url: response.url(), status: response.status() }));
  page.on("requestfailed", (request) => {
    if (!closing) report.failed.push({ page: name, url: request.url(), error: request.failure()?.errorText });
  });
  page.on("pageerror", (error) => report.errors.push({ page: name, message: String(error) }));
  page.on("console", (message) => {
    if (message.type() === "error") report.console.push({ page: name, text: message.text() });
  });
  await page.goto(url);
  await page.waitForFunction(() => document.getElementById("status").textContent.startsWith("connected"));
  return page;
}

async function join(page, name) {
  await page.fill("#name", name);
  await page.click("#join button");
  await page.waitForSelector("#say", { state: "visible" });
}

async function say(page, text) {
  await page.fill("#text", text);
  await page.press("#text", "Enter");
}

const lines = (page) => page.$$eval("#log li", (items) => items.map((li) => ({ text: li.textContent, cls: li.className })));
const waitForLine = (page, text) =>
  page.waitForFunction((t) => [...document.querySelectorAll("#log li")].some((li) => li.textContent === t), text);
const waitForLineStarting = (page, prefix) =>
  page.waitForFunction((p) => [...document.querySelectorAll("#log li")].some((li) => li.textContent.startsWith(p)), prefix);

// how the log box and its widest line fit, in CSS pixels
const layout = (page) =>
  page.evaluate(() => {
    const log = document.getElementById("log");
    const widest = Math.max(...[...log.querySelectorAll("li")].map((li) => li.getBoundingClientRect().width));
    return {
      scrollWidth: log.scrollWidth,
      clientWidth: log.clientWidth,
      logWidth: log.getBoundingClientRect().width,
      widestLine: widest,
      documentScrollWidth: document.documentElement.scrollWidth,
      viewportWidth: window.innerWidth,
    };
  });

try {
  const ann = await openPage("ann");
  const bob = await openPage("bob");
  await join(ann, "Ann");
  await join(bob, "Bob");
  await waitForLine(ann, "Bob joined");

  await say(ann, "hello Bob ☀");
  await waitForLine(bob, "Ann: hello Bob ☀");
  report.bobTypingAfterAnnSaid = await bob.textContent("#typing");
  await say(bob, "hi Ann, long time no see");
  await waitForLine(ann, "Bob: hi Ann, long time no see");
  report.screenshotChat = path.join(outputDir, "chat-bob.png");
  await bob.screenshot({ path: report.screenshotChat, fullPage: true });

  await say(ann, LONG);
  await waitForLineStarting(ann, "your message had");
  await waitForLineStarting(bob, "Ann: 0123456789");
  report.ann = { lines: await lines(ann), layout: await layout(ann) };
  report.bob = { lines: await lines(bob), layout: await layout(bob) };
  report.screenshot = path.join(outputDir, "chat-ann.png");
  await ann.screenshot({ path: report.screenshot, fullPage: true });

  const cid = await openPage("cid");
  await waitForLineStarting(cid, "online:");
  report.cid = { lines: await lines(cid), layout: await layout(cid) };
  report.screenshotLate = path.join(outputDir, "chat-cid.png");
  await cid.$eval("#log", (log) => { log.scrollTop = 0; }); // show where the history starts
  await cid.screenshot({ path: report.screenshotLate, fullPage: true });
  report.ok = true;
} catch (error) {
  report.ok = false;
  report.exception = String(error && error.stack ? error.stack : error);
} finally {
  closing = true;
  await context.close();
  removeProfile(context);
}
process.stdout.write(JSON.stringify(report) + "\n");
