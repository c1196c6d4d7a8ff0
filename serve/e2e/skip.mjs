// Drives golem's web app in headless Chromium when the served model gives
// the same answer every time:
//   node skip.mjs BASE_URL USER PASSWORD
// Ranking and comparing say there is nothing to rank and keep their save
// buttons off; Skip goes on to another prompt each time, in every task,
// until no prompt is left.
import assert from "node:assert/strict";
import { withApp } from "./app.mjs";

const [base, user, password] = process.argv.slice(2);

// skipTo clicks a Skip button and waits for the prompt to change.
async function skipTo(page, button, promptBox, status) {
  const before = await page.textContent(promptBox);
  await page.click(button);
  await page.waitForFunction(([s]) => /Skipped prompt \d+/.test(document.getElementById(s).textContent), [status]);
  const after = await page.textContent(promptBox);
  assert.notEqual(after, before, `${button}: the same prompt came back`);
  return after;
}

await withApp(base, user, password, async (page) => {
  const out = {};
  await page.waitForSelector("#view-demonstrate:not([hidden]) #demo-prompt .msg");
  out.demo = await skipTo(page, "#demo-skip", "#demo-prompt", "demo-status");

  await page.click('#nav button[data-view="rank"]');
  await page.waitForSelector("#rank-notice:not([hidden])");
  out.rankNotice = await page.textContent("#rank-notice");
  assert.match(out.rankNotice, /nothing to rank/);
  assert.equal(await page.isDisabled("#rank-submit"), true, "rank-submit enabled with one answer");
  assert.equal(await page.locator("#rank-answers select.rank").count(), 0);
  out.rank = await skipTo(page, "#rank-skip", "#rank-prompt", "rank-status");
  await page.waitForSelector("#rank-notice:not([hidden])");

  await page.click('#nav button[data-view="compare"]');
  await page.waitForSelector("#cmp-notice:not([hidden])");
  assert.equal(await page.isDisabled("#cmp-a"), true, "cmp-a enabled with one answer");
  out.compare = await skipTo(page, "#cmp-skip", "#cmp-prompt", "cmp-status");
  assert.match(out.compare, /No prompt left to compare/);
  out.progress = await page.textContent("#progress");
  assert.match(out.progress, /0 written · 0 ranked \(0 compared\) · 3 skipped/);
  return out;
});
