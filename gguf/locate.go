package gguf

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/golem-ml/golem/internal/regfile"
)

// FolderFile is the weights file of a model folder that holds its model
// as GGUF (golem quantize writes one): ggml's quantized blocks have no
// safetensors dtype, and the one file is also what llama.cpp and Ollama
// run.
const FolderFile = "model.gguf"

// OllamaPrefix starts a reference to a model in Ollama's models folder:
// "ollama:NAME[:TAG]".
const OllamaPrefix = "ollama:"

// Locate returns the GGUF file a --model argument names, and whether it
// names one: an "ollama:NAME[:TAG]" reference (see Ollama), a path ending
// in ".gguf", or a folder whose weights are FolderFile (with no
// model.safetensors). Anything else is not GGUF: ok is false.
func Locate(model string) (file string, ok bool, err error) {
	if strings.HasPrefix(model, OllamaPrefix) {
		file, err := Ollama(model)
		return file, true, err
	}
	if strings.HasSuffix(strings.ToLower(model), ".gguf") {
		return model, true, nil
	}
	if fi, err := os.Stat(model); err == nil && fi.IsDir() {
		in := filepath.Join(model, FolderFile)
		if _, err := os.Stat(in); err == nil {
			if _, err := os.Stat(filepath.Join(model, "model.safetensors")); errors.Is(err, os.ErrNotExist) {
				return in, true, nil
			}
		}
	}
	return "", false, nil
}

// OllamaModels returns Ollama's models folder: $OLLAMA_MODELS, else
// ~/.ollama/models.
func OllamaModels() (string, error) {
	if d := os.Getenv("OLLAMA_MODELS"); d != "" {
		return d, nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("gguf: Ollama's models folder: %w (set OLLAMA_MODELS)", err)
	}
	return filepath.Join(home, ".ollama", "models"), nil
}

var (
	ollamaName   = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9._-]*(/[a-zA-Z0-9][a-zA-Z0-9._-]*)?$`)
	ollamaTag    = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9._-]*$`)
	ollamaDigest = regexp.MustCompile(`^sha256:[0-9a-f]{64}$`)
)

// maxManifest bounds an Ollama manifest (a few hundred bytes in practice).
const maxManifest = 1 << 20

// Ollama resolves "ollama:NAME[:TAG]" (TAG "latest" when left out; NAME
// may be "namespace/model") as Ollama does: the manifest
// manifests/registry.ollama.ai/library/NAME/TAG of the models folder (see
// OllamaModels) lists the model's layers, and the one of media type
// application/vnd.ollama.image.model is the GGUF file, stored as
// blobs/sha256-DIGEST. The blob's size must be the manifest's.
func Ollama(ref string) (string, error) {
	spec := strings.TrimPrefix(ref, OllamaPrefix)
	name, tag, hasTag := strings.Cut(spec, ":")
	if !hasTag {
		tag = "latest"
	}
	if !ollamaName.MatchString(name) || !ollamaTag.MatchString(tag) || strings.Contains(name, "..") || strings.Contains(tag, "..") {
		return "", fmt.Errorf("gguf: %s: want ollama:NAME or ollama:NAME:TAG (letters, digits, '.', '_', '-'; NAME may be NAMESPACE/MODEL)", ref)
	}
	if !strings.Contains(name, "/") {
		name = "library/" + name
	}
	root, err := OllamaModels()
	if err != nil {
		return "", err
	}
	mpath := filepath.Join(root, "manifests", "registry.ollama.ai", filepath.FromSlash(name), tag)
	b, err := regfile.ReadFile(mpath, maxManifest)
	if errors.Is(err, os.ErrNotExist) {
		return "", fmt.Errorf("gguf: %s: no manifest %s (is the model pulled? OLLAMA_MODELS is the models folder)", ref, mpath)
	}
	if err != nil {
		return "", fmt.Errorf("gguf: %s: %w", ref, err)
	}
	var m struct {
		Layers []struct {
			MediaType string `json:"mediaType"`
			Digest    string `json:"digest"`
			Size      int64  `json:"size"`
		} `json:"layers"`
	}
	if err := json.Unmarshal(b, &m); err != nil {
		return "", fmt.Errorf("gguf: %s: manifest %s: %w", ref, mpath, err)
	}
	for _, l := range m.Layers {
		if l.MediaType != "application/vnd.ollama.image.model" {
			continue
		}
		if !ollamaDigest.MatchString(l.Digest) {
			return "", fmt.Errorf("gguf: %s: manifest %s: model layer digest %q is not sha256:<64 hex digits>", ref, mpath, l.Digest)
		}
		blob := filepath.Join(root, "blobs", "sha256-"+strings.TrimPrefix(l.Digest, "sha256:"))
		fi, err := os.Stat(blob)
		if err != nil {
			return "", fmt.Errorf("gguf: %s: model layer: %w", ref, err)
		}
		if fi.Size() != l.Size {
			return "", fmt.Errorf("gguf: %s: blob %s has %d bytes, the manifest says %d", ref, blob, fi.Size(), l.Size)
		}
		return blob, nil
	}
	return "", fmt.Errorf("gguf: %s: manifest %s has no model layer (application/vnd.ollama.image.model)", ref, mpath)
}
