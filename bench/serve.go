package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/golem-ml/golem/backend/cpu"
	"github.com/golem-ml/golem/data/synth"
	"github.com/golem-ml/golem/internal/cpuprof"
	"github.com/golem-ml/golem/model/gpt"
	"github.com/golem-ml/golem/serve"
	"github.com/golem-ml/golem/tokenizer"
)

// bench serve: streaming clients against golem serve over real HTTP on
// loopback. The peer is the same server with one client: the ratio of the
// aggregate tokens/s of N concurrent clients to one client's shows what
// continuous batching buys (target >= 8 for 64 clients).
func init() {
	register("serve", func(args []string) error {
		fs := flag.NewFlagSet("serve", flag.ExitOnError)
		clients := fs.Int("clients", 64, "concurrent streaming clients")
		dur := fs.Duration("duration", 20*time.Second, "how long each phase runs")
		maxTokens := fs.Int("max-tokens", 64, "tokens per answer (min_tokens too, so every answer has this length)")
		dir := fs.String("model", "", "model folder to serve (default: a random llama of -layers x -width)")
		layers := fs.Int("layers", 8, "layers of the default model")
		width := fs.Int("width", 512, "width of the default model (heads of 32)")
		threads := fs.Int("threads", 2, "CPU threads")
		kv := fs.String("kv-cache", "f16", "precision of the KV cache: f16 or f32")
		schemaFile := fs.String("json-schema", "", "also run the clients' phase with response_format json_schema of this schema FILE (\"builtin\": an object with a long string, so answers stay long), and compare")
		fs.Parse(args)
		var schema string
		switch *schemaFile {
		case "":
		case "builtin":
			schema = benchSchema
		default:
			b, err := os.ReadFile(*schemaFile)
			if err != nil {
				return err
			}
			schema = string(b)
		}
		cpu.SetThreads(*threads)

		var w *serve.Weights
		var err error
		if *dir != "" {
			w, err = serve.LoadWeights(cpu.New(), *dir)
		} else {
			w, err = benchServeModel(*layers, *width)
		}
		if err != nil {
			return err
		}
		c := w.Model.Config
		params := 0
		for _, p := range w.Model.Params() {
			params += p.Tensor.Len()
		}
		fmt.Printf("model: %s, %d layers, width %d, vocab %d, %.1fM parameters; %d-token answers, %v per phase; KV cache %s\n", c.Arch, c.Layers, c.Hidden, c.Vocab, float64(params)/1e6, *maxTokens, *dur, *kv)
		e := serve.NewEngine("bench", "", w, serve.EngineOptions{MaxBatch: *clients, Queue: 4 * *clients, FloatKV: *kv == "f32"})
		defer e.Close()
		ts := httptest.NewServer(serve.New([]*serve.Engine{e}, nil, serve.Options{Logf: func(string, ...any) {}}))
		defer ts.Close()

		// Warm up first: each client's answer once, so that the measured
		// phases see a server in its steady state (its KV cache and
		// activation buffers allocated and touched) rather than the
		// first touches of fresh memory, which cost ~3 ms per MB in this
		// VM (a full batch's first prefill: 2.5 s instead of 0.5 s).
		t0 := time.Now()
		if err := warmUp(ts.URL, *clients, *maxTokens, ""); err != nil {
			return err
		}
		fmt.Printf("warm-up: one answer per client in %v\n", time.Since(t0).Round(time.Millisecond))
		one, err := loadPhase(e, ts.URL, 1, *dur, *maxTokens, "")
		if err != nil {
			return err
		}
		one.print("1 client (peer)")
		st0 := e.Stats()
		stop := cpuprof.Start("bench")
		many, err := loadPhase(e, ts.URL, *clients, *dur, *maxTokens, "")
		stop()
		if err != nil {
			return err
		}
		many.print(fmt.Sprintf("%d clients (golem)", *clients))
		st := e.Stats()
		fmt.Printf("engine: %d decode steps, %d prefills, %d enlargements of the KV cache, %d slots reused, at most %d sequences per step\n",
			st.Steps, st.Prefills, st.Grows, st.Fills, st.MaxActive)
		fmt.Printf("engine with %d clients: %d decode steps in %v, %d prefills of %d prompt positions (padding included) in %v\n", *clients,
			st.Steps-st0.Steps, (st.DecodeTime - st0.DecodeTime).Round(time.Millisecond),
			st.Prefills-st0.Prefills, st.PrefillTokens-st0.PrefillTokens, (st.PrefillTime - st0.PrefillTime).Round(time.Millisecond))
		if many.errors > 0 || one.errors > 0 {
			return fmt.Errorf("%d errors (must be zero)", many.errors+one.errors)
		}
		fmt.Printf("ratio=%.2f\n", many.tokensPerSec()/one.tokensPerSec())
		if schema == "" {
			return nil
		}
		// The same clients with structured output: each sequence's
		// tokens masked by its schema's matcher (generate/constrain).
		if err := warmUp(ts.URL, *clients, *maxTokens, schema); err != nil {
			return err
		}
		st0 = e.Stats()
		js, err := loadPhase(e, ts.URL, *clients, *dur, *maxTokens, schema)
		if err != nil {
			return err
		}
		js.print(fmt.Sprintf("%d clients json", *clients))
		st = e.Stats()
		fmt.Printf("engine with %d clients, json_schema: %d decode steps in %v\n", *clients, st.Steps-st0.Steps, (st.DecodeTime - st0.DecodeTime).Round(time.Millisecond))
		if js.errors > 0 {
			return fmt.Errorf("%d errors with json_schema (must be zero)", js.errors)
		}
		fmt.Printf("json_schema/free=%.3f\n", js.tokensPerSec()/many.tokensPerSec())
		return nil
	})
}

// benchServeModel is a small random llama (by default 8 x 512: 26.7M
// parameters, 107 MB in float32, more than this machine's caches hold, so
// that one sequence's decoding is bound by reading the weights, as with
// any real model; that reading is what batching amortizes) with a BPE
// tokenizer trained on golem's synthetic corpus (ChatML specials
// included). Smaller models (-layers 4 -width 256: 3.7M parameters, 15 MB)
// live in the cache, where a token costs little more than its HTTP
// streaming and batching has less to win.
func benchServeModel(layers, width int) (*serve.Weights, error) {
	tok, err := tokenizer.Train(tokenizer.TrainOptions{
		Texts: []string{synth.Corpus(synth.CorpusOptions{Seed: 1, Bytes: 200000})}, VocabSize: 1024})
	if err != nil {
		return nil, err
	}
	c := gpt.Config{Arch: "llama", Vocab: tok.VocabSize(), Context: 512, Layers: layers, Heads: width / 32, KVHeads: width / 32,
		Hidden: width, Intermediate: (width*11/4 + 63) / 64 * 64, Eps: 1e-5, RopeTheta: 10000, BOS: -1, EOS: -1}
	m, err := gpt.New(cpu.New(), c, 7)
	if err != nil {
		return nil, err
	}
	return serve.NewWeights(m, tok, time.Now())
}

type phase struct {
	clients int
	elapsed time.Duration
	tokens  int
	answers int
	errors  int
	ttft    []time.Duration
	firstEr error
}

func (p *phase) tokensPerSec() float64 { return float64(p.tokens) / p.elapsed.Seconds() }

func (p *phase) print(name string) {
	slices.Sort(p.ttft)
	q := func(f float64) time.Duration {
		if len(p.ttft) == 0 {
			return 0
		}
		return p.ttft[min(len(p.ttft)-1, int(f*float64(len(p.ttft))))].Round(time.Microsecond)
	}
	fmt.Printf("%-20s %8.1f tokens/s  %5d answers finished  time to first token p50 %v p99 %v  errors %d\n",
		name, p.tokensPerSec(), p.answers, q(0.50), q(0.99), p.errors)
	if p.firstEr != nil {
		fmt.Printf("  first error: %v\n", p.firstEr)
	}
}

// loadPhase runs n clients that each stream chat completions back to back
// until the phase ends. Throughput counts every token the engine generated
// in the phase, streamed to a client (answers cut off at the end of the
// phase included); answers, errors and times to first token are the
// clients' view.
func loadPhase(e *serve.Engine, base string, n int, dur time.Duration, maxTokens int, schema string) (*phase, error) {
	tr := &http.Transport{MaxIdleConns: 2 * n, MaxIdleConnsPerHost: 2 * n}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr}
	p := &phase{clients: n}
	var mu sync.Mutex
	ctx, cancel := context.WithTimeout(context.Background(), dur)
	defer cancel()
	start, tokens0 := time.Now(), e.Stats().Tokens
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for q := 0; ctx.Err() == nil; q++ {
				ttft, tokens, err := streamOnce(ctx, client, base, requestBody(i, q, maxTokens, schema))
				if ctx.Err() != nil {
					return // the phase ended mid-answer
				}
				mu.Lock()
				if err != nil {
					p.errors++
					if p.firstEr == nil {
						p.firstEr = err
					}
				} else if tokens > 0 {
					p.answers++
					p.ttft = append(p.ttft, ttft)
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	p.elapsed = time.Since(start)
	p.tokens = int(e.Stats().Tokens - tokens0)
	if p.tokens == 0 {
		return nil, fmt.Errorf("%d clients: no token in %v (errors: %d, first: %v)", n, dur, p.errors, p.firstEr)
	}
	return p, nil
}

// warmUp runs n clients that each stream one answer.
func warmUp(base string, n, maxTokens int, schema string) error {
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: n}}
	defer client.CloseIdleConnections()
	errs := make(chan error, n)
	for i := range n {
		go func() {
			_, _, err := streamOnce(context.Background(), client, base, requestBody(-1-i, 0, maxTokens, schema))
			errs <- err
		}()
	}
	var first error
	for range n {
		if err := <-errs; err != nil && first == nil {
			first = fmt.Errorf("warm-up: %w", err)
		}
	}
	return first
}

// requestBody is client i's q-th streaming chat completion request, with
// response_format json_schema of schema unless it is "".
func requestBody(i, q, maxTokens int, schema string) string {
	rf := ""
	if schema != "" {
		rf = `,"response_format":{"type":"json_schema","json_schema":{"name":"bench","strict":true,"schema":` + schema + `}}`
	}
	return fmt.Sprintf(`{"model":"bench","messages":[{"role":"user","content":"Client %d asks question %d: what is the weather like?"}],`+
		`"max_tokens":%d,"min_tokens":%d,"temperature":0.8,"seed":%d,"stream":true,"stream_options":{"include_usage":true}%s}`, i, q, maxTokens, maxTokens, i*1000+q, rf)
}

// benchSchema is --json-schema builtin: a weather report whose text is
// long, so that a random model's answers, like the free ones, run to
// max_tokens (min_tokens gives way once the value is whole).
const benchSchema = `{"type":"object","properties":{"city":{"type":"string","maxLength":20},"temperature":{"type":"number"},"sky":{"enum":["clear","cloudy","rain","snow"]},"report":{"type":"string"}},"required":["city","temperature","sky","report"],"additionalProperties":false}`

// streamOnce sends one streaming chat completion and returns the time to
// the first content token and the completion tokens of the usage chunk.
func streamOnce(ctx context.Context, client *http.Client, base, body string) (time.Duration, int, error) {
	req, err := http.NewRequestWithContext(ctx, "POST", base+"/v1/chat/completions", strings.NewReader(body))
	if err != nil {
		return 0, 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	t0 := time.Now()
	resp, err := client.Do(req)
	if err != nil {
		return 0, 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		return 0, 0, fmt.Errorf("HTTP %d", resp.StatusCode)
	}
	var ttft time.Duration
	tokens, done := -1, false
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == "data: [DONE]":
			done = true
		case ttft == 0 && strings.Contains(line, `"content":"`) && !strings.Contains(line, `"content":""`):
			ttft = time.Since(t0)
		}
		if i := strings.Index(line, `"completion_tokens":`); i >= 0 {
			fmt.Sscanf(line[i+len(`"completion_tokens":`):], "%d", &tokens)
		}
	}
	if err := sc.Err(); err != nil {
		return 0, 0, err
	}
	if !done || tokens < 0 {
		return 0, 0, errors.New("stream ended without usage and [DONE]")
	}
	return ttft, tokens, nil
}
