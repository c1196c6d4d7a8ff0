// llama.cpp's side of golem's `go run ./bench llamacpp`:
//   node bench.mjs FILE.gguf THREADS PP TG PAR PAR_TG
// loads the file on THREADS CPU threads (node-llama-cpp's prebuilt CPU
// library: never built, nothing downloaded) and times, after a warm-up:
// prompt processing of PP tokens in one batch; decoding TG tokens one at a
// time (batch 1, greedy); and PAR sequences decoding PAR_TG tokens each at
// once (node-llama-cpp batches the sequences' steps into one llama_decode),
// their prompts (16 tokens each) evaluated first and not timed. The token
// ids are fixed, so golem runs the same ones. Prints one JSON line:
//   {"pp_tokens_per_s": ..., "tg_tokens_per_s": ..., "par_tokens_per_s": ...,
//    "pp_cpu_s": ..., "tg_cpu_s": ..., "par_cpu_s": ...}
// where *_cpu_s is the process's user+system CPU seconds in each phase
// (process.cpuUsage: every thread's, node's own included).
import { getLlama, LlamaLogLevel } from "node-llama-cpp";

const [file, threadsArg, ppArg, tgArg, parArg, parTgArg] = process.argv.slice(2);
if (!parTgArg) {
  console.error("usage: node bench.mjs FILE.gguf THREADS PP TG PAR PAR_TG");
  process.exit(2);
}
const [threads, pp, tg, par, parTg] = [threadsArg, ppArg, tgArg, parArg, parTgArg].map(Number);
// The ids golem's bench uses too (benchTokens in bench/llamacpp.go).
const tokens = (n, seed) => Array.from({ length: n }, (_, i) => 1000 + ((i + seed) * 7919) % 30000);

const llama = await getLlama({
  gpu: false, build: "never", skipDownload: true, usePrebuiltBinaries: true,
  maxThreads: threads, logLevel: LlamaLogLevel.error, progressLogs: false,
});
const model = await llama.loadModel({ modelPath: file, gpuLayers: 0 });
const now = () => performance.now() / 1000;
const cpu = () => { const u = process.cpuUsage(); return (u.user + u.system) / 1e6; };

// Prompt processing and batch-1 decoding.
let context = await model.createContext({ contextSize: pp + tg + 32, batchSize: pp, threads, sequences: 1 });
let seq = context.getSequence();
await seq.evaluateWithoutGeneratingNewTokens(tokens(pp, 1)); // warm-up
await seq.clearHistory();
const prompt = tokens(pp, 0);
let t0 = now(), c0 = cpu();
await seq.evaluateWithoutGeneratingNewTokens(prompt);
const ppTime = now() - t0, ppCPU = cpu() - c0;
t0 = now(); c0 = cpu();
let n = 0;
for await (const _ of seq.evaluate([prompt[pp - 1]], { temperature: 0 })) {
  if (++n >= tg) break;
}
const tgTime = now() - t0, tgCPU = cpu() - c0;
await context.dispose();

// PAR sequences at once.
context = await model.createContext({ contextSize: par * (16 + parTg + 16), batchSize: 512, threads, sequences: par });
const seqs = Array.from({ length: par }, () => context.getSequence());
await Promise.all(seqs.map((s, i) => s.evaluateWithoutGeneratingNewTokens(tokens(16, 100 + i))));
t0 = now(); c0 = cpu();
await Promise.all(seqs.map(async (s, i) => {
  let k = 0;
  for await (const _ of s.evaluate([tokens(16, 100 + i)[15]], { temperature: 0 })) {
    if (++k >= parTg) break;
  }
}));
const parTime = now() - t0, parCPU = cpu() - c0;
await context.dispose();
await model.dispose();
await llama.dispose();
console.log(JSON.stringify({
  pp_tokens_per_s: pp / ppTime, tg_tokens_per_s: tg / tgTime, par_tokens_per_s: par * parTg / parTime,
  pp_cpu_s: ppCPU, tg_cpu_s: tgCPU, par_cpu_s: parCPU,
}));
