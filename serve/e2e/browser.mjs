// Drives golem's web app in headless Chromium with playwright-core:
//   node browser.mjs BASE_URL USER PASSWORD [ADMIN ADMIN_PASSWORD]
// It logs in, reads the guidelines beside the task, writes a demonstration
// (Ctrl+Enter), ranks four sampled answers by clicks, keys and a drag,
// rating and flagging them, compares two (a tie and both bad by key, each
// undone, then B),
// edits the ranking in My labels (delete asks first), checks that model
// output and prompts are never parsed as HTML, that the models' names are
// hidden, that a success clears an error, and that every view passes
// axe-core's WCAG 2 AA rules. With an admin, it then logs in as the admin,
// edits the guidelines, reads the prompt list and disables the user.
import assert from "node:assert/strict";
import { checkA11y, shot, withApp } from "./app.mjs";

const [base, user, password, admin, adminPassword] = process.argv.slice(2);

// The elements golem makes in boxes of model or user text.
const OWN = new Set(["DIV", "SPAN", "P", "PRE", "CODE", "STRONG", "EM", "UL", "OL", "LI", "A", "BR", "Q"]);
async function foreignElements(page, selector) {
  return page.$$eval(selector, (els, own) => els.filter((e) => !own.includes(e.tagName) ||
    [...e.attributes].some((a) => a.name.startsWith("on"))).map((e) => e.outerHTML.slice(0, 80)), [...OWN]);
}

await withApp(base, user, password, async (page) => {
  const out = {};
  page.on("dialog", (d) => { out.dialog = d.message(); d.dismiss(); });
  // The guidelines are beside the task, rendered as Markdown, and the
  // admin's hostile markup in them is text.
  await page.waitForSelector("#view-demonstrate:not([hidden]) #demo-prompt .msg");
  const guide = '#view-demonstrate aside.guidelines:not([hidden])';
  await page.waitForSelector(guide + " strong");
  assert.match(await page.textContent(guide), /Write as the <b>assistant<\/b>/);
  assert.deepEqual(await foreignElements(page, guide + " .md *"), [], "elements from the guidelines");
  assert.equal(await page.evaluate(() => window.pwned), undefined, "the guidelines ran a script");
  assert.match(await page.textContent("#progress"), /2 left to write · 2 left to rank/);
  out.a11y = { demonstrate: await checkA11y(page, "demonstrate") };
  await shot(page, "demonstrate");

  // Write a demonstration; Ctrl+Enter saves it.
  out.demoPrompt = await page.textContent("#demo-prompt");
  await page.fill("#demo-text", "Hello! I am golem's demonstration, written in a real browser.");
  await page.press("#demo-text", "Control+Enter");
  await page.waitForFunction(() => /Saved demonstration \d+/.test(document.getElementById("demo-status").textContent));
  assert.match(await page.textContent("#progress"), /1 left to write · 2 left to rank/);

  // Rank four answers sampled from the served models: B first by a click,
  // then A, C and D by their keys (D taken back with Backspace and given
  // again), then D dragged onto C: B, A, D, C.
  await page.click('#nav button[data-view="rank"]');
  await page.waitForSelector("#rank-answers .rank-next[data-answer='3']");
  out.rankPrompt = await page.textContent("#rank-prompt");
  out.answers = await page.$$eval("#rank-answers .answer .text", (els) => els.map((e) => e.textContent));
  assert.doesNotMatch(await page.textContent("#rank-answers"), /tiny-/, "the ranking shows the models' names");
  assert.equal(await page.isDisabled("#rank-submit"), true, "save before ranking");
  await page.click("#rank-answers .rank-next[data-answer='1']");
  for (const k of ["a", "c", "d", "Backspace", "d"]) await page.keyboard.press(k);
  await page.waitForSelector("#rank-answers .ranking .answer[data-answer='3']");
  await page.dragAndDrop("#rank-answers .ranking .answer[data-answer='3']", "#rank-answers .ranking .answer[data-answer='2']");
  const ranked = await page.$$eval("#rank-answers .ranking .answer", (els) => els.map((e) => e.dataset.answer));
  assert.deepEqual(ranked, ["1", "0", "3", "2"], "the ranking after clicks, keys and a drag");
  await page.selectOption('#rank-answers select.rating[data-answer="0"]', "5");
  await page.selectOption('#rank-answers select.rating[data-answer="1"]', "7");
  await page.check('#rank-answers input.flag[data-answer="2"][value="incorrect"]');
  await page.check('#rank-answers input.flag[data-answer="2"][value="harmful"]');
  out.a11y.rank = await checkA11y(page, "rank");
  await shot(page, "rank");
  // At 400 px wide the header is one row and a checkbox is a 24 px target.
  await page.setViewportSize({ width: 400, height: 900 });
  out.narrow = {
    header: (await page.locator("header").boundingBox()).height,
    checkbox: (await page.locator('#rank-answers input.flag[data-answer="0"]').first().boundingBox()).width,
  };
  assert.ok(out.narrow.header <= 60 && out.narrow.checkbox >= 24, `at 400 px: ${JSON.stringify(out.narrow)}`);
  out.a11y.rank400 = await checkA11y(page, "rank at 400 px");
  await page.setViewportSize({ width: 1280, height: 900 });
  await page.click("#rank-submit");
  await page.waitForFunction(() => /Saved ranking \d+/.test(document.getElementById("rank-status").textContent));
  out.rankStatus = await page.textContent("#rank-status");
  out.a11y.saved = await checkA11y(page, "rank, saved"); // the status line's contrast

  // Compare two answers of the next prompt: T says tie; Undo brings the
  // pair back; B says B is better.
  await page.click('#nav button[data-view="compare"]');
  await page.waitForSelector("#cmp-a:not([disabled])");
  await page.waitForSelector("#cmp-answers .answer .text");
  assert.doesNotMatch(await page.textContent("#cmp-answers"), /tiny-/, "the comparison shows the models' names");
  const pair = await page.$$eval("#cmp-answers .answer .text", (els) => els.map((e) => e.textContent));
  out.a11y.compare = await checkA11y(page, "compare");
  await shot(page, "compare");
  for (const key of ["t", "x"]) { // tie, then both bad: each undone
    await page.keyboard.press(key);
    await page.waitForFunction(() => /Saved comparison \d+/.test(document.getElementById("cmp-status").textContent));
    assert.match(await page.textContent("#cmp-prompt"), /No prompt left to compare/);
    await page.click("#cmp-undo");
    await page.waitForFunction(() => /Undone/.test(document.getElementById("cmp-status").textContent));
    assert.deepEqual(await page.$$eval("#cmp-answers .answer .text", (els) => els.map((e) => e.textContent)), pair, "undo brings the pair back");
  }
  await page.keyboard.press("b");
  await page.waitForFunction(() => /Saved comparison \d+/.test(document.getElementById("cmp-status").textContent));

  // Whatever the prompts and the models said, no markup from them was
  // parsed: the only elements in their boxes are golem's own.
  assert.deepEqual(await foreignElements(page, ".conversation *, #rank-answers .text *, #cmp-answers .text *"), [], "elements from model output or prompts");
  out.progress = await page.textContent("#progress");
  assert.match(out.progress, /1 written · 2 ranked \(1 compared\)/);

  // My labels: the prompts' text; delete asks first (dismissed here); the
  // ranking is edited: C moves up above D.
  await page.click('#nav button[data-view="labels"]');
  await page.waitForSelector("#view-labels:not([hidden]) #labels-demos textarea");
  const labels = await page.textContent("#view-labels");
  assert.match(labels, /Name a color\.|<b>bold\?<\/b>/, "My labels shows the prompts' text");
  assert.doesNotMatch(labels, /prompt \d/, "My labels names prompts by number");
  out.a11y.labels = await checkA11y(page, "labels");
  await page.click("#labels-demos button.delete");
  assert.match(out.dialog || "", /Delete this demonstration\?/);
  assert.equal(await page.locator("#labels-demos textarea").count(), 1, "a dismissed delete deleted");
  const card = "#labels-rankings .label:first-child";
  await page.click(card + " button.edit");
  await page.click(card + ' .move-up[data-answer="2"]');
  await page.selectOption(card + ' select.rating[data-answer="3"]', "2");
  await shot(page, "labels");
  await page.click(card + " button.save");
  await page.waitForFunction(() => /Saved ranking \d+/.test(document.getElementById("labels-status").textContent));

  // Change the password on the account page; the weak one's error goes
  // when the next change succeeds.
  await page.click('#nav button[data-view="account"]');
  out.a11y.account = await checkA11y(page, "account");
  await page.fill("#password-current", password);
  await page.fill("#password-new", "12345678");
  await page.click("#password-submit");
  await page.waitForFunction(() => /consecutive/.test(document.getElementById("error").textContent));
  await page.fill("#password-new", password + "-changed");
  await page.click("#password-submit");
  await page.waitForFunction(() => document.getElementById("password-status").textContent === "Password changed.");
  assert.equal(await page.isHidden("#error"), true, "the error stays after a success");

  if (admin) {
    await page.click("#logout");
    await page.waitForSelector("#view-login:not([hidden])");
    out.a11y.login = await checkA11y(page, "login");
    await shot(page, "login");
    await page.fill("#login-username", admin);
    await page.fill("#login-password", adminPassword);
    await page.click("#login-submit");
    await page.waitForSelector("#nav-admin:not([hidden])");
    await page.click("#nav-admin");
    // The prompt list, with label counts: the compared prompt has one.
    await page.waitForSelector("#prompts tbody tr");
    const rows = await page.$$eval("#prompts tbody tr", (trs) => trs.map((tr) => [...tr.cells].map((c) => c.textContent)));
    assert.equal(rows.length, 2);
    assert.ok(rows.some((r) => r[5] === "1") && rows.some((r) => r[4] === "1") && rows.some((r) => r[3] === "1"), `prompt counts ${JSON.stringify(rows)}`);
    out.a11y.admin = await checkA11y(page, "admin");
    await shot(page, "admin");
    await page.selectOption("#guide-task", "compare");
    await page.fill("#guide-text", "Pick the **kinder** answer.");
    await page.click("#guide-submit");
    await page.waitForFunction(() => /Saved the guidelines for compare/.test(document.getElementById("guide-status").textContent));
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
