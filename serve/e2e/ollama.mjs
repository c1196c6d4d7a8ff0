// Drives `golem serve` with the official ollama package: node ollama.mjs BASE_URL MODEL
import assert from "node:assert/strict";
import { Ollama } from "ollama";

const [host, model, dims] = process.argv.slice(2);
const ollama = new Ollama({ host });

// Models load on their first request: none is running yet.
assert.equal((await ollama.ps()).models.length, 0, "nothing loaded before a request");
const show = await ollama.show({ model: model + ":latest" });
assert.match(show.parameters, /^num_ctx +\d+$/m);
assert.match(show.parameters, /^stop +"<\|im_end\|>"$/m);
assert.match(show.modelfile, /^FROM .+$/m);
assert.match(show.modelfile, /^PARAMETER num_ctx \d+$/m);
assert.equal(show.details.family, "llama");

// Names are name:tag, with a digest of the weights, in list and ps; ps
// lists the loaded model until its keep-alive (5 minutes) runs out.
const tags = await ollama.list();
const listed = tags.models.find((m) => m.name === model + ":latest");
assert.ok(listed, "list has " + model + ":latest: " + JSON.stringify(tags));
assert.match(listed.digest, /^[0-9a-f]{64}$/);
const ps = await ollama.ps();
const running = ps.models.find((m) => m.model === model + ":latest");
assert.ok(running && running.digest === listed.digest && running.size > 0, "ps: " + JSON.stringify(ps));
const left = new Date(running.expires_at) - Date.now();
assert.ok(left > 4 * 60e3 && left <= 5 * 60e3 + 1e3, "expires in 5 minutes: " + running.expires_at);

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
// num_predict past the context is clamped, as Ollama does.
const long = await ollama.generate({ model: model + ":latest", prompt: "Once upon a time", options: { num_predict: 1e6, temperature: 0 }, keep_alive: "5m" });
assert.equal(long.done, true);
const ctx = Number(show.parameters.match(/^num_ctx +(\d+)$/m)[1]);
assert.ok(long.prompt_eval_count + long.eval_count <= ctx, "within the context");
if (long.done_reason === "length") assert.equal(long.prompt_eval_count + long.eval_count, ctx);

// Strict: what golem does not do is a 400 naming the field.
await assert.rejects(ollama.chat({ model, messages, think: true }), (e) => e.status_code === 400 && /^"think" is not supported yet/.test(e.error));
await assert.rejects(ollama.chat({ model, messages, options: { repeat_penalty: 1.3 } }), (e) => e.status_code === 400 && /"options.repeat_penalty" 1.3/.test(e.error) && /--lenient/.test(e.error));
await assert.rejects(ollama.pull({ model: "llama3.2" }), (e) => e.status_code === 501 && /--model DIR/.test(e.error));

// Embeddings: one per input, of the model's width, normalised.
const emb = await ollama.embed({ model, input: ["Why is the sky blue?", "Why is grass green?"] });
assert.equal(emb.embeddings.length, 2);
for (const v of emb.embeddings) {
  assert.equal(v.length, Number(dims));
  assert.ok(Math.abs(Math.hypot(...v) - 1) < 1e-5);
}
const one = await ollama.embed({ model, input: "Why is the sky blue?" });
assert.deepEqual(one.embeddings[0], emb.embeddings[0]);

// keep_alive 0 unloads the model once answered; ps no longer lists it.
await ollama.generate({ model, prompt: "Hi", options: { num_predict: 2 }, keep_alive: 0 });
let gone = false;
for (let i = 0; i < 100 && !gone; i++) {
  gone = !(await ollama.ps()).models.some((m) => m.model === model + ":latest");
  if (!gone) await new Promise((r) => setTimeout(r, 20));
}
assert.ok(gone, "keep_alive 0 unloaded the model");

console.log(JSON.stringify({ ok: true, streamed: text, parts, embedding: emb.embeddings[0] }));
