// llama.cpp itself (node-llama-cpp's prebuilt CPU library: never built,
// nothing downloaded) as the oracle for golem's GGUF files:
//   node llamacpp.mjs N ID,ID,... FILE.gguf...
// loads each file on one CPU thread, evaluates the prompt token ids and
// decodes N tokens greedily, and prints one JSON line per file:
//   {"file": "...", "architecture": "...", "metadata": {...}, "tokens": [...]}
// or {"file": "...", "error": "..."} when llama.cpp refuses the file.
// Token ids go in and come out, so llama.cpp's tokenizer plays no part.
import { getLlama, LlamaLogLevel } from "node-llama-cpp";

const [nArg, idsArg, ...files] = process.argv.slice(2);
if (!nArg || !idsArg || files.length === 0) {
  console.error("usage: node llamacpp.mjs N ID,ID,... FILE.gguf...");
  process.exit(2);
}
const n = Number(nArg);
const prompt = idsArg.split(",").map(Number);

const llama = await getLlama({
  gpu: false, build: "never", skipDownload: true, usePrebuiltBinaries: true,
  maxThreads: 1, logLevel: LlamaLogLevel.error, progressLogs: false,
});
for (const file of files) {
  let model;
  try {
    model = await llama.loadModel({ modelPath: file, gpuLayers: 0 });
  } catch (e) {
    console.log(JSON.stringify({ file, error: String(e.message ?? e) }));
    continue;
  }
  const context = await model.createContext({ contextSize: model.trainContextSize, batchSize: prompt.length, threads: 1, sequences: 1 });
  const sequence = context.getSequence();
  const tokens = [];
  for await (const t of sequence.evaluate(prompt, { temperature: 0 })) {
    tokens.push(t);
    if (tokens.length >= n) break;
  }
  const general = model.fileInfo.metadata.general ?? {};
  console.log(JSON.stringify({
    file,
    architecture: general.architecture,
    metadata: Object.fromEntries(Object.entries(general).map(([k, v]) => ["general." + k, v])),
    vocabulary: model.vocabularyType,
    context: model.trainContextSize,
    tokens,
  }));
  await context.dispose();
  await model.dispose();
}
await llama.dispose();
