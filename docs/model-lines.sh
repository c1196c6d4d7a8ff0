#!/bin/sh
# The size of the model layer (issue #13; docs/architecture.md, "Size of
# the model layer"): the lines of model/gpt, model/gpt2, model/llama,
# model/config, model/weights, kvcache, generate/*.go and serve/engine.go
# (tests left out), how many of them hold features added since the issue
# was filed (commit 87f927f, when the same code was model/gpt,
# generate/generate.go and serve/engine.go), and what the rest, the
# filing point's features, takes against what they took then, by concern.
#
# A declaration is a top-level func, type, var or const of a gofmt'd file
# with its doc comment and the blank lines after it (a file's head, its
# package clause, imports and comments before its first declaration,
# is "package": comments apart from a declaration's doc go with what
# precedes them); a file's lines are the sum of its declarations'.
# "code" counts the lines that are neither blank nor comments. A
# declaration is a new feature's (the list below, with the commits that
# added each) when it did not exist at 87f927f and serves only what was
# added since; one that mixes old and new code (Forward with activation
# checkpointing, the sampler with constraint masks, the engine's advance
# with log-probabilities, Sampler.Next, which now asks the constraint
# first) counts as the filing point's, so the filing point's figure is an
# upper bound, but for serve's readWeights, which holds the load of a
# text model's folder too (about 10 lines that were in LoadWeights) beside
# the new kinds of folders.
#
# Run from the repository root (a clone, with its history): sh docs/model-lines.sh
set -e
now=$(ls model/gpt/*.go model/gpt2/*.go model/llama/*.go model/config/*.go model/weights/*.go kvcache/*.go generate/*.go serve/engine.go | grep -v _test.go)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# decls FILE... prints "LINES CODE FILE NAME" for each declaration.
decls() {
	awk '
	function out() { if (file != "") print n - com, k, file, name; n = com; k = 0 }
	function declname(s,   t) {
		t = s
		sub(/^func \([a-z]+ \*?/, "", t); sub(/\) /, ".", t)
		sub(/^(func|type|var|const) /, "", t)
		sub(/[^A-Za-z0-9_.].*/, "", t)
		return t
	}
	FNR == 1 { com = 0; out(); file = FILENAME; name = "package"; n = 0; k = 0 }
	/^(var|const) \($/ { out(); com = 0; n++; k++; group = 1; next }
	group && /^[ \t]*\/\// { n++; next }
	group { t = $0; sub(/^[ \t]+/, "", t); sub(/[^A-Za-z0-9_].*/, "", t); name = t; n++; k++; group = 0; next }
	/^(func|type|var|const) / { out(); name = declname($0); n++; k++; com = 0; next }
	/^\/\// { com++; n++; next }
	/^[ \t]*$/ { com = 0; n++; next }
	{ com = 0; n++; if ($0 !~ /^[ \t]*\/\//) k++ }
	END { com = 0; out() }
	' "$@"
}

# The new features: "feature: FILE [DECL...]" (no DECL: the whole file).
cat >"$tmp/new" <<'EOF'
GGUF models and quantized matrices (2c76294, 70c5e25, 4707b90, 1eee73f): model/gpt/gguf.go
GGUF models and quantized matrices (2c76294, 70c5e25, 4707b90, 1eee73f): model/gpt/checkpoint.go loadModel
bfloat16 inference (99cd9b4, 9da25cf): model/gpt/bf16.go
Llama 3's RoPE scaling (150913a, d699454): model/llama/ropefreqs.go
Llama 3's RoPE scaling (150913a, d699454): model/llama/llama.go InvFreq RopeScaling
Llama 3's RoPE scaling (150913a, d699454): model/llama/config.go ropeParams
Llama 3's RoPE scaling (150913a, d699454): model/config/config.go RopeScaling RopeScaling.Validate
log-probabilities (7b81263): generate/logprobs.go
constrained decoding (c17a7f3, 261294f): generate/generate.go Constraint Blocked ErrBlocked Sampler.Constrain
soft prompts and images in generation (da1ed4a, dcbedc3, 904d3b9): generate/image.go
soft prompts and images in generation (da1ed4a, dcbedc3, 904d3b9): generate/generate.go Options.prefixes embeds
LoRA switched off for a frozen reference (4383c20): model/gpt/lora.go Model.WithoutLoRA
adapters sharing a served base (946199b): model/gpt/lora.go Model.Share
LoRA on a LLaVA model (7808618, e6fdf40): model/gpt/lora.go Model.SaveWrappedLoRA Scorer.SaveWrappedLoRA Model.loraTargetNames WrappedPattern WrappedTargets
reward and value models' LoRA adapters (bca64f0, 1cb074b): model/gpt/lora.go Scorer.SaveLoRA Scorer.saveClassifier scoreModule
reward and value models' LoRA adapters (bca64f0, 1cb074b): model/gpt/heads.go loadScorerAdapter readScorerAdapter Scorer.ApplyAdapter Scorer.apply
other models' folders (vit, clip, resnet, vqvae, dalle; 054910a, 2f0b4a2, 762a76c, 1c36bc3): model/weights/weights.go Expect CheckHeader ReadConfig ModelType FillFolder
serving LLaVA, CLIP, text-to-image and adapter folders (14a2d9e, d0c92b2, 0c7f038, 946199b): serve/engine.go readWeights Weights.backend Weights.params Weights.config dalleConfig clipConfig
image prompts and soft prompts in continuous batching (d0c92b2): serve/engine.go ImagePrompt ImagePrompt.positions prefixLen prefixGroups prefixEmbeds
prompt scoring and embeddings between decode steps (7b81263, 4c31bca): serve/engine.go job Engine.Do Engine.runJobs
EOF

# The concerns: "concern: FILES AT 87f927f | FILES NOW".
cat >"$tmp/concerns" <<'EOF'
the decoder, its layers and KV caches: model/gpt/model.go model/gpt/batch.go | model/gpt/model.go model/gpt/archs.go model/gpt2/gpt2.go model/llama/llama.go model/llama/ropefreqs.go kvcache/cache.go kvcache/growable.go kvcache/batch.go
config.json: model/gpt/config.go | model/gpt/config.go model/config/config.go model/gpt2/config.go model/llama/config.go
checkpoints (and GGUF, bf16): model/gpt/checkpoint.go | model/gpt/checkpoint.go model/weights/weights.go model/gpt/gguf.go model/gpt/bf16.go
LoRA and prompt tuning: model/gpt/lora.go | model/gpt/lora.go
reward and value heads: model/gpt/heads.go | model/gpt/heads.go
generation: generate/generate.go | generate/generate.go generate/batch.go generate/image.go generate/logprobs.go
serve's engine: serve/engine.go | serve/engine.go
EOF

decls $now >"$tmp/now"
git archive 87f927f model/gpt generate/generate.go serve/engine.go | tar -x -C "$tmp"
(cd "$tmp" && decls $(ls model/gpt/*.go generate/generate.go serve/engine.go | grep -v _test.go)) >"$tmp/then"

awk -v then="$tmp/then" -v now="$tmp/now" -v concerns="$tmp/concerns" '
function add(what, n, k) { lines[what] += n; code[what] += k }
function row(what, label) { printf "%6d %6d  %s\n", lines[what], code[what], label }
BEGIN {
	while ((getline l < then) > 0) { split(l, f, " "); add("then " f[3], f[1], f[2]); add("then", f[1], f[2]) }
	while ((getline l < now) > 0) {
		split(l, f, " "); d[f[3] " " f[4]] = f[1] " " f[2]; add("now " f[3], f[1], f[2]); add("now", f[1], f[2])
	}
	print " lines   code"
}
FILENAME != concerns {
	i = index($0, ": "); feature = substr($0, 1, i - 1); m = split(substr($0, i + 2), w, " ")
	if (!(feature in seen)) { seen[feature] = 1; features[++nf] = feature }
	if (m == 1) {
		if (!(("now " w[1]) in lines)) { print "no file " w[1] > "/dev/stderr"; exit 1 }
		add("new " w[1], lines["now " w[1]], code["now " w[1]]); add(feature, lines["now " w[1]], code["now " w[1]])
		next
	}
	for (j = 2; j <= m; j++) {
		if (!((w[1] " " w[j]) in d)) { print "no declaration " w[j] " in " w[1] > "/dev/stderr"; exit 1 }
		split(d[w[1] " " w[j]], nk, " "); add("new " w[1], nk[1], nk[2]); add(feature, nk[1], nk[2])
	}
	next
}
{
	if (!printed) {
		for (i = 1; i <= nf; i++) { row(features[i], features[i]); add("new", lines[features[i]], code[features[i]]) }
		row("new", "new features, in all")
		row("now", "the model layer now")
		add("rest", lines["now"] - lines["new"], code["now"] - code["new"])
		row("rest", "the filing point'"'"'s features now")
		row("then", "the filing point'"'"'s features at 87f927f")
		print "\nby concern, the filing point'"'"'s features at 87f927f and now:"
		printed = 1
	}
	i = index($0, ": "); concern = substr($0, 1, i - 1); split(substr($0, i + 2), sides, " [|] ")
	m = split(sides[1], a, " "); for (j = 1; j <= m; j++) add("c then " concern, lines["then " a[j]], code["then " a[j]])
	m = split(sides[2], a, " ")
	for (j = 1; j <= m; j++) add("c now " concern, lines["now " a[j]] - lines["new " a[j]], code["now " a[j]] - code["new " a[j]])
	printf "%6d %6d -> %6d %6d  %s\n", lines["c then " concern], code["c then " concern], lines["c now " concern], code["c now " concern], concern
}
' "$tmp/new" "$tmp/concerns"
