#!/usr/bin/env bash
# Installs what golem serve's end-to-end tests need on a fresh Debian
# machine: Node.js and npm (for the official openai and ollama client
# packages), Debian's chromium (driven headless by playwright-core), and the
# npm packages pinned in serve/e2e/package-lock.json; for the GGUF tests,
# llama.cpp itself as node-llama-cpp's prebuilt CPU library, pinned in
# gguf/e2e/package-lock.json; and python3-jinja2, the oracle of
# tokenizer/chattemplate's tests (transformers' Jinja); and sentencepiece
# (spm_train, spm_encode, spm_decode), the oracle of tokenizer's
# SentencePiece tests; and dataset-fashion-mnist (its 60,000 training
# images, which docs/vision.md's commands read). Idempotent.
#
#   bash .ci/e2e-deps.sh && go test ./serve/... ./gguf/...
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
command -v node >/dev/null 2>&1 || missing+=(nodejs)
command -v npm >/dev/null 2>&1 || missing+=(npm)
[ -x /usr/bin/chromium ] || missing+=(chromium)
python3 -c 'import jinja2' >/dev/null 2>&1 || missing+=(python3-jinja2)
command -v spm_encode >/dev/null 2>&1 || missing+=(sentencepiece)
[ -f /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz ] || missing+=(dataset-fashion-mnist)
if [ ${#missing[@]} -gt 0 ]; then
	if [ "$(id -u)" != 0 ]; then
		echo "e2e-deps.sh: missing ${missing[*]}; only root can install them" >&2
		exit 1
	fi
	echo "e2e-deps.sh: installing ${missing[*]}" >&2
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq >&2
	apt-get install -y -qq "${missing[@]}" >&2
fi

# The npm packages, exactly as locked; playwright-core must not download a
# browser of its own (Debian's chromium is used).
export PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1
(cd serve/e2e && npm ci --no-audit --no-fund --loglevel=error >&2)
# node-llama-cpp ships llama.cpp prebuilt; it must neither download nor
# build one (no install scripts; the tests call getLlama with build "never").
(cd gguf/e2e && NODE_LLAMA_CPP_SKIP_DOWNLOAD=true npm ci --ignore-scripts --no-audit --no-fund --loglevel=error >&2)
echo "e2e-deps.sh: node $(node --version), $(/usr/bin/chromium --version 2>/dev/null | grep -m1 Chromium), npm packages in serve/e2e/node_modules and gguf/e2e/node_modules" >&2
