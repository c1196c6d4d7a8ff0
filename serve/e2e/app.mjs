// What the browser scripts share: headless Debian chromium (or $CHROMIUM)
// driven by playwright-core, logged in to golem's web app.
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chromium } from "playwright-core";

const axeSource = readFileSync(createRequire(import.meta.url).resolve("axe-core/axe.min.js"), "utf8");

// checkA11y runs axe-core's WCAG 2.0 and 2.1 A and AA rules (labels,
// contrast, names, ...) on what the page shows now, and fails on any
// violation. It returns the number of rules that passed.
export async function checkA11y(page, view) {
  if (!(await page.evaluate(() => typeof window.axe !== "undefined"))) await page.evaluate(axeSource);
  const r = await page.evaluate(() => window.axe.run(document, { runOnly: { type: "tag", values: ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"] } }));
  const bad = r.violations.map((v) => `${v.id} (${v.help}): ${v.nodes.map((n) => n.target.join(" ")).join(", ")}`);
  assert.deepEqual(bad, [], `${view}: accessibility violations`);
  return r.passes.length;
}

// shot saves a screenshot of the page as NAME-WIDTH.png in
// $GOLEM_E2E_SHOTS, at 1280 and 400 px wide, when that is set.
export async function shot(page, name) {
  const dir = process.env.GOLEM_E2E_SHOTS;
  if (!dir) return;
  const size = page.viewportSize();
  for (const width of [1280, 400]) {
    await page.setViewportSize({ width, height: 900 });
    await page.screenshot({ path: join(dir, `${name}-${width}.png`), fullPage: true });
  }
  await page.setViewportSize(size);
}

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
    await page.setViewportSize({ width: 1280, height: 900 });
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
