// A tool call round trip with the official openai and ollama packages and
// tool_choice "auto": node toolcall.mjs BASE_URL MODEL TOOLS_JSON QUESTION...
// For each question the served model decides to call the calculator (no
// constraint: "auto"), the client parses the call, this script runs it and
// sends the result back as a tool message, and the model answers. The
// first question goes through the openai client whole, the second through
// its stream helper, the third through the ollama client. It prints one
// JSON line: each round trip's call, result and answer, which the Go test
// checks against the questions (the arguments and the answer's number).
import assert from "node:assert/strict";
import OpenAI from "openai";
import { Ollama } from "ollama";

const [base, model, toolsJSON, ...questions] = process.argv.slice(2);
const tools = JSON.parse(toolsJSON);
const client = new OpenAI({ baseURL: base + "/v1", apiKey: "unused", maxRetries: 0 });
const ollama = new Ollama({ host: base });
// The client's side of the tool: plain arithmetic only.
const calculator = (e) => {
  assert.match(e, /^[\d\s+\-*/().]+$/, "the expression is arithmetic: " + e);
  return String(Function("return (" + e + ")")());
};
const trips = [];

// openai, whole and streamed: tool_choice "auto".
for (const [i, stream] of [[0, false], [1, true]]) {
  const ask = [{ role: "user", content: questions[i] }];
  const req = { model, messages: ask, tools, tool_choice: "auto", temperature: 0, max_tokens: 64 };
  const first = stream ? await client.chat.completions.stream(req).finalChatCompletion() : await client.chat.completions.create(req);
  const msg = first.choices[0].message;
  assert.equal(first.choices[0].finish_reason, "tool_calls", "the model calls a tool: " + JSON.stringify(msg));
  assert.equal(msg.tool_calls.length, 1);
  const call = msg.tool_calls[0];
  assert.equal(call.type, "function");
  assert.equal(call.function.name, "calculator");
  const args = JSON.parse(call.function.arguments);
  const result = calculator(args.expression);
  const done = await client.chat.completions.create({ model, tools, tool_choice: "auto", temperature: 0, max_tokens: 64,
    messages: [...ask, msg, { role: "tool", tool_call_id: call.id, content: result }] });
  assert.equal(done.choices[0].finish_reason, "stop");
  trips.push({ client: stream ? "openai-stream" : "openai", question: questions[i], expression: args.expression, result, answer: done.choices[0].message.content });
}

// ollama: tools, no tool_choice (Ollama's is always "auto").
{
  const ask = [{ role: "user", content: questions[2] }];
  const first = await ollama.chat({ model, messages: ask, tools, stream: false, options: { temperature: 0, num_predict: 64 } });
  const calls = first.message.tool_calls ?? [];
  assert.equal(calls.length, 1, "the model calls a tool: " + JSON.stringify(first.message));
  assert.equal(calls[0].function.name, "calculator");
  const result = calculator(calls[0].function.arguments.expression);
  const done = await ollama.chat({ model, tools, stream: false, options: { temperature: 0, num_predict: 64 },
    messages: [...ask, first.message, { role: "tool", content: result, tool_name: "calculator" }] });
  assert.equal(done.done, true);
  trips.push({ client: "ollama", question: questions[2], expression: calls[0].function.arguments.expression, result, answer: done.message.content });
}

console.log(JSON.stringify({ ok: true, trips }));
