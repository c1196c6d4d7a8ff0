// Pictures from words through golem's web app in headless Chromium:
//   node imagegen.mjs BASE_URL ADMIN ADMIN_PASSWORD ZIP_OUT
// The admin pastes a prompt to import, takes it in the Generate view
// ("Next imported prompt"), asks for images of a prompt too long for the
// model (the app shows the server's error) and then for 3 of the imported
// one, which are shown; compares the pairs of
// them by keys (B is better, then a tie, then a skip) until none is left;
// and downloads the image preferences zip from the Admin view to ZIP_OUT.
// It prints the images shown (their URLs) and the pair judged. Every view
// passes axe-core's WCAG 2 AA rules.
import assert from "node:assert/strict";
import { checkA11y, shot, withApp } from "./app.mjs";

const [base, admin, adminPassword, zipOut] = process.argv.slice(2);

await withApp(base, admin, adminPassword, async (page) => {
  const out = { a11y: {} };
  await page.waitForSelector("#nav-admin:not([hidden])");
  await page.click("#nav-admin");
  await page.fill("#import-text", '{"prompt": "a red circle"}\n');
  await page.click("#import-submit");
  await page.waitForFunction(() => /Imported 1 prompts/.test(document.getElementById("import-status").textContent));

  // Generate: the imported prompt, too many images, then 3.
  await page.click('#nav button[data-view="generate"]');
  await page.waitForSelector("#gen-model option", { state: "attached" });
  assert.deepEqual(await page.$$eval("#gen-model option", (os) => os.map((o) => o.value)), ["tiny-t2i"], "only the text-to-image model draws");
  await page.click("#gen-next");
  await page.waitForFunction(() => document.getElementById("gen-prompt").value === "a red circle");
  await page.fill("#gen-prompt", "a red circle and a blue square ".repeat(8));
  await page.click("#gen-submit");
  await page.waitForSelector("#error:not([hidden])");
  assert.match(await page.textContent("#error"), /prompt.*longer than the model's text context/);
  await page.click("#gen-next");
  await page.waitForFunction(() => document.getElementById("gen-prompt").value === "a red circle");
  await page.fill("#gen-n", "3");
  await page.click("#gen-submit");
  await page.waitForFunction(() => /Drew 3 images/.test(document.getElementById("gen-status").textContent));
  await page.waitForFunction(() => [...document.querySelectorAll("#gen-images img")].every((i) => i.complete && i.naturalWidth === 16) &&
    document.querySelectorAll("#gen-images img").length === 3);
  out.shown = await page.$$eval("#gen-images img", (is) => is.map((i) => i.getAttribute("src")));
  out.a11y.generate = await checkA11y(page, "generate");
  await shot(page, "imagegen-generate");

  // Compare: B, then a tie, then a skip, by keys; then nothing is left.
  await page.click('#nav button[data-view="imgcompare"]');
  const pair = async () => {
    await page.waitForSelector("#icmp-a:not([disabled])");
    await page.waitForFunction(() => [...document.querySelectorAll("#icmp-images img")].every((i) => i.complete && i.naturalWidth === 16));
    return page.$$eval("#icmp-images figure", (fs) => fs.map((f) => ({ id: Number(f.dataset.generation), src: f.querySelector("img").getAttribute("src") })));
  };
  out.judged = await pair();
  assert.match(await page.textContent("#icmp-prompt"), /a red circle/);
  out.a11y.imgcompare = await checkA11y(page, "compare images");
  await shot(page, "imagegen-compare");
  await page.keyboard.press("b");
  await page.waitForFunction(() => /Saved image comparison \d+/.test(document.getElementById("icmp-status").textContent));
  await pair();
  await page.keyboard.press("t");
  await page.waitForFunction(() => /Saved image comparison \d+/.test(document.getElementById("icmp-status").textContent) &&
    !document.getElementById("icmp-a").disabled);
  await pair();
  await page.keyboard.press("s");
  await page.waitForFunction(() => /No pair of images left/.test(document.getElementById("icmp-prompt").textContent) &&
    /Skipped image pair/.test(document.getElementById("icmp-status").textContent));
  assert.match(await page.textContent("#progress"), /1 skipped · 1 prompts · 2 image pairs compared, 0 left$/);

  // The admin's download: the zip of the image preferences.
  await page.click("#nav-admin");
  await page.waitForSelector("#users tbody tr");
  out.a11y.admin = await checkA11y(page, "admin");
  const [download] = await Promise.all([page.waitForEvent("download"), page.click('a[href="/app/api/admin/export?kind=image_preferences&format=zip"]')]);
  await download.saveAs(zipOut);
  return out;
});
