// Pages that load the client bundle from the server itself (serve_client) in headless Chromium.
//
//   node tests/js/serve_client_browser.mjs URL...
//
// Each page sets document.title to "done: ..." once its socket connected and got an answer, or "failed: ...".
// Writes one JSON report on stdout: each page's title and the requests it made, with their status.
import { launchChromium, removeProfile } from "./chromium.mjs";

const urls = process.argv.slice(2);
const context = await launchChromium("serve-client");
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
  removeProfile(context);
}
process.stdout.write(JSON.stringify(report) + "\n");
process.exit(0);
