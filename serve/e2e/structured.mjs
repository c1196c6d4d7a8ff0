// Structured output and tool calls with the official openai and ollama
// packages: node structured.mjs BASE_URL MODEL SCHEMA_JSON
// It prints the answers as one JSON line; the Go test validates them
// against the schema with its own validator.
import assert from "node:assert/strict";
import OpenAI from "openai";
import { Ollama } from "ollama";

const [base, model, schemaText] = process.argv.slice(2);
const schema = JSON.parse(schemaText);
const client = new OpenAI({ baseURL: base + "/v1", apiKey: "unused", maxRetries: 0 });
const ollama = new Ollama({ host: base });
const user = [{ role: "user", content: "Describe a person as JSON." }];
const answers = [];

// json_schema (strict), whole and streamed; a random model answers.
const rf = { type: "json_schema", json_schema: { name: "person", strict: true, schema } };
const whole = await client.chat.completions.create({ model, messages: user, n: 3, temperature: 1, seed: 11, max_tokens: 400, response_format: rf });
for (const c of whole.choices) {
  assert.equal(c.finish_reason, "stop", "a whole answer: " + JSON.stringify(c));
  answers.push(c.message.content);
}
let streamed = "";
for await (const chunk of await client.chat.completions.create({ model, messages: user, temperature: 1, seed: 12, max_tokens: 400, response_format: rf, stream: true })) {
  streamed += chunk.choices[0]?.delta?.content ?? "";
}
answers.push(streamed);
// The client's own parse helper reads the answer as JSON.
const parsed = await client.chat.completions.parse({ model, messages: user, temperature: 1, seed: 13, max_tokens: 400, response_format: rf });
assert.equal(typeof parsed.choices[0].message.parsed, "object");
answers.push(parsed.choices[0].message.content);
// json_object: any object.
const obj = await client.chat.completions.create({ model, messages: user, temperature: 0, max_tokens: 400, response_format: { type: "json_object" } });
if (obj.choices[0].finish_reason === "stop") assert.equal(typeof JSON.parse(obj.choices[0].message.content), "object");

// Ollama's format: a schema, and "json".
for (const stream of [false, true]) {
  let text = "";
  if (stream) {
    for await (const part of await ollama.chat({ model, messages: user, format: schema, stream, options: { temperature: 1, seed: 14, num_predict: 400 } })) text += part.message.content;
  } else {
    text = (await ollama.chat({ model, messages: user, format: schema, stream, options: { temperature: 1, seed: 15, num_predict: 400 } })).message.content;
  }
  answers.push(text);
}
const gen = await ollama.generate({ model, prompt: "A person:", format: schema, stream: false, options: { temperature: 1, seed: 16, num_predict: 400 } });
answers.push(gen.response);

// A tool call round trip: the call is forced (tool_choice names the
// function), parsed by the client, run here, its result sent back as a
// tool message, and the model answers.
const tools = [{ type: "function", function: { name: "calculator", description: "Evaluates arithmetic.",
  parameters: { type: "object", properties: { expression: { type: "string", maxLength: 24 } }, required: ["expression"], additionalProperties: false } } }];
const ask = [{ role: "user", content: "What is 6*7?" }];
const called = await client.chat.completions.create({ model, messages: ask, tools, tool_choice: { type: "function", function: { name: "calculator" } }, temperature: 1, seed: 5, max_tokens: 200 });
const msg = called.choices[0].message;
assert.equal(called.choices[0].finish_reason, "tool_calls");
assert.equal(msg.tool_calls.length, 1);
const call = msg.tool_calls[0];
assert.equal(call.type, "function");
assert.equal(call.function.name, "calculator");
const args = JSON.parse(call.function.arguments);
assert.equal(typeof args.expression, "string");
const calc = (e) => /^[\d\s+\-*/().]+$/.test(e) ? String(Function("return (" + e + ")")()) : "error: not arithmetic";
const result = calc(args.expression);
const answer = await client.chat.completions.create({ model, tools, max_tokens: 20, temperature: 0,
  messages: [...ask, msg, { role: "tool", tool_call_id: call.id, content: result }] });
assert.equal(typeof answer.choices[0].message.content, "string");

// Streamed, the client's stream helper assembles the call from its deltas.
const runner = client.chat.completions.stream({ model, messages: ask, tools, tool_choice: "required", temperature: 1, seed: 6, max_tokens: 200 });
const final = await runner.finalChatCompletion();
assert.equal(final.choices[0].finish_reason, "tool_calls");
const scall = final.choices[0].message.tool_calls[0];
assert.equal(scall.function.name, "calculator");
assert.equal(typeof JSON.parse(scall.function.arguments).expression, "string");

// Ollama: tools, the assistant's call and the tool's result in the
// conversation.
const oll = await ollama.chat({ model, tools, stream: false, options: { num_predict: 8 }, messages: [...ask,
  { role: "assistant", content: "", tool_calls: [{ function: { name: "calculator", arguments: args } }] }, { role: "tool", content: result, tool_name: "calculator" }] });
assert.equal(oll.done, true);

// A named function that is not offered is a 400 naming the field.
await assert.rejects(client.chat.completions.create({ model, messages: ask, tools, tool_choice: { type: "function", function: { name: "rm" } } }),
  (e) => e instanceof OpenAI.BadRequestError && e.param === "tool_choice.function.name");

console.log(JSON.stringify({ ok: true, answers, call: { name: call.function.name, arguments: call.function.arguments, result }, final: answer.choices[0].message.content }));
