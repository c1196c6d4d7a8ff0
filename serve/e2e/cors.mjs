// A web page on another origin calls golem serve's APIs from headless
// Chromium (playwright-core):
//   node cors.mjs API_URL PAGE_PORT API_KEY MODEL
// The page is served on PAGE_PORT under three names of 127.0.0.1:
// localhost (allowed by default), allowed.test (allowed by --cors-origin)
// and denied.test (not allowed: the browser keeps the answers from it).
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chromium } from "playwright-core";

const [api, port, key, model] = process.argv.slice(2);
const profile = mkdtempSync(join(tmpdir(), "golem-chromium-"));
const context = await chromium.launchPersistentContext(profile, {
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  headless: true,
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--host-resolver-rules=MAP allowed.test 127.0.0.1, MAP denied.test 127.0.0.1"],
});

// call runs in the page: what a browser app does with the two APIs.
async function call([api, key, model]) {
  const out = {};
  try {
    const tags = await fetch(api + "/api/tags", { headers: { Authorization: "Bearer " + key } });
    out.tags = (await tags.json()).models.map((m) => m.name);
    // JSON and Authorization: the browser sends a preflight first.
    const chat = await fetch(api + "/v1/chat/completions", {
      method: "POST",
      headers: { "Content-Type": "application/json", Authorization: "Bearer " + key },
      body: JSON.stringify({ model, messages: [{ role: "user", content: "hi" }], max_tokens: 3 }),
    });
    out.status = chat.status;
    out.requestId = chat.headers.get("X-Request-Id");
    out.object = (await chat.json()).object;
  } catch (e) {
    out.error = e.name + ": " + e.message;
  }
  return out;
}

const out = {};
try {
  const page = context.pages()[0] || (await context.newPage());
  page.setDefaultTimeout(30000);
  for (const host of ["localhost", "allowed.test", "denied.test"]) {
    await page.goto(`http://${host}:${port}/`);
    assert.equal(await page.textContent("h1"), "another app");
    out[host] = await page.evaluate(call, [api, key, model]);
  }
} finally {
  await context.close();
  rmSync(profile, { recursive: true, force: true });
}
for (const host of ["localhost", "allowed.test"]) {
  const r = out[host];
  assert.equal(r.error, undefined, host + ": " + r.error);
  assert.ok(r.tags.includes(model + ":latest"), host + ": " + JSON.stringify(r));
  assert.equal(r.status, 200);
  assert.equal(r.object, "chat.completion");
  assert.match(r.requestId ?? "", /^[0-9a-f]{16}$/, host + ": X-Request-Id is exposed to the page");
}
assert.match(out["denied.test"].error ?? "", /TypeError: Failed to fetch/, "denied.test: " + JSON.stringify(out["denied.test"]));
console.log(JSON.stringify({ ok: true, ...out }));
