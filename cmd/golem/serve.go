package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/golem-ml/golem/serve"
)

func init() {
	register("serve", "serve models over the OpenAI and Ollama APIs with the chat and annotation web app", runServe)
}

func runServe(args []string) error {
	fs := newFlags("serve", `golem serve --model out/sft --db sqlite:labels.db`)
	var models listFlag
	fs.Var(&models, "model", "model folder, FILE.gguf or ollama:NAME[:TAG], or NAME=DIR (repeatable; the id is the folder's or file's name, or NAME:TAG); loaded on its first request")
	modelsDir := fs.String("models", "", "serve every model folder inside this folder (each one with a config.json, named by its folder's name)")
	keepAlive := fs.Duration("keep-alive", serve.DefaultKeepAlive, "how long a model stays loaded after its last request (0: unload it at once; negative: for ever); an Ollama request's keep_alive replaces it after that request")
	addr := fs.String("addr", "127.0.0.1:8080", "address to listen on")
	db := fs.String("db", "sqlite:golem.db", `store: sqlite:FILE, a postgres:// URL, or "none"`)
	apiKey := fs.String("api-key", os.Getenv("GOLEM_API_KEY"), "API key required on /v1 and /api (default $GOLEM_API_KEY)")
	noKey := fs.Bool("no-api-key", false, "serve without an API key even beyond loopback")
	adminPw := fs.String("admin-password", "", "password of the admin created on first run (default: generated and printed)")
	watch := fs.Duration("watch", 0, "how often to check model folders for a new checkpoint (default 2s; negative: never)")
	batch := fs.Int("max-batch", 64, "sequences decoded together per model")
	kvCache := fs.String("kv-cache", "f16", "precision of the batch's KV cache: f16 (half the memory and reading; keys and values rounded to float16) or f32")
	queue := fs.Int("queue", 256, "requests waiting per model before 429")
	var o serve.Options
	fs.DurationVar(&o.BodyTimeout, "body-timeout", 30*time.Second, "how long a request's body may take to arrive (then 408)")
	fs.DurationVar(&o.WriteTimeout, "write-timeout", 60*time.Second, "how long one write of an answer may block before the client is cut off (streams live while they progress)")
	fs.DurationVar(&o.IdleTimeout, "idle-timeout", 60*time.Second, "how long an idle keep-alive connection stays open")
	fs.BoolVar(&o.SecureCookies, "secure-cookies", false, "mark the session cookie Secure: set it when HTTPS (a TLS proxy) is in front")
	fs.BoolVar(&o.Lenient, "lenient", false, "let the OpenAI and Ollama APIs ignore request fields golem does not support (by default a 400 names them); tools, response_format, logprobs, images ... are refused even so")
	var origins listFlag
	fs.Var(&origins, "cors-origin", "an origin (scheme://host[:port], or * for any) whose web pages may call the APIs, besides localhost, 127.0.0.1 and [::1] (repeatable)")
	logFormat := fs.String("log-format", "text", "how the log's lines are written: text, or json (one object a line; a line per request with id, route, model, tokens, time to first token, total time and status)")
	fs.StringVar(&o.EmbedPool, "embed-pool", "mean", "how the embedding endpoints pool a text's final hidden states: mean (over its tokens) or last (the last token's)")
	bodyMiB := fs.Int64("body-memory", 64, "MiB of request bodies read and handled at once; more is a 429")
	dtype := addWeightsDTypeFlag(fs)
	dev := addDeviceFlag(fs)
	be, err := dev.parse(fs, args)
	if err != nil {
		return err
	}
	bf16, err := weightsBF16(*dtype)
	if err != nil {
		return err
	}
	o.BodyMemory = *bodyMiB << 20
	keep := *keepAlive
	if keep == 0 {
		keep = time.Nanosecond // serve.Options' "unload as soon as idle"
	}
	o.CORSOrigins = origins
	if *kvCache != "f16" && *kvCache != "f32" {
		return fmt.Errorf("serve: --kv-cache %q: want f16 or f32", *kvCache)
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	reload, stopHUP := serve.ReloadOnHUP()
	defer stopHUP()
	return serve.Run(ctx, serve.Config{
		Models: models, ModelsDir: *modelsDir, KeepAlive: keep, Addr: *addr, DB: *db, APIKey: *apiKey, NoAPIKey: *noKey, AdminPassword: *adminPw,
		Watch: *watch, Reload: reload, Engine: serve.EngineOptions{MaxBatch: *batch, Queue: *queue, FloatKV: *kvCache == "f32"}, Server: o, Out: os.Stderr, LogFormat: *logFormat, Backend: be, BF16: bf16,
	})
}
