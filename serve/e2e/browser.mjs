// Drives golem's web app in headless Chromium with playwright-core:
//   node browser.mjs BASE_URL USER PASSWORD
// It logs in, writes a demonstration, ranks four sampled answers (flagging
// one), compares two, and checks that model output and prompts are shown
// as text, never as HTML.
import assert from "node:assert/strict";
import { withApp } from "./app.mjs";

const [base, user, password] = process.argv.slice(2);
await withApp(base, user, password, async (page) => {
  const out = {};
  // Write a demonstration for the first prompt in the queue.
  await page.waitForSelector("#view-demonstrate:not([hidden]) #demo-prompt .msg");
  out.demoPrompt = await page.textContent("#demo-prompt");
  await page.fill("#demo-text", "Hello! I am golem's demonstration, written in a real browser.");
  await page.click("#demo-submit");
  await page.waitForFunction(() => /Saved demonstration \d+/.test(document.getElementById("demo-status").textContent));
  out.demoStatus = await page.textContent("#demo-status");

  // Rank four answers sampled from the served models.
  await page.click('#nav button[data-view="rank"]');
  await page.waitForFunction(() => document.querySelectorAll("#rank-answers select.rank").length === 4);
  out.rankPrompt = await page.textContent("#rank-prompt");
  out.answers = await page.$$eval("#rank-answers .answer .text", (els) => els.map((e) => e.textContent));
  const places = ["2", "1", "4", "3"]; // answer B is the best, then A, D, C
  const selects = await page.$$("#rank-answers select.rank");
  for (let i = 0; i < 4; i++) await selects[i].selectOption(places[i]);
  await page.check('#rank-answers input.flag[data-answer="2"][value="incorrect"]');
  await page.check('#rank-answers input.flag[data-answer="2"][value="harmful"]');
  await page.click("#rank-submit");
  await page.waitForFunction(() => /Saved ranking \d+/.test(document.getElementById("rank-status").textContent));
  out.rankStatus = await page.textContent("#rank-status");

  // Compare two answers of the next prompt.
  await page.click('#nav button[data-view="compare"]');
  await page.waitForSelector("#cmp-a:not([disabled])");
  await page.click("#cmp-b");
  await page.waitForFunction(() => /Saved comparison \d+/.test(document.getElementById("cmp-status").textContent));

  // Whatever the prompts and the models said, no markup from them was
  // parsed: the only elements in the conversation boxes are golem's own.
  const foreign = await page.$$eval(".conversation *, #rank-answers .text *, #cmp-answers .text *",
    (els) => els.filter((e) => !(e.tagName === "DIV" && e.className === "msg") && !(e.tagName === "SPAN" && e.className === "role")).map((e) => e.tagName));
  assert.deepEqual(foreign, [], "elements from model output or prompts");
  out.progress = await page.textContent("#progress");
  assert.match(out.progress, /1 written · 2 ranked \(1 compared\)/);
  return out;
});
