package gguf

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// FakeOllama lays out an Ollama models folder under root holding file as
// the model NAME:TAG (name may be NAMESPACE/MODEL), as ollama pull does:
// the blob named by the file's sha256 and a manifest listing it with a
// template and a params layer.
func fakeOllama(t *testing.T, root, name, tag, file string) string {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(b)
	digest := hex.EncodeToString(sum[:])
	blob := filepath.Join(root, "blobs", "sha256-"+digest)
	os.MkdirAll(filepath.Dir(blob), 0o755)
	if err := os.WriteFile(blob, b, 0o644); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(name, "/") {
		name = "library/" + name
	}
	m := map[string]any{
		"schemaVersion": 2, "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
		"config": map[string]any{"mediaType": "application/vnd.docker.container.image.v1+json", "digest": "sha256:" + strings.Repeat("0", 64), "size": 2},
		"layers": []map[string]any{
			{"mediaType": "application/vnd.ollama.image.template", "digest": "sha256:" + strings.Repeat("1", 64), "size": 10},
			{"mediaType": "application/vnd.ollama.image.model", "digest": "sha256:" + digest, "size": len(b)},
			{"mediaType": "application/vnd.ollama.image.params", "digest": "sha256:" + strings.Repeat("2", 64), "size": 20},
		},
	}
	mb, _ := json.Marshal(m)
	mp := filepath.Join(root, "manifests", "registry.ollama.ai", filepath.FromSlash(name), tag)
	os.MkdirAll(filepath.Dir(mp), 0o755)
	if err := os.WriteFile(mp, mb, 0o644); err != nil {
		t.Fatal(err)
	}
	return blob
}

// ollama:NAME[:TAG] resolves through the manifest to the model blob in
// $OLLAMA_MODELS (the default tag is latest; a namespace is a folder);
// .gguf paths and folders holding model.gguf are GGUF models; a
// safetensors folder is not; bad references are refused, naming them.
func TestLocate(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "m.gguf")
	if err := Write(file, []KV{{Key: "general.architecture", Value: Of("llama")}}, nil); err != nil {
		t.Fatal(err)
	}
	root := filepath.Join(dir, "models")
	t.Setenv("OLLAMA_MODELS", root)
	blob := fakeOllama(t, root, "tiny", "q8_0", file)
	latest := fakeOllama(t, root, "tiny", "latest", file)
	ns := fakeOllama(t, root, "someone/other", "v1", file)
	folder := filepath.Join(dir, "quantized")
	os.MkdirAll(folder, 0o755)
	os.WriteFile(filepath.Join(folder, FolderFile), nil, 0o644)
	st := filepath.Join(dir, "st")
	os.MkdirAll(st, 0o755)
	os.WriteFile(filepath.Join(st, "model.safetensors"), nil, 0o644)
	for ref, want := range map[string]string{
		"ollama:tiny:q8_0": blob, "ollama:tiny": latest, "ollama:someone/other:v1": ns,
		file: file, folder: filepath.Join(folder, FolderFile),
	} {
		got, ok, err := Locate(ref)
		if err != nil || !ok || got != want {
			t.Errorf("Locate(%q) = %q, %v, %v; want %q", ref, got, ok, err, want)
		}
	}
	if _, ok, err := Locate(st); ok || err != nil {
		t.Errorf("a safetensors folder: ok %v, %v", ok, err)
	}
	// A blob whose size is not the manifest's, a missing model, bad names.
	os.WriteFile(blob, []byte("short"), 0o644)
	for ref, want := range map[string]string{
		"ollama:tiny:q8_0":    "has 5 bytes, the manifest says",
		"ollama:nothere":      "no manifest " + filepath.Join(root, "manifests", "registry.ollama.ai", "library", "nothere", "latest"),
		"ollama:../../etc":    "want ollama:NAME or ollama:NAME:TAG",
		"ollama:tiny:../x":    "want ollama:NAME or ollama:NAME:TAG",
		"ollama:a/b/c":        "want ollama:NAME or ollama:NAME:TAG",
		"ollama:":             "want ollama:NAME or ollama:NAME:TAG",
		"ollama:someone/..:x": "want ollama:NAME",
	} {
		_, ok, err := Locate(ref)
		if !ok || err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), ref) {
			t.Errorf("Locate(%q): %v, want %q", ref, err, want)
		}
	}
	// A manifest with no model layer.
	mp := filepath.Join(root, "manifests", "registry.ollama.ai", "library", "tiny", "empty")
	os.WriteFile(mp, []byte(`{"layers": []}`), 0o644)
	if _, _, err := Locate("ollama:tiny:empty"); err == nil || !strings.Contains(err.Error(), "has no model layer") {
		t.Errorf("no model layer: %v", err)
	}
}
