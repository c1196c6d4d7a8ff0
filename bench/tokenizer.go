package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	tiktoken "github.com/tiktoken-go/tokenizer"

	"github.com/golem-ml/golem/internal/shared"
	"github.com/golem-ml/golem/tokenizer"
)

// The tokenizer benchmark compares, in one run:
//   - encoding throughput with GPT-2's vocabulary on ../shared/data/text
//     (English, Chinese, both), 1 and 2 threads, against
//     github.com/tiktoken-go/tokenizer (r50k_base, the same vocabulary);
//   - training an 8,192-token vocabulary on the same corpus against
//     sentencepiece's spm_train --model_type=bpe on both cores.
//
// It ends with ratio=min(encode ratio 1 thread, encode ratio 2 threads,
// training ratio), each golem/peer, higher is better.
func init() { register("tokenizer", runTokenizerBench) }

func runTokenizerBench(args []string) error {
	fs := flag.NewFlagSet("tokenizer", flag.ContinueOnError)
	runs := fs.Int("runs", 5, "timed encoding runs per case (the best counts)")
	vocab := fs.Int("vocab-size", 8192, "training vocabulary size")
	noTrain := fs.Bool("no-train", false, "skip the training comparison (then the ratio is the encoding one)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	dir := shared.Dir()
	if dir == "" {
		return errors.New("tokenizer bench: needs the shared folder (../shared) for data/text and data/tokenizer/gpt2")
	}
	en, zh, err := benchCorpus(filepath.Join(dir, "data", "text"))
	if err != nil {
		return err
	}
	gpt2Dir := filepath.Join(dir, "data", "tokenizer", "gpt2")
	encJSON, err := os.ReadFile(filepath.Join(gpt2Dir, "encoder.json"))
	if err != nil {
		return err
	}
	vocabBPE, err := os.ReadFile(filepath.Join(gpt2Dir, "vocab.bpe"))
	if err != nil {
		return err
	}
	peer, err := tiktoken.Get(tiktoken.R50kBase)
	if err != nil {
		return fmt.Errorf("tokenizer bench: peer tiktoken-go: %w", err)
	}
	// A fresh golem tokenizer for every timed run, so that its piece cache
	// starts cold each time.
	fresh := func() (*tokenizer.Tokenizer, error) { return tokenizer.LoadGPT2(encJSON, vocabBPE) }

	fmt.Printf("cpu: %d cores (GOMAXPROCS %d), corpus: English %.2f MB, Chinese %.2f MB\n",
		runtime.NumCPU(), runtime.GOMAXPROCS(0), float64(len(en))/1e6, float64(len(zh))/1e6)
	all := en + zh
	encRatio := map[int]float64{}
	for _, c := range []struct {
		name string
		text string
	}{{"en", en}, {"zh", zh}, {"all", all}} {
		// Same ids first: the comparison is only fair if both do the same work.
		tok, err := fresh()
		if err != nil {
			return err
		}
		got := tok.Encode(c.text)
		want, _, err := peer.Encode(c.text)
		if err != nil {
			return fmt.Errorf("tokenizer bench: peer: %w", err)
		}
		if !slices.EqualFunc(got, want, func(a int, b uint) bool { return uint(a) == b }) {
			return fmt.Errorf("tokenizer bench: golem and tiktoken-go give different ids on %s (%d vs %d tokens)", c.name, len(got), len(want))
		}
		for _, threads := range []int{1, 2} {
			g, err := bestOf(*runs, func() (time.Duration, error) {
				tok, err := fresh()
				if err != nil {
					return 0, err
				}
				start := time.Now()
				if threads == 1 {
					tok.Encode(c.text)
				} else {
					tok.EncodeParallel(c.text, threads)
				}
				return time.Since(start), nil
			})
			if err != nil {
				return err
			}
			p, err := bestOf(*runs, func() (time.Duration, error) {
				codec, err := tiktoken.Get(tiktoken.R50kBase)
				if err != nil {
					return 0, err
				}
				chunks := splitLines(c.text, threads)
				start := time.Now()
				var wg sync.WaitGroup
				for _, ch := range chunks {
					wg.Add(1)
					go func() { defer wg.Done(); codec.Encode(ch) }()
				}
				wg.Wait()
				return time.Since(start), nil
			})
			if err != nil {
				return err
			}
			mb := float64(len(c.text)) / 1e6
			r := p.Seconds() / g.Seconds()
			fmt.Printf("encode %-3s %d thread(s): golem %7.1f MB/s  tiktoken-go %6.1f MB/s  ratio %.2f\n", c.name, threads, mb/g.Seconds(), mb/p.Seconds(), r)
			if c.name == "all" {
				encRatio[threads] = r
			}
		}
	}
	ratio := min(encRatio[1], encRatio[2])
	if !*noTrain {
		tr, err := benchTrain(all, *vocab)
		if err != nil {
			return err
		}
		ratio = min(ratio, tr)
	}
	fmt.Printf("ratio=%.2f\n", ratio)
	return nil
}

// benchCorpus reads the English (*.txt and the "text" of *.jsonl) and the
// Chinese (zh/*.txt) text of the shared corpus.
func benchCorpus(dir string) (en, zh string, err error) {
	var paths []string
	err = filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			paths = append(paths, p)
		}
		return err
	})
	if err != nil {
		return "", "", fmt.Errorf("tokenizer bench: %w", err)
	}
	sort.Strings(paths)
	var e, z strings.Builder
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			return "", "", err
		}
		w := &e
		if strings.Contains(p, string(filepath.Separator)+"zh"+string(filepath.Separator)) {
			w = &z
		}
		switch {
		case strings.HasSuffix(p, ".jsonl"):
			sc := bufio.NewScanner(bytes.NewReader(b))
			sc.Buffer(nil, 1<<26)
			for n := 1; sc.Scan(); n++ {
				var rec struct{ Text string }
				if err := json.Unmarshal(sc.Bytes(), &rec); err != nil {
					return "", "", fmt.Errorf("tokenizer bench: %s line %d: %w", p, n, err)
				}
				w.WriteString(rec.Text)
				w.WriteByte('\n')
			}
		case strings.HasSuffix(p, ".txt"):
			w.Write(b)
		}
	}
	if e.Len() == 0 || z.Len() == 0 {
		return "", "", fmt.Errorf("tokenizer bench: %s: want English and Chinese (zh/) text", dir)
	}
	return e.String(), z.String(), nil
}

// splitLines cuts text into n parts at line ends.
func splitLines(text string, n int) []string {
	var out []string
	for k := n; k > 1; k-- {
		i := len(text) / k
		j := strings.IndexByte(text[i:], '\n')
		if j < 0 {
			break
		}
		out = append(out, text[:i+j+1])
		text = text[i+j+1:]
	}
	return append(out, text)
}

func bestOf(n int, f func() (time.Duration, error)) (time.Duration, error) {
	best := time.Duration(1<<63 - 1)
	for i := 0; i < max(n, 1); i++ {
		runtime.GC()
		d, err := f()
		if err != nil {
			return 0, err
		}
		best = min(best, d)
	}
	return best, nil
}

// benchTrain times training on text with golem and with spm_train, both
// reading the same file on 2 threads, and returns spm time / golem time.
func benchTrain(text string, vocab int) (float64, error) {
	spm, err := exec.LookPath("spm_train")
	if err != nil {
		return 0, errors.New("tokenizer bench: peer spm_train not found: install it with `apt-get install -y sentencepiece`")
	}
	tmp, err := os.MkdirTemp("", "golem-tokbench")
	if err != nil {
		return 0, err
	}
	defer os.RemoveAll(tmp)
	corpus := filepath.Join(tmp, "corpus.txt")
	if err := os.WriteFile(corpus, []byte(text), 0o644); err != nil {
		return 0, err
	}
	start := time.Now()
	tok, err := tokenizer.Train(tokenizer.TrainOptions{Files: []string{corpus}, VocabSize: vocab, Workers: 2})
	if err != nil {
		return 0, err
	}
	g := time.Since(start)
	if tok.VocabSize() != vocab {
		return 0, fmt.Errorf("tokenizer bench: golem trained %d tokens, want %d", tok.VocabSize(), vocab)
	}
	cmd := exec.Command(spm, "--input="+corpus, "--model_prefix="+filepath.Join(tmp, "spm"), "--model_type=bpe",
		fmt.Sprintf("--vocab_size=%d", vocab), "--num_threads=2", "--max_sentence_length=1000000", "--minloglevel=1")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	start = time.Now()
	if err := cmd.Run(); err != nil {
		return 0, fmt.Errorf("tokenizer bench: spm_train: %v\n%s", err, stderr.String())
	}
	p := time.Since(start)
	r := p.Seconds() / g.Seconds()
	fmt.Printf("train %d tokens on %.1f MB: golem %.1fs  spm_train %.1fs  ratio %.2f\n", vocab, float64(len(text))/1e6, g.Seconds(), p.Seconds(), r)
	return r, nil
}
