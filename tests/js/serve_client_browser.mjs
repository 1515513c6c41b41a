// Pages that load the client bundle from the server itself (serve_client) in headless Chromium.
//
//   node tests/js/serve_client_browser.mjs URL...
//
// Each page sets document.title to "done: ..." once its socket connected and got an answer, or "failed: ...".
// Writes one JSON report on stdout: each page's title and the requests it made, with their status.
import { chromium } from "playwright-core";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";

const urls = process.argv.slice(2);
const profile = fs.mkdtempSync(path.join(os.tmpdir(), "tornad-io-serve-client-chromium-"));
const context = await chromium.launchPersistentContext(profile, {
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  headless: true,
  args: [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
  ],
});
context.setDefaultTimeout(15000);
const report = { pages: [], errors: [] };
try {
  for (const url of urls) {
    const page = await context.newPage();
    const responses = [];
    page.on("response", (response) => responses.push({ url: response.url(), status: response.status() }));
    page.on("pageerror", (error) => report.errors.push(String(error)));
    await page.goto(url);
    await page.waitForFunction(() => document.title.startsWith("done") || document.title.startsWith("failed"));
    // loaded again: the browser revalidates with If-None-Match and the server answers 304
    const again = await page.evaluate(async (src) => (await fetch(src, { cache: "no-cache" })).status, await page.evaluate(() => window.bundle));
    report.pages.push({ url, title: await page.title(), responses, again });
    await page.close();
  }
  report.ok = true;
} catch (error) {
  report.ok = false;
  report.exception = String(error && error.stack ? error.stack : error);
} finally {
  await context.close();
  fs.rmSync(profile, { recursive: true, force: true });
}
process.stdout.write(JSON.stringify(report) + "\n");
process.exit(0);
