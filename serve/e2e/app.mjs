// What the browser scripts share: headless Debian chromium (or $CHROMIUM)
// driven by playwright-core, logged in to golem's web app.
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chromium } from "playwright-core";

// withApp opens base in a fresh browser profile, logs in as user, runs
// fn(page), checks that the page threw no error, and prints
// {"ok": true, ...} with what fn returned.
export async function withApp(base, user, password, fn) {
  const profile = mkdtempSync(join(tmpdir(), "golem-chromium-"));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    headless: true,
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
      "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
  try {
    const page = context.pages()[0] || (await context.newPage());
    page.setDefaultTimeout(60000);
    const errors = [];
    page.on("pageerror", (e) => errors.push(String(e)));
    await page.goto(base + "/");
    await page.fill("#login-username", user);
    await page.fill("#login-password", password);
    await page.click("#login-submit");
    const out = await fn(page);
    assert.deepEqual(errors, [], "page errors");
    console.log(JSON.stringify({ ok: true, ...out }));
  } finally {
    await context.close();
    rmSync(profile, { recursive: true, force: true });
  }
}
