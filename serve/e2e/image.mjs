// An image prompt through golem's web app in headless Chromium:
//   node image.mjs BASE_URL ADMIN ADMIN_PASSWORD USER PASSWORD PROMPTS.jsonl IMAGE
// The admin imports the prompts file with its image; the annotator sees the
// image beside the prompt (loaded: naturalWidth > 0), writes a
// demonstration, and, the served models reading text only, writes three
// answers by hand and ranks them by keys (B, A, C), then compares two
// answers written by hand about the second prompt's image (B is better).
// Every view passes axe-core's WCAG 2 AA rules.
import assert from "node:assert/strict";
import { checkA11y, shot, withApp } from "./app.mjs";

const [base, admin, adminPassword, user, password, promptsFile, imageFile] = process.argv.slice(2);

// imageLoaded waits for the prompt's image in box and returns its natural size.
async function imageLoaded(page, box) {
  const sel = `${box} img.prompt-image`;
  await page.waitForSelector(sel);
  await page.waitForFunction((s) => { const i = document.querySelector(s); return i && i.complete && i.naturalWidth > 0; }, sel);
  return page.$eval(sel, (i) => [i.naturalWidth, i.naturalHeight]);
}

await withApp(base, admin, adminPassword, async (page) => {
  const out = {};
  await page.waitForSelector("#nav-admin:not([hidden])");
  await page.click("#nav-admin");
  await page.setInputFiles("#import-file", promptsFile);
  await page.setInputFiles("#import-images", imageFile);
  await page.click("#import-submit");
  await page.waitForFunction(() => /Imported 2 prompts \(0 already there, 1 new images\)/.test(document.getElementById("import-status").textContent));
  await page.waitForSelector("#prompts tbody tr .tag");
  out.a11y = { admin: await checkA11y(page, "admin") };

  await page.click("#logout");
  await page.waitForSelector("#view-login:not([hidden])");
  await page.fill("#login-username", user);
  await page.fill("#login-password", password);
  await page.click("#login-submit");

  // Write a demonstration about the image.
  await page.waitForSelector("#view-demonstrate:not([hidden]) #demo-prompt .msg");
  out.demoImage = await imageLoaded(page, "#demo-prompt");
  assert.match(await page.textContent("#demo-prompt"), /What colour is this\?/);
  out.a11y.demonstrate = await checkA11y(page, "demonstrate with an image");
  await shot(page, "image-demonstrate");
  await page.fill("#demo-text", "It is red.");
  await page.press("#demo-text", "Control+Enter");
  await page.waitForFunction(() => /Saved demonstration \d+/.test(document.getElementById("demo-status").textContent));

  // Rank: the models read text only, so the annotator writes the answers.
  await page.click('#nav button[data-view="rank"]');
  out.rankImage = await imageLoaded(page, "#rank-prompt");
  await page.waitForSelector("#rank-hand-0");
  assert.match(await page.textContent("#rank-notice"), /do not read images/);
  await page.fill("#rank-hand-0", "It is blue.");
  await page.fill("#rank-hand-1", "It is red.");
  await page.fill("#rank-hand-2", "It is a cat.");
  out.a11y.rankByHand = await checkA11y(page, "rank, answers by hand");
  await page.click("#rank-hand-use");
  await page.waitForSelector("#rank-answers .rank-next[data-answer='2']");
  await page.locator("#rank-answers").click({ position: { x: 1, y: 1 } }); // keys go to the page, not a text box
  for (const k of ["b", "a", "c"]) await page.keyboard.press(k);
  const ranked = await page.$$eval("#rank-answers .ranking .answer", (els) => els.map((e) => e.dataset.answer));
  assert.deepEqual(ranked, ["1", "0", "2"], "the ranking by keys");
  out.a11y.rank = await checkA11y(page, "rank with an image");
  await shot(page, "image-rank");
  await page.keyboard.press("Enter");
  await page.waitForFunction(() => /Saved ranking \d+/.test(document.getElementById("rank-status").textContent));

  // Compare: rank and compare share a queue, so the next prompt is the
  // second one, about the same image; two answers by hand, B is better.
  await page.click('#nav button[data-view="compare"]');
  out.compareImage = await imageLoaded(page, "#cmp-prompt");
  assert.match(await page.textContent("#cmp-prompt"), /Is this a cat\?/);
  await page.waitForSelector("#cmp-hand-0");
  assert.match(await page.textContent("#cmp-notice"), /do not read images/);
  await page.fill("#cmp-hand-0", "Yes, a cat.");
  await page.fill("#cmp-hand-1", "No, a red rectangle.");
  await page.click("#cmp-hand-use");
  await page.waitForSelector("#cmp-b:not([disabled])");
  out.a11y.compare = await checkA11y(page, "compare with an image");
  await shot(page, "image-compare");
  await page.click("#cmp-b");
  await page.waitForFunction(() => /Saved comparison \d+/.test(document.getElementById("cmp-status").textContent));
  return out;
});
