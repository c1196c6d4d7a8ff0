// Drives the web app's chat in headless Chromium:
//   node chat.mjs BASE_URL USER PASSWORD
// Max tokens starts at what fits the model; Enter sends and Shift+Enter
// starts a new line; answers are bubbles; a history longer than the
// context is trimmed, not refused; Regenerate replaces the last answer;
// Stop ends an answer under way (before its first token: the message
// goes back to the box); a failed turn leaves no empty answer
// and gives the message back; the next success clears the error. Then
// the Markdown renderer meets hostile input: nothing runs, and only its
// own element types appear.
import assert from "node:assert/strict";
import { checkA11y, shot, withApp } from "./app.mjs";

const [base, user, password] = process.argv.slice(2);

const bubbles = (page) => page.$$eval("#chat-log .bubble", (els) => els.map((e) => e.className.replace("bubble ", "")));
const idle = (page) => page.waitForSelector("#chat-send:not([disabled])");

await withApp(base, user, password, async (page) => {
  const out = {};
  await page.waitForSelector("#nav:not([hidden])");
  await page.click('#nav button[data-view="chat"]');
  await page.waitForSelector("#chat-model option", { state: "attached" });
  const info = await page.evaluate(() => fetch("/app/api/models").then((r) => r.json()));
  const m = info.info.find((i) => i.name === info.models[0]);
  assert.equal(await page.inputValue("#chat-max"), String(m.max_tokens), "Max tokens starts at what fits");
  assert.ok(m.max_tokens < m.context, `max_tokens ${m.max_tokens} of context ${m.context}`);
  out.a11y = await checkA11y(page, "chat");

  // Shift+Enter is a new line; Enter sends.
  await page.click("#chat-input");
  await page.keyboard.type("Hello there.");
  await page.keyboard.press("Shift+Enter");
  await page.keyboard.type("How are you?");
  assert.equal(await page.inputValue("#chat-input"), "Hello there.\nHow are you?");
  assert.deepEqual(await bubbles(page), [], "Shift+Enter sent the message");
  await page.keyboard.press("Enter");
  await page.waitForFunction(() => document.querySelectorAll("#chat-log .bubble.assistant").length === 1);
  await idle(page);
  assert.equal(await page.inputValue("#chat-input"), "");
  assert.deepEqual(await bubbles(page), ["user", "assistant"]);

  // Turns until the history outgrows the context: it is trimmed, and
  // every turn is answered.
  for (let i = 0; !(await page.isVisible("#chat-trimmed")); i++) {
    assert.ok(i < 40, "the history never needed trimming");
    await page.fill("#chat-input", `Tell me a long story about the number ${i}, with many words in it, please.`);
    await page.press("#chat-input", "Enter");
    await page.waitForFunction((n) => document.querySelectorAll("#chat-log .bubble.assistant").length === n, i + 2);
    await idle(page);
    assert.equal(await page.isHidden("#error"), true, `turn ${i + 2}: ${await page.textContent("#error")}`);
  }
  out.trimmed = await page.textContent("#chat-trimmed");
  assert.match(out.trimmed, /oldest messages are left out/);
  out.a11yBubbles = await checkA11y(page, "chat with answers");
  await shot(page, "chat");

  // Regenerate replaces the last answer.
  const before = await bubbles(page);
  const asked = await page.evaluate(() => new Promise((resolve) => {
    const orig = window.fetch;
    window.fetch = (url, opts) => {
      if (String(url).includes("/v1/chat/completions")) resolve(JSON.parse(opts.body).messages.at(-1).role);
      return orig(url, opts);
    };
    document.getElementById("chat-regen").click();
  }));
  assert.equal(asked, "user", "Regenerate asked with the old answer in the history");
  await idle(page);
  assert.deepEqual(await bubbles(page), before, "Regenerate changed the turns");

  // Stop: the answer is held back by the test; Stop ends it, and the chat
  // takes the next message.
  await page.route("**/v1/chat/completions", async (route) => {
    await new Promise((r) => setTimeout(r, 3000));
    await route.continue().catch(() => {});
  });
  await page.fill("#chat-input", "Wait for it.");
  await page.press("#chat-input", "Enter");
  await page.waitForSelector("#chat-stop:not([disabled])");
  await page.click("#chat-stop");
  await idle(page);
  await page.unroute("**/v1/chat/completions");
  assert.deepEqual(await bubbles(page), before, "Stop before any token left a turn");
  assert.equal(await page.inputValue("#chat-input"), "Wait for it.", "Stop before any token lost the message");
  assert.equal(await page.isHidden("#error"), true, "Stop is not an error");

  // A failed turn: Max tokens beyond the context. No empty answer stays,
  // the message is back in the box, and the next success clears the error.
  const n = (await bubbles(page)).length;
  await page.fill("#chat-max", String(m.context + 100));
  await page.fill("#chat-input", "This one fails.");
  await page.press("#chat-input", "Enter");
  await page.waitForSelector("#error:not([hidden])");
  out.error = await page.textContent("#error");
  assert.match(out.error, /max_tokens/);
  await idle(page);
  assert.equal((await bubbles(page)).length, n, "a failed turn stayed in the history");
  assert.equal(await page.inputValue("#chat-input"), "This one fails.");
  await page.fill("#chat-max", String(m.max_tokens));
  await page.press("#chat-input", "Enter");
  await page.waitForFunction(() => document.getElementById("error").hidden);
  await idle(page);
  assert.deepEqual((await bubbles(page)).slice(-2), ["user", "assistant"]);

  // The Markdown renderer: what it makes of ordinary Markdown...
  const md = await page.evaluate(() => {
    const box = document.createElement("div");
    box.append(renderMarkdown("Some **bold**, *italic* and `code`.\n\n- one\n- two\n\n1. first\n\n```\nx = 1 < 2\n```\n[golem](https://example.com/a?b=1)"));
    return [...box.querySelectorAll("*")].map((e) => e.tagName + (e.href ? " " + e.href : ""));
  });
  assert.deepEqual(md, ["P", "STRONG", "EM", "CODE", "UL", "LI", "LI", "OL", "LI", "PRE", "CODE", "P", "A https://example.com/a?b=1"]);
  // ... and of hostile input, put in the page and given time to run.
  const hostile = await page.evaluate(async () => {
    const inputs = [
      "<script>window.pwned = 1</script>",
      "<img src=x onerror=\"window.pwned = 2\">",
      "**<svg onload=window.pwned=3>**",
      "[click](javascript:window.pwned=4) [x](JAVASCRIPT:alert(1)) [y](data:text/html,<script>alert(1)</script>) [z](vbscript:x)",
      "[ok](https://example.com\" onmouseover=\"window.pwned=5)",
      "`<iframe src=javascript:window.pwned=6>`",
      "- <a href=javascript:window.pwned=7>a</a>\n- *<b onclick=window.pwned=8>b</b>*",
      "```\n</code></pre><script>window.pwned=9</script>\n```",
      "<style>body{display:none}</style><form action=x><input autofocus onfocus=window.pwned=10></form>",
    ];
    const box = document.createElement("div");
    document.body.append(box);
    for (const s of inputs) box.append(renderMarkdown(s));
    await new Promise((r) => setTimeout(r, 500));
    for (const a of box.querySelectorAll("a")) a.dispatchEvent(new MouseEvent("mouseover"));
    const els = [...box.querySelectorAll("*")];
    const result = {
      pwned: window.pwned,
      tags: [...new Set(els.map((e) => e.tagName))].filter((t) => !MD_TAGS.includes(t)),
      attrs: els.flatMap((e) => [...e.attributes].map((a) => a.name)).filter((n) => !["href", "rel", "target"].includes(n)),
      hrefs: [...box.querySelectorAll("a")].map((a) => a.href),
      text: box.textContent,
    };
    box.remove();
    return result;
  });
  assert.equal(hostile.pwned, undefined, "hostile Markdown ran a script");
  assert.deepEqual(hostile.tags, [], "elements the renderer does not make");
  assert.deepEqual(hostile.attrs, [], "attributes the renderer does not set");
  assert.ok(hostile.hrefs.every((h) => /^https?:/.test(h)), `links: ${hostile.hrefs}`);
  assert.match(hostile.text, /<script>window.pwned = 1<\/script>/, "markup is shown as text");
  out.hostileLinks = hostile.hrefs;
  return out;
});
