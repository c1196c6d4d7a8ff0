// Draws images through `golem serve` with the official openai package:
//   node images.mjs BASE_URL MODEL SIZE
// client.images.generate with n, size, response_format b64_json and
// golem's seed; n past 64 and a url are BadRequestErrors naming the param.
// Prints the images' base64 PNGs as JSON for the Go test to decode.
import assert from "node:assert/strict";
import OpenAI from "openai";

const [base, model, size] = process.argv.slice(2);
const client = new OpenAI({ baseURL: base + "/v1", apiKey: process.env.GOLEM_API_KEY || "unused", maxRetries: 0 });

const res = await client.images.generate({ model, prompt: "a red circle", n: 2, size, response_format: "b64_json", seed: 5 });
assert.equal(typeof res.created, "number");
assert.equal(res.data.length, 2);
for (const d of res.data) assert.equal(typeof d.b64_json, "string");

await assert.rejects(client.images.generate({ model, prompt: "a red circle", n: 65 }),
  (e) => e instanceof OpenAI.BadRequestError && e.param === "n" && /want 1 to 64/.test(e.message));
await assert.rejects(client.images.generate({ model, prompt: "a red circle", response_format: "url" }),
  (e) => e instanceof OpenAI.BadRequestError && e.param === "response_format");
await assert.rejects(client.images.generate({ model, prompt: "a red circle", size: "1024x1024" }),
  (e) => e instanceof OpenAI.BadRequestError && e.param === "size");

console.log(JSON.stringify({ ok: true, images: res.data.map((d) => d.b64_json) }));
