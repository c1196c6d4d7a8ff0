// Sends an image to `golem serve` with the official openai and ollama
// packages: node vision.mjs BASE_URL VLM_MODEL TEXT_MODEL PNG_FILE [CLIP_MODEL]
// The vision-language model answers (streamed and not; the streamed
// deltas add up to the greedy answer); the text-only model refuses the
// image with a 400 naming the field, as each client's typed error.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import OpenAI from "openai";
import { Ollama } from "ollama";

const [base, vlm, textModel, pngFile, clipModel] = process.argv.slice(2);
const png = readFileSync(pngFile);
const url = "data:image/png;base64," + png.toString("base64");
const out = {};

// OpenAI: an image_url content part before the question.
const client = new OpenAI({ baseURL: base + "/v1", apiKey: "unused", maxRetries: 0 });
const messages = [{ role: "user", content: [
  { type: "image_url", image_url: { url, detail: "auto" } },
  { type: "text", text: "What colour is the circle?" },
] }];
const whole = await client.chat.completions.create({ model: vlm, messages, max_tokens: 8, temperature: 0 });
assert.equal(whole.object, "chat.completion");
assert.equal(typeof whole.choices[0].message.content, "string");
assert.ok(["stop", "length"].includes(whole.choices[0].finish_reason));
assert.ok(whole.usage.prompt_tokens > 4, "the image's tokens are counted: " + JSON.stringify(whole.usage));
let text = "", usage = null;
for await (const chunk of await client.chat.completions.create({ model: vlm, messages, max_tokens: 8, temperature: 0, stream: true, stream_options: { include_usage: true } })) {
  if (chunk.usage) usage = chunk.usage;
  for (const c of chunk.choices) text += c.delta?.content ?? "";
}
assert.equal(text, whole.choices[0].message.content, "streamed == whole");
assert.equal(usage.prompt_tokens, whole.usage.prompt_tokens);
out.openai = whole.choices[0].message.content;

// OpenAI's errors: a URL to fetch, and an image for a text-only model.
await assert.rejects(client.chat.completions.create({ model: vlm, messages: [{ role: "user", content: [{ type: "image_url", image_url: { url: "https://example.com/a.png" } }] }] }),
  (e) => e instanceof OpenAI.BadRequestError && e.param === "messages[0].content[0].image_url" && /golem fetches nothing/.test(e.message));
await assert.rejects(client.chat.completions.create({ model: textModel, messages }),
  (e) => e instanceof OpenAI.BadRequestError && e.param === "messages[0].content[0].image_url" && /text-only model/.test(e.message));

// Ollama: images on a message (the client base64-encodes the bytes), and
// on /api/generate.
const ollama = new Ollama({ host: base });
assert.deepEqual((await ollama.show({ model: vlm })).capabilities, ["completion", "vision"]);
assert.deepEqual((await ollama.show({ model: textModel })).capabilities, ["completion"]);
const omsgs = [{ role: "user", content: "What colour is the circle?", images: [png] }];
const options = { temperature: 0, num_predict: 8 };
const chat = await ollama.chat({ model: vlm, messages: omsgs, options, stream: false });
assert.equal(chat.done, true);
assert.equal(chat.message.role, "assistant");
assert.equal(chat.message.content, out.openai, "the same conversation as OpenAI's, the same greedy answer");
let otext = "";
for await (const part of await ollama.chat({ model: vlm, messages: omsgs, options, stream: true })) otext += part.message.content;
assert.equal(otext, chat.message.content, "streamed == whole");
const gen = await ollama.generate({ model: vlm, prompt: "What colour is the circle?", images: [png], options, stream: false });
assert.equal(gen.response, chat.message.content, "generate asks as chat does");
out.ollama = chat.message.content;
await assert.rejects(ollama.chat({ model: textModel, messages: omsgs, stream: false }),
  (e) => e.name === "ResponseError" && e.status_code === 400 && /^messages\[0\]\.images\[0\]: .*text-only model/.test(e.error));

// A CLIP model's text and image embeddings through both clients (the
// openai client asks for base64 and decodes it).
if (clipModel) {
  const emb = await client.embeddings.create({ model: clipModel, input: ["a red circle", { type: "image_url", image_url: { url } }] });
  assert.equal(emb.data.length, 2);
  const oemb = await ollama.embed({ model: clipModel, input: "a red circle", images: [png.toString("base64")] });
  assert.equal(oemb.embeddings.length, 2);
  out.clip = { openai: emb.data.map((d) => Array.from(d.embedding)), ollama: oemb.embeddings };
}

console.log(JSON.stringify({ ok: true, ...out }));
