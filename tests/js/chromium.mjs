// Debian's Chromium for the browser tests, started the one way they all need: headless, with a fresh
// profile, and with every background service off (this machine reaches no network but the registries).
import { chromium } from "playwright-core";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";

export const CHROMIUM_ARGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
  "--no-first-run",
];

const profiles = new WeakMap();

// A persistent context on a new profile folder named after `name`; `options` go to Playwright as they are.
export async function launchChromium(name, options = {}) {
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), `tornad-io-${name}-chromium-`));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    headless: true,
    args: CHROMIUM_ARGS,
    ...options,
  });
  profiles.set(context, profile);
  return context;
}

// Remove the profile folder of a context from launchChromium (once the browser is closed).
export function removeProfile(context) {
  const profile = profiles.get(context);
  if (profile) fs.rmSync(profile, { recursive: true, force: true });
}
