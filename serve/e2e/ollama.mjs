// Drives `golem serve` with the official ollama package: node ollama.mjs BASE_URL MODEL
import assert from "node:assert/strict";
import { Ollama } from "ollama";

const [host, model] = process.argv.slice(2);
const ollama = new Ollama({ host });

const tags = await ollama.list();
assert.ok(tags.models.some((m) => m.name === model), "list has " + model);

const messages = [{ role: "user", content: "Why is the sky blue?" }];
const options = { temperature: 0, num_predict: 10 };
const whole = await ollama.chat({ model, messages, options, stream: false });
assert.equal(whole.message.role, "assistant");
assert.equal(whole.done, true);
assert.ok(whole.eval_count > 0 && whole.prompt_eval_count > 0);

let text = "", parts = 0, last = null;
for await (const part of await ollama.chat({ model, messages, options, stream: true })) {
  parts++;
  text += part.message.content;
  last = part;
}
assert.ok(parts >= 2);
assert.equal(last.done, true);
assert.equal(text, whole.message.content);

let gen = "";
for await (const part of await ollama.generate({ model, prompt: "Once upon a time", options, stream: true })) gen += part.response;
const g = await ollama.generate({ model, prompt: "Once upon a time", options, stream: false });
assert.equal(gen, g.response);

await assert.rejects(ollama.chat({ model: "no-such-model", messages, stream: false }), (e) => e.status_code === 404 && /not found/.test(e.error));
await assert.rejects(ollama.chat({ model, messages, options: { num_predict: 1e6 }, stream: false }), (e) => e.status_code === 400);

console.log(JSON.stringify({ ok: true, streamed: text, parts }));
