package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf8"
)

// golemOut runs golem to the end and returns its stdout; a failure fails
// the test with its output.
func golemOut(t *testing.T, cache, stdin string, args ...string) string {
	t.Helper()
	cmd := golemCmd(cache, args...)
	var out, errb bytes.Buffer
	cmd.Stdin, cmd.Stdout, cmd.Stderr = strings.NewReader(stdin), &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("golem %s: %v\n%s%s", strings.Join(args, " "), err, out.String(), errb.String())
	}
	return out.String()
}

// jsonText is s as a JSON string carries it: each byte of invalid UTF-8
// (a tiny model's answer may stop inside a character) is U+FFFD.
func jsonText(s string) string {
	var b strings.Builder
	for len(s) > 0 {
		r, n := utf8.DecodeRuneInString(s)
		if r == utf8.RuneError && n == 1 {
			b.WriteRune(utf8.RuneError)
		} else {
			b.WriteString(s[:n])
		}
		s = s[n:]
	}
	return b.String()
}

// Every command that takes --model takes an adapter folder as chat did:
// a LoRA adapter gives what the model `sft --merge` wrote gives (generate,
// eval ppl, chat and serve: merged at load, bit for bit), and a
// prompt-tuning adapter's soft prompt goes before the prompt in each
// (serve's batched prefill answers as chat does). GGUF export and the
// training stages take a LoRA adapter too. Tiny models trained in
// the test by the real commands.
func TestAdapterFolders(t *testing.T) {
	f := fixtures(t)
	base := reference(t, f, stageNamed("pretrain")).out
	lora, pt := filepath.Join(f.dir, "adapter-lora"), filepath.Join(f.dir, "adapter-pt")
	sft := []string{"sft", "--model", base, "--data", "builtin", "--builtin-n", "24", "--batch", "4", "--steps", "3", "--lr", "1e-2", tiny}
	golemRun(t, f.cache, append(sft, "--lora-r", "4", "--merge", "--out", lora)...)
	golemRun(t, f.cache, append(sft, "--prompt-tuning", "4", "--out", pt)...)
	merged := filepath.Join(lora, "merged")

	gen := func(dir string) string {
		return golemOut(t, f.cache, "", "generate", "--model", dir, "--prompt", "the cat", "--max-tokens", "12", "--temperature", "0", tiny)
	}
	if g, m := gen(lora), gen(merged); g != m {
		t.Errorf("generate: the LoRA adapter gave %q, the merged model %q", g, m)
	}
	if g := gen(pt); strings.TrimSpace(g) == "" {
		t.Errorf("generate --model %s wrote nothing", pt)
	}

	ppl := func(dir string) string {
		out := golemOut(t, f.cache, "", "eval", "ppl", "--model", dir, "--data", f.corpus, tiny)
		return out[strings.LastIndex(strings.TrimSpace(out), "\n")+1:]
	}
	if a, m := ppl(lora), ppl(merged); a != m || !strings.HasPrefix(a, "loss=") {
		t.Errorf("eval ppl: the LoRA adapter gave %q, the merged model %q", a, m)
	}
	if p, b := ppl(pt), ppl(base); p == b || !strings.HasPrefix(p, "loss=") {
		t.Errorf("eval ppl: the prompt-tuning adapter gave %q, its base %q: the soft prompt was not used", p, b)
	}

	// GGUF export merges a LoRA adapter: the merged model's file.
	gguf := func(dir, name string) []byte {
		path := filepath.Join(f.dir, name+".gguf")
		golemRun(t, f.cache, "export", "--format", "gguf", "--model", dir, "--name", "tiny", "--out", path)
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	if a, m := gguf(lora, "lora"), gguf(merged, "merged"); !bytes.Equal(a, m) {
		t.Errorf("export --format gguf: the LoRA adapter's file (%d bytes) differs from the merged model's (%d bytes)", len(a), len(m))
	}
	if out, err := golemCmd(f.cache, "export", "--format", "gguf", "--model", pt, "--out", filepath.Join(f.dir, "pt.gguf")).CombinedOutput(); err == nil || !strings.Contains(string(out), "is a prompt-tuning adapter") {
		t.Errorf("export --format gguf --model %s: %v\n%s", pt, err, out)
	}

	// The training stages start from a LoRA adapter (merged) and refuse a
	// prompt-tuning one, whose soft prompt a whole model's training drops.
	golemRun(t, f.cache, "dpo", "--model", lora, "--data", f.pairs, "--batch", "2", "--steps", "1", tiny, "--out", filepath.Join(f.dir, "dpo-from-lora"))
	cmd := golemCmd(f.cache, "dpo", "--model", pt, "--data", f.pairs, "--steps", "1", tiny, "--out", filepath.Join(f.dir, "dpo-from-pt"))
	if out, err := cmd.CombinedOutput(); err == nil || !strings.Contains(string(out), pt+" is a prompt-tuning adapter") {
		t.Errorf("dpo --model %s: %v\n%s", pt, err, out)
	}

	const question = "What is the first letter of cat?"
	chat := func(dir string) string {
		out := golemOut(t, f.cache, question+"\n", "chat", "--model", dir, "--temperature", "0", "--repetition-penalty", "1", "--max-tokens", "16", tiny)
		return jsonText(strings.TrimSpace(out))
	}
	chatLoRA, chatPT := chat(lora), chat(pt)
	if m := chat(merged); chatLoRA != m {
		t.Errorf("chat: the LoRA adapter answered %q, the merged model %q", chatLoRA, m)
	}

	// serve the three folders, with a float32 cache as chat's.
	url := startServe(t, func(a ...string) *exec.Cmd { return golemCmd(f.cache, a...) }, "--model", "lora="+lora, "--model", "merged="+merged, "--model", "pt="+pt,
		"--db", "none", "--kv-cache", "f32", tiny)
	ask := func(model string) string {
		body := fmt.Sprintf(`{"model":%q,"messages":[{"role":"user","content":%q}],"temperature":0,"max_tokens":16}`, model, question)
		resp, err := http.Post(url+"/v1/chat/completions", "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var r struct {
			Choices []struct{ Message struct{ Content string } }
		}
		b, _ := bufio.NewReader(resp.Body).Peek(1 << 16)
		if err := json.Unmarshal(b, &r); resp.StatusCode != http.StatusOK || err != nil || len(r.Choices) != 1 {
			t.Fatalf("serve: %s: %s %s (%v)", model, resp.Status, b, err)
		}
		return strings.TrimSpace(r.Choices[0].Message.Content)
	}
	if a, m := ask("lora"), ask("merged"); a != m || a != chatLoRA {
		t.Errorf("serve: the LoRA adapter answered %q, the merged model %q, golem chat %q", a, m, chatLoRA)
	}
	if a := ask("pt"); a != chatPT {
		t.Errorf("serve: the prompt-tuning adapter answered %q, golem chat %q", a, chatPT)
	}
	if _, err := os.Stat(filepath.Join(pt, "model.safetensors")); err == nil {
		t.Fatal("the prompt-tuning folder holds a whole model: not an adapter test")
	}
}

// dpo and grpo with --lora-r write a PEFT adapter folder over the SFT
// model (no copy of its weights) that golem generate loads, and --merge's
// OUT/merged generates the same text, bit for bit.
func TestLoRAStagesGenerate(t *testing.T) {
	if testing.Short() {
		t.Skip("runs real training processes")
	}
	f := fixtures(t)
	gen := func(dir string) string {
		return golemOut(t, f.cache, "", "generate", "--model", dir, "--prompt", "the cat", "--max-tokens", "12", "--temperature", "0", tiny)
	}
	// ppo takes the LoRA reward model as --reward (and its value model
	// starts from it, merged).
	rm := reference(t, f, stageNamed("reward-lora")).out
	f.sft = reference(t, f, stageNamed("sft")).out
	golemRun(t, f.cache, "ppo", "--model", f.sft, "--reward", rm, "--builtin-n", "8", "--batch", "4", "--minibatches", "2", "--epochs", "1",
		"--max-tokens", "8", "--steps", "2", tiny, "--out", filepath.Join(f.dir, "ppo-lora-rm"))
	for _, name := range []string{"dpo-lora", "grpo-lora"} {
		out := reference(t, f, stageNamed(name)).out
		if _, err := os.Stat(filepath.Join(out, "adapter_model.safetensors")); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if _, err := os.Stat(filepath.Join(out, "model.safetensors")); err == nil {
			t.Errorf("%s: OUT holds a whole model, not only the adapter", name)
		}
		if g := gen(out); strings.TrimSpace(g) == "" {
			t.Errorf("%s: generate --model %s wrote nothing", name, out)
		}
	}
	out := filepath.Join(f.dir, "dpo-lora-merge")
	golemRun(t, f.cache, "dpo", "--model", f.sft, "--data", f.pairs, "--batch", "4", "--steps", "2", "--lora-r", "4", "--lr", "1e-2", "--merge", tiny, "--out", out)
	if a, m := gen(out), gen(filepath.Join(out, "merged")); a != m {
		t.Errorf("dpo --lora-r --merge: the adapter generated %q, the merged model %q", a, m)
	}
}
