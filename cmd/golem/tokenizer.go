package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"github.com/golem-ml/golem/tokenizer"
)

func init() {
	register("tokenizer train", "train a byte-level BPE tokenizer on text, directories and JSONL", runTokenizerTrain)
	register("tokenizer encode", "encode stdin and print a JSON array of token ids", runTokenizerEncode)
	register("tokenizer decode", "decode a JSON array of token ids from stdin", runTokenizerDecode)
}

// tokStrings is a string flag that may be given several times.
type tokStrings []string

func (f *tokStrings) String() string     { return strings.Join(*f, ",") }
func (f *tokStrings) Set(v string) error { *f = append(*f, v); return nil }

func runTokenizerTrain(args []string) error {
	fs := newFlags("tokenizer train", `golem tokenizer train --data corpus.txt --vocab-size 4096 --out tok`)
	var data, special tokStrings
	fs.Var(&data, "data", "training text: a file, a directory or a glob; .jsonl files give their \"text\" fields (repeat for several)")
	vocab := fs.Int("vocab-size", 8192, "vocabulary size, the 256 bytes and the special tokens included")
	out := fs.String("out", "", "output folder for tokenizer.json and tokenizer_config.json")
	pattern := fs.String("pattern", "cl100k", "pre-tokenizer: gpt2, cl100k, qwen2 or o200k")
	fs.Var(&special, "special", "an extra special token (repeat for several); <|endoftext|>, <|im_start|>, <|im_end|> and <|pad|> are always reserved unless --no-default-special")
	noDefault := fs.Bool("no-default-special", false, "do not reserve the default special tokens")
	minFreq := fs.Int("min-frequency", 2, "least count of a pair to merge")
	workers := fs.Int("threads", 0, "goroutines reading and counting (default: all cores)")
	alias(fs, "workers", "threads")
	char := fs.Bool("char", false, "build a character-level tokenizer (the sorted distinct characters of the data) instead of BPE")
	quiet := fs.Bool("quiet", false, "no progress bar")
	if err := parseWithArgs(fs, args); err != nil {
		return err
	}
	data = append(data, fs.Args()...)
	if len(data) == 0 || *out == "" {
		return usageError{errors.New("tokenizer train: need --data PATH and --out DIR (golem tokenizer train --help)")}
	}
	var progress io.Writer = os.Stderr
	if *quiet {
		progress = nil
	}
	var tok *tokenizer.Tokenizer
	var err error
	if *char {
		tok, err = tokenizer.TrainChar(data)
	} else {
		tok, err = tokenizer.Train(tokenizer.TrainOptions{
			Files: data, VocabSize: *vocab, Special: special, NoDefaultSpecial: *noDefault,
			Pattern: *pattern, MinFrequency: *minFreq, Workers: *workers, Progress: progress,
		})
	}
	if err != nil {
		return err
	}
	if err := tok.Save(*out); err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "tokenizer: saved %s/tokenizer.json (%d tokens)\n", *out, tok.VocabSize())
	return nil
}

func runTokenizerEncode(args []string) error {
	fs := newFlags("tokenizer encode", `echo "Hello, world" | golem tokenizer encode --tokenizer tok`)
	path := fs.String("tokenizer", "", "tokenizer: a folder with tokenizer.json or encoder.json+vocab.bpe, a tokenizer.json, or a tiktoken file")
	special := fs.Bool("special", false, "recognise special tokens such as <|endoftext|> in the text")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *path == "" {
		return usageError{errors.New("tokenizer encode: need --tokenizer PATH (golem tokenizer encode --help)")}
	}
	tok, err := tokenizer.Load(*path)
	if err != nil {
		return err
	}
	text, err := io.ReadAll(os.Stdin)
	if err != nil {
		return fmt.Errorf("tokenizer encode: reading stdin: %w", err)
	}
	var ids []int
	if *special {
		ids = tok.EncodeWithSpecial(string(text))
	} else {
		ids = tok.EncodeParallel(string(text), 0)
	}
	w := bufio.NewWriterSize(os.Stdout, 1<<16)
	buf := make([]byte, 0, 16)
	w.WriteByte('[')
	for i, id := range ids {
		if i > 0 {
			w.WriteByte(',')
		}
		buf = strconv.AppendInt(buf[:0], int64(id), 10)
		w.Write(buf)
	}
	w.WriteString("]\n")
	return w.Flush()
}

func runTokenizerDecode(args []string) error {
	fs := newFlags("tokenizer decode", `echo "[72, 101]" | golem tokenizer decode --tokenizer tok`)
	path := fs.String("tokenizer", "", "tokenizer: a folder with tokenizer.json or encoder.json+vocab.bpe, a tokenizer.json, or a tiktoken file")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *path == "" {
		return usageError{errors.New("tokenizer decode: need --tokenizer PATH (golem tokenizer decode --help)")}
	}
	tok, err := tokenizer.Load(*path)
	if err != nil {
		return err
	}
	var ids []int
	if err := json.NewDecoder(os.Stdin).Decode(&ids); err != nil {
		return fmt.Errorf("tokenizer decode: stdin: want a JSON array of token ids: %w", err)
	}
	for i, id := range ids {
		if _, ok := tok.Token(id); !ok {
			return fmt.Errorf("tokenizer decode: id %d (position %d) is not in the vocabulary of %d tokens", id, i, tok.VocabSize())
		}
	}
	_, err = io.WriteString(os.Stdout, tok.Decode(ids))
	return err
}
