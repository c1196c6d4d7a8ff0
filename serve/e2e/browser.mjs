// Drives golem's web app in headless Chromium with playwright-core:
//   node browser.mjs BASE_URL USER PASSWORD [ADMIN ADMIN_PASSWORD]
// It logs in, writes a demonstration, ranks four sampled answers (flagging
// one), compares two, checks that model output and prompts are shown as
// text, never as HTML, and changes the password. With an admin, it then
// logs in as the admin and disables the user on the admin page.
import assert from "node:assert/strict";
import { withApp } from "./app.mjs";

const [base, user, password, admin, adminPassword] = process.argv.slice(2);
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

  // Change the password on the account page; the session goes on.
  await page.click('#nav button[data-view="account"]');
  await page.fill("#password-current", password);
  await page.fill("#password-new", "12345678");
  await page.click("#password-submit");
  await page.waitForFunction(() => /consecutive/.test(document.getElementById("error").textContent));
  await page.fill("#password-new", password + "-changed");
  await page.click("#password-submit");
  await page.waitForFunction(() => document.getElementById("password-status").textContent === "Password changed.");
  await page.click('#nav button[data-view="labels"]');
  await page.waitForSelector("#view-labels:not([hidden]) #labels-demos textarea");

  if (admin) {
    await page.click("#logout");
    await page.waitForSelector("#view-login:not([hidden])");
    await page.fill("#login-username", admin);
    await page.fill("#login-password", adminPassword);
    await page.click("#login-submit");
    await page.click("#nav-admin");
    await page.click(`#users button.user-disable[data-user="${user}"]`);
    await page.waitForFunction((u) => document.getElementById("user-status").textContent === `Disabled ${u}.`, user);
    // The table is drawn again from the server: the row says so.
    await page.waitForFunction((u) => {
      const b = document.querySelector(`#users button.user-disable[data-user="${u}"]`);
      return b && b.textContent === "Enable" && b.closest("tr").cells[0].textContent === `${u} (disabled)`;
    }, user);
  }
  return out;
});
