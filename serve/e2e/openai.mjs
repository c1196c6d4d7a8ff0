// Drives `golem serve` with the official openai package: node openai.mjs BASE_URL MODEL
import assert from "node:assert/strict";
import OpenAI from "openai";

const [base, model, dims] = process.argv.slice(2);
const client = new OpenAI({ baseURL: base + "/v1", apiKey: process.env.GOLEM_API_KEY || "unused", maxRetries: 0 });

const models = await client.models.list();
assert.ok(models.data.some((m) => m.id === model), "models.list has " + model);

const msgs = [{ role: "system", content: "You are terse." }, { role: "user", content: "Say hello." }];
const whole = await client.chat.completions.create({ model, messages: msgs, max_tokens: 16, temperature: 0.7, seed: 7, n: 2 });
assert.equal(whole.object, "chat.completion");
assert.equal(whole.choices.length, 2);
assert.equal(whole.choices[0].message.role, "assistant");
assert.equal(typeof whole.choices[0].message.content, "string");
assert.ok(["stop", "length"].includes(whole.choices[0].finish_reason));
assert.ok(whole.usage.prompt_tokens > 0 && whole.usage.completion_tokens > 0);
assert.equal(whole.usage.total_tokens, whole.usage.prompt_tokens + whole.usage.completion_tokens);

// Streaming, greedy: the deltas add up to the non-streamed greedy answer.
const greedy = await client.chat.completions.create({ model, messages: msgs, max_tokens: 12, temperature: 0 });
const stream = await client.chat.completions.create({ model, messages: msgs, max_tokens: 12, temperature: 0, stream: true, stream_options: { include_usage: true } });
let text = "", chunks = 0, usage = null, finish = null;
for await (const chunk of stream) {
  chunks++;
  if (chunk.usage) usage = chunk.usage;
  for (const c of chunk.choices) {
    text += c.delta?.content ?? "";
    if (c.finish_reason) finish = c.finish_reason;
  }
}
assert.ok(chunks >= 2, "several chunks");
assert.equal(text, greedy.choices[0].message.content);
assert.equal(finish, greedy.choices[0].finish_reason);
assert.equal(usage.completion_tokens, greedy.usage.completion_tokens);

// Legacy completions, streamed and not, with a stop string.
const comp = await client.completions.create({ model, prompt: "Once upon a time", max_tokens: 8, temperature: 0 });
assert.equal(comp.object, "text_completion");
let ctext = "";
for await (const chunk of await client.completions.create({ model, prompt: "Once upon a time", max_tokens: 8, temperature: 0, stream: true })) {
  ctext += chunk.choices[0]?.text ?? "";
}
assert.equal(ctext, comp.choices[0].text);

// Errors arrive as the client's typed errors.
await assert.rejects(client.chat.completions.create({ model: "no-such-model", messages: msgs }), (e) => e instanceof OpenAI.NotFoundError && e.status === 404);
await assert.rejects(client.chat.completions.create({ model, messages: msgs, temperature: 9 }), (e) => e instanceof OpenAI.BadRequestError && /temperature/.test(e.message));
await assert.rejects(client.chat.completions.create({ model, messages: msgs, max_tokens: 1e6 }), (e) => e.status === 400 && e.code === "context_length_exceeded");

// Strict: a field golem does not support is a 400 naming it.
await assert.rejects(client.chat.completions.create({ model, messages: msgs, functions: [{ name: "f", parameters: { type: "object" } }] }),
  (e) => e instanceof OpenAI.BadRequestError && e.param === "functions" && /^"functions" is not supported yet/.test(e.error.message));
await assert.rejects(client.chat.completions.create({ model, messages: msgs, max_tokens: 4, frequency_penalty: 0.5 }),
  (e) => e instanceof OpenAI.BadRequestError && e.param === "frequency_penalty" && /--lenient/.test(e.message));
await assert.rejects(client.chat.completions.create({ model, messages: msgs, max_tokens: 4, reasoning: { effort: "low" } }),
  (e) => e instanceof OpenAI.BadRequestError && e.param === "reasoning" && /^"reasoning": golem serve does not support this field/.test(e.error.message));
// ... while what means "off" passes.
const off = await client.chat.completions.create({ model, messages: msgs, max_tokens: 4, frequency_penalty: 0, logprobs: false, response_format: { type: "text" }, user: "e2e" });
assert.equal(off.object, "chat.completion");

// Log-probabilities of a sampled answer, whole and streamed (same seed: the
// same tokens and values); the Go test checks them against golem's own
// forward pass over the prompt and the answer.
const lpReq = { model, messages: msgs, max_tokens: 6, temperature: 0.9, seed: 3, logprobs: true, top_logprobs: 3 };
const lp = await client.chat.completions.create(lpReq);
const content = lp.choices[0].logprobs.content;
assert.equal(content.length, lp.usage.completion_tokens);
for (const t of content) {
  assert.equal(typeof t.token, "string");
  assert.ok(t.logprob <= 0 && Array.isArray(t.bytes) && t.top_logprobs.length === 3, JSON.stringify(t));
  assert.ok(t.top_logprobs[0].logprob >= t.logprob, "the best alternative is at least as likely as the sampled token");
}
const streamedLP = [];
for await (const chunk of await client.chat.completions.create({ ...lpReq, stream: true })) {
  for (const c of chunk.choices) streamedLP.push(...(c.logprobs?.content ?? []));
}
assert.deepEqual(streamedLP, content);
// Completions' echo with max_tokens 0 scores the prompt, as lm-eval does.
const echo = await client.completions.create({ model, prompt: "Once upon a time", max_tokens: 0, echo: true, logprobs: 2 });
assert.equal(echo.choices[0].text, "Once upon a time");
assert.equal(echo.choices[0].logprobs.token_logprobs[0], null);

// Embeddings (the client asks for base64 and decodes it): one per input,
// of the model's width, normalised.
const emb = await client.embeddings.create({ model, input: ["The sky is blue.", "Grass is green."] });
assert.equal(emb.data.length, 2);
for (const d of emb.data) {
  assert.equal(d.embedding.length, Number(dims));
  assert.ok(Math.abs(Math.hypot(...d.embedding) - 1) < 1e-5);
}
assert.ok(emb.usage.prompt_tokens > 0);
await assert.rejects(client.embeddings.create({ model, input: "x", dimensions: 3 }), (e) => e.status === 400 && e.param === "dimensions");

console.log(JSON.stringify({ ok: true, streamed: text, chunks, logprobs: content, echo: echo.choices[0].logprobs, embedding: emb.data[0].embedding }));
