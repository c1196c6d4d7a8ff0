package eval

import (
	"bufio"
	"bytes"
	"compress/bzip2"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// Question is one multiple-choice item: the model scores each choice as a
// continuation of Context, and the most likely one is its answer.
type Question struct {
	ID      string   // where it was read, "file:line"
	Context string   // the text before the answer (without k-shot examples)
	Choices []string // continuations, each with its leading space if any
	Answer  int      // index of the right choice
}

// MCFormat names a multiple-choice data set layout.
type MCFormat string

// The multiple-choice layouts golem reads.
const (
	FormatARC       MCFormat = "arc"       // ARC / OpenBookQA JSON lines: {question: {stem, choices: [{text, label}]}, answerKey}
	FormatHellaSwag MCFormat = "hellaswag" // llama.cpp's text file (optionally .bz2): 6 lines per task
	FormatCMMLU     MCFormat = "cmmlu"     // CMMLU / MMLU-style CSV: ,Question,A,B,C,D,Answer (a file or a folder of them)
)

// DetectMC guesses the layout from the path: a folder or .csv is CMMLU,
// .txt or .bz2 is HellaSwag, anything else ARC JSON lines.
func DetectMC(path string) MCFormat {
	if fi, err := os.Stat(path); err == nil && fi.IsDir() {
		return FormatCMMLU
	}
	switch {
	case strings.HasSuffix(path, ".csv"):
		return FormatCMMLU
	case strings.HasSuffix(path, ".txt"), strings.HasSuffix(path, ".bz2"):
		return FormatHellaSwag
	}
	return FormatARC
}

// ReadMC reads a multiple-choice data set in the given layout ("" detects
// it from the path).
func ReadMC(path string, f MCFormat) ([]Question, error) {
	if f == "" {
		f = DetectMC(path)
	}
	switch f {
	case FormatARC:
		return ReadARC(path)
	case FormatHellaSwag:
		return ReadHellaSwag(path)
	case FormatCMMLU:
		return ReadCMMLU(path)
	}
	return nil, fmt.Errorf("eval: unknown multiple-choice format %q (want arc, hellaswag or cmmlu)", f)
}

// ReadARC reads ARC or OpenBookQA JSON lines. The context is
// "Question: STEM\nAnswer:" and each choice " TEXT", as lm-evaluation-harness
// scores them.
func ReadARC(path string) ([]Question, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("eval: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	var qs []Question
	for line := 1; sc.Scan(); line++ {
		b := bytes.TrimSpace(sc.Bytes())
		if len(b) == 0 {
			continue
		}
		var rec struct {
			Question *struct {
				Stem    string `json:"stem"`
				Choices []struct {
					Text  string `json:"text"`
					Label string `json:"label"`
				} `json:"choices"`
			} `json:"question"`
			AnswerKey string `json:"answerKey"`
		}
		where := fmt.Sprintf("%s:%d", path, line)
		if err := json.Unmarshal(b, &rec); err != nil {
			return nil, fmt.Errorf("eval: %s: %w", where, err)
		}
		if rec.Question == nil || rec.Question.Stem == "" {
			return nil, fmt.Errorf("eval: %s: \"question.stem\" missing", where)
		}
		q := Question{ID: where, Context: "Question: " + rec.Question.Stem + "\nAnswer:", Answer: -1}
		for i, c := range rec.Question.Choices {
			q.Choices = append(q.Choices, " "+c.Text)
			if c.Label == rec.AnswerKey {
				q.Answer = i
			}
		}
		if len(q.Choices) < 2 {
			return nil, fmt.Errorf("eval: %s: %d choices, want at least 2", where, len(q.Choices))
		}
		if q.Answer < 0 {
			return nil, fmt.Errorf("eval: %s: answerKey %q is not a choice label", where, rec.AnswerKey)
		}
		qs = append(qs, q)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("eval: %s: %w", path, err)
	}
	if len(qs) == 0 {
		return nil, fmt.Errorf("eval: %s: no questions", path)
	}
	return qs, nil
}

// ReadHellaSwag reads llama.cpp's HellaSwag text file, plain or bzip2:
// per task a context line, the right ending's index (0-3), then the four
// endings.
func ReadHellaSwag(path string) ([]Question, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("eval: %w", err)
	}
	defer f.Close()
	var r io.Reader = f
	if strings.HasSuffix(path, ".bz2") {
		r = bzip2.NewReader(f)
	}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	var lines []string
	for sc.Scan() {
		lines = append(lines, strings.TrimRight(sc.Text(), "\r"))
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("eval: %s: %w", path, err)
	}
	for len(lines) > 0 && lines[len(lines)-1] == "" {
		lines = lines[:len(lines)-1]
	}
	if len(lines) == 0 || len(lines)%6 != 0 {
		return nil, fmt.Errorf("eval: %s: %d lines, want a positive multiple of 6 (context, answer, 4 endings)", path, len(lines))
	}
	qs := make([]Question, 0, len(lines)/6)
	for i := 0; i < len(lines); i += 6 {
		gold, err := strconv.Atoi(strings.TrimSpace(lines[i+1]))
		if err != nil || gold < 0 || gold > 3 {
			return nil, fmt.Errorf("eval: %s line %d: answer %q, want 0-3", path, i+2, lines[i+1])
		}
		q := Question{ID: fmt.Sprintf("%s:%d", path, i+1), Context: lines[i], Answer: gold}
		for _, e := range lines[i+2 : i+6] {
			q.Choices = append(q.Choices, " "+e)
		}
		qs = append(qs, q)
	}
	return qs, nil
}

// ReadCMMLU reads CMMLU (or MMLU-style) CSV files with the header
// ",Question,A,B,C,D,Answer": one file, or every .csv of a folder in name
// order. The context lists the options and ends with "答案：", and the
// choices are the letters, as CMMLU's own evaluation does.
func ReadCMMLU(path string) ([]Question, error) {
	files := []string{path}
	if fi, err := os.Stat(path); err != nil {
		return nil, fmt.Errorf("eval: %w", err)
	} else if fi.IsDir() {
		files, _ = filepath.Glob(filepath.Join(path, "*.csv"))
		sort.Strings(files)
		if len(files) == 0 {
			return nil, fmt.Errorf("eval: %s: no .csv files", path)
		}
	}
	var qs []Question
	for _, file := range files {
		f, err := os.Open(file)
		if err != nil {
			return nil, fmt.Errorf("eval: %w", err)
		}
		recs, err := csv.NewReader(f).ReadAll()
		f.Close()
		if err != nil {
			return nil, fmt.Errorf("eval: %s: %w", file, err)
		}
		if len(recs) == 0 {
			return nil, fmt.Errorf("eval: %s: empty", file)
		}
		col := map[string]int{}
		for i, h := range recs[0] {
			col[strings.TrimSpace(h)] = i
		}
		for _, h := range []string{"Question", "A", "B", "C", "D", "Answer"} {
			if _, ok := col[h]; !ok {
				return nil, fmt.Errorf("eval: %s line 1: column %q missing (want ,Question,A,B,C,D,Answer)", file, h)
			}
		}
		for i, r := range recs[1:] {
			where := fmt.Sprintf("%s:%d", file, i+2)
			ans := strings.TrimSpace(r[col["Answer"]])
			gold := strings.Index("ABCD", ans)
			if len(ans) != 1 || gold < 0 {
				return nil, fmt.Errorf("eval: %s: answer %q, want A, B, C or D", where, ans)
			}
			var sb strings.Builder
			sb.WriteString(r[col["Question"]])
			for _, l := range []string{"A", "B", "C", "D"} {
				sb.WriteString("\n" + l + ". " + r[col[l]])
			}
			sb.WriteString("\n答案：")
			qs = append(qs, Question{ID: where, Context: sb.String(), Choices: []string{"A", "B", "C", "D"}, Answer: gold})
		}
	}
	if len(qs) == 0 {
		return nil, errors.New("eval: " + path + ": no questions")
	}
	return qs, nil
}
