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
	"regexp"
	"sort"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Question is one multiple-choice item, as an lm-evaluation-harness
// document: the model scores each choice as a continuation of Context
// (after the target delimiter, a space), and the most likely one is its
// answer.
type Question struct {
	ID          string   // where it was read, "file:line"
	Context     string   // lm-eval's doc_to_text: the text before the answer
	Choices     []string // lm-eval's doc_to_choice, without the delimiter
	Answer      int      // index of the right choice
	Description string   // put before the k-shot examples (CMMLU's subject line)
	Subject     string   // k-shot examples come from the same subject (CMMLU's file)
}

// MCFormat names a multiple-choice data set layout.
type MCFormat string

// The multiple-choice layouts golem reads, each read as the
// lm-evaluation-harness task of the same name defines its documents
// (task versions: arc_easy/arc_challenge 1.0, openbookqa 1.0, hellaswag
// 1.0, cmmlu 0.0).
const (
	FormatARC        MCFormat = "arc"        // ARC JSON lines: {question: {stem, choices: [{text, label}]}, answerKey}
	FormatOpenBookQA MCFormat = "openbookqa" // OpenBookQA in the same layout, scored after the bare stem
	FormatHellaSwag  MCFormat = "hellaswag"  // HellaSwag's JSON lines (ctx_a, ctx_b, endings, label), or llama.cpp's text file (optionally .bz2)
	FormatCMMLU      MCFormat = "cmmlu"      // CMMLU CSV: ,Question,A,B,C,D,Answer (a subject's file, or a folder of them)
)

// Task names the lm-evaluation-harness task and version whose definition
// golem follows for the layout ("openbookqa 1.0"), so that a score can be
// set beside a published one of the same task version.
func (f MCFormat) Task() string {
	switch f {
	case FormatARC:
		return "arc_easy/arc_challenge 1.0"
	case FormatOpenBookQA:
		return "openbookqa 1.0"
	case FormatHellaSwag:
		return "hellaswag 1.0"
	case FormatCMMLU:
		return "cmmlu 0.0"
	}
	return string(f)
}

// DetectMC guesses the layout from the path: a folder or .csv is CMMLU,
// .txt or .bz2, or a name with "hellaswag", is HellaSwag, a name with
// "openbookqa" or "obqa" OpenBookQA, anything else ARC JSON lines.
func DetectMC(path string) MCFormat {
	if fi, err := os.Stat(path); err == nil && fi.IsDir() {
		return FormatCMMLU
	}
	base := strings.ToLower(filepath.Base(path))
	switch {
	case strings.HasSuffix(path, ".csv"):
		return FormatCMMLU
	case strings.HasSuffix(path, ".txt"), strings.HasSuffix(path, ".bz2"), strings.Contains(base, "hellaswag"):
		return FormatHellaSwag
	case strings.Contains(base, "openbookqa"), strings.Contains(base, "obqa"):
		return FormatOpenBookQA
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
		return readARC(path, false)
	case FormatOpenBookQA:
		return readARC(path, true)
	case FormatHellaSwag:
		return ReadHellaSwag(path)
	case FormatCMMLU:
		return ReadCMMLU(path)
	}
	return nil, fmt.Errorf("eval: unknown multiple-choice format %q (want arc, openbookqa, hellaswag or cmmlu)", f)
}

// ReadARC reads ARC JSON lines as lm-eval's arc_easy and arc_challenge
// (version 1.0): the context is "Question: STEM\nAnswer:", the choices the
// texts.
func ReadARC(path string) ([]Question, error) { return readARC(path, false) }

// ReadOpenBookQA reads OpenBookQA in ARC's layout as lm-eval's openbookqa
// (version 1.0): the context is the bare question stem.
func ReadOpenBookQA(path string) ([]Question, error) { return readARC(path, true) }

func readARC(path string, bareStem bool) ([]Question, error) {
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
		if bareStem {
			q.Context = rec.Question.Stem
		}
		for i, c := range rec.Question.Choices {
			q.Choices = append(q.Choices, c.Text)
			if c.Label == strings.TrimLeft(rec.AnswerKey, " ") {
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

// ReadHellaSwag reads HellaSwag as lm-eval's hellaswag (version 1.0):
// from the data set's own JSON lines (ctx_a, ctx_b, activity_label,
// endings, label; the validation split is what lm-eval scores), the
// context is preprocess(activity_label + ": " + ctx_a + " " +
// Capitalized(ctx_b)) and the choices the preprocessed endings, exactly.
// llama.cpp's text file (plain or bzip2: per task a context line, the
// right ending's index, then the four endings) gets the same preprocess,
// but it joined ctx_a and ctx_b without capitalizing ctx_b, which cannot
// be undone: its contexts differ from lm-eval's there ("... on a roof. he"
// where lm-eval has "... on a roof. He").
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
	if strings.HasSuffix(strings.TrimSuffix(path, ".bz2"), ".jsonl") {
		return readHellaSwagJSONL(path, r)
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
		q := Question{ID: fmt.Sprintf("%s:%d", path, i+1), Context: hellaswagPreprocess(lines[i]), Answer: gold}
		for _, e := range lines[i+2 : i+6] {
			q.Choices = append(q.Choices, hellaswagPreprocess(e))
		}
		qs = append(qs, q)
	}
	return qs, nil
}

func readHellaSwagJSONL(path string, r io.Reader) ([]Question, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	var qs []Question
	for line := 1; sc.Scan(); line++ {
		b := bytes.TrimSpace(sc.Bytes())
		if len(b) == 0 {
			continue
		}
		where := fmt.Sprintf("%s:%d", path, line)
		var rec struct {
			ActivityLabel string          `json:"activity_label"`
			CtxA          *string         `json:"ctx_a"`
			CtxB          string          `json:"ctx_b"`
			Endings       []string        `json:"endings"`
			Label         json.RawMessage `json:"label"`
		}
		if err := json.Unmarshal(b, &rec); err != nil {
			return nil, fmt.Errorf("eval: %s: %w", where, err)
		}
		if rec.CtxA == nil || len(rec.Endings) < 2 {
			return nil, fmt.Errorf("eval: %s: want ctx_a, ctx_b, activity_label and endings (HellaSwag's JSON lines)", where)
		}
		var gold int
		if err := json.Unmarshal(rec.Label, &gold); err != nil {
			var s string
			if json.Unmarshal(rec.Label, &s) != nil {
				return nil, fmt.Errorf("eval: %s: label %s, want an ending's index", where, rec.Label)
			}
			if gold, err = strconv.Atoi(s); err != nil {
				return nil, fmt.Errorf("eval: %s: label %q, want an ending's index", where, s)
			}
		}
		if gold < 0 || gold >= len(rec.Endings) {
			return nil, fmt.Errorf("eval: %s: label %d of %d endings", where, gold, len(rec.Endings))
		}
		ctx := *rec.CtxA + " " + pyCapitalize(rec.CtxB)
		q := Question{ID: where, Context: hellaswagPreprocess(rec.ActivityLabel + ": " + ctx), Answer: gold}
		for _, e := range rec.Endings {
			q.Choices = append(q.Choices, hellaswagPreprocess(e))
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

var hellaswagBrackets = regexp.MustCompile(`\[.*?\]`)

// hellaswagPreprocess is lm-eval's hellaswag preprocess: strip, " [title]"
// to ". ", drop bracketed WikiHow artifacts, "  " to " ".
func hellaswagPreprocess(s string) string {
	s = pyStrip(s)
	s = strings.ReplaceAll(s, " [title]", ". ")
	s = hellaswagBrackets.ReplaceAllString(s, "")
	return strings.ReplaceAll(s, "  ", " ")
}

// pyStrip is Python's str.strip(): Unicode white space off both ends.
func pyStrip(s string) string { return strings.TrimFunc(s, unicode.IsSpace) }

// pyCapitalize is Python's str.capitalize(): the first character upper
// case (title case, as Python), the rest lower case.
func pyCapitalize(s string) string {
	r, n := utf8.DecodeRuneInString(s)
	if n == 0 {
		return s
	}
	return string(unicode.ToTitle(r)) + strings.ToLower(s[n:])
}

// ReadCMMLU reads CMMLU CSV files with the header ",Question,A,B,C,D,Answer"
// (one subject's file, or every .csv of a folder in name order) as
// lm-eval's cmmlu tasks (version 0.0): the context is the stripped
// question, the options "\nA. ..." to "\nD. ..." and "\n答案：", the
// choices the letters (scored as " A" to " D"), and each subject's
// description "以下是关于<subject>的单项选择题，请直接给出正确答案的选项。\n\n" goes
// before the k-shot examples, which come from the same subject.
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
			sb.WriteString(pyStrip(r[col["Question"]]))
			for _, l := range []string{"A", "B", "C", "D"} {
				sb.WriteString("\n" + l + ". " + r[col[l]])
			}
			sb.WriteString("\n答案：")
			subject := strings.TrimSuffix(filepath.Base(file), ".csv")
			q := Question{ID: where, Context: sb.String(), Choices: []string{"A", "B", "C", "D"}, Answer: gold, Subject: subject}
			if zh, ok := cmmluSubjects[subject]; ok {
				q.Description = "以下是关于" + zh + "的单项选择题，请直接给出正确答案的选项。\n\n"
			}
			qs = append(qs, q)
		}
	}
	if len(qs) == 0 {
		return nil, errors.New("eval: " + path + ": no questions")
	}
	return qs, nil
}

// cmmluSubjects are the Chinese names of CMMLU's subjects in lm-eval's
// task descriptions (lm_eval/tasks/cmmlu/_generate_configs.py).
var cmmluSubjects = map[string]string{
	"agronomy": "农学", "anatomy": "解剖学", "ancient_chinese": "古汉语", "arts": "艺术学", "astronomy": "天文学",
	"business_ethics": "商业伦理", "chinese_civil_service_exam": "中国公务员考试", "chinese_driving_rule": "中国驾驶规则",
	"chinese_food_culture": "中国饮食文化", "chinese_foreign_policy": "中国外交政策", "chinese_history": "中国历史",
	"chinese_literature": "中国文学", "chinese_teacher_qualification": "中国教师资格", "clinical_knowledge": "临床知识",
	"college_actuarial_science": "大学精算学", "college_education": "大学教育学", "college_engineering_hydrology": "大学工程水文学",
	"college_law": "大学法律", "college_mathematics": "大学数学", "college_medical_statistics": "大学医学统计",
	"college_medicine": "大学医学", "computer_science": "计算机科学", "computer_security": "计算机安全",
	"conceptual_physics": "概念物理学", "construction_project_management": "建设工程管理", "economics": "经济学",
	"education": "教育学", "electrical_engineering": "电气工程", "elementary_chinese": "小学语文",
	"elementary_commonsense": "小学常识", "elementary_information_and_technology": "小学信息技术",
	"elementary_mathematics": "初等数学", "ethnology": "民族学", "food_science": "食品科学", "genetics": "遗传学",
	"global_facts": "全球事实", "high_school_biology": "高中生物", "high_school_chemistry": "高中化学",
	"high_school_geography": "高中地理", "high_school_mathematics": "高中数学", "high_school_physics": "高中物理学",
	"high_school_politics": "高中政治", "human_sexuality": "人类性行为", "international_law": "国际法学",
	"journalism": "新闻学", "jurisprudence": "法理学", "legal_and_moral_basis": "法律与道德基础", "logical": "逻辑学",
	"machine_learning": "机器学习", "management": "管理学", "marketing": "市场营销", "marxist_theory": "马克思主义理论",
	"modern_chinese": "现代汉语", "nutrition": "营养学", "philosophy": "哲学", "professional_accounting": "专业会计",
	"professional_law": "专业法学", "professional_medicine": "专业医学", "professional_psychology": "专业心理学",
	"public_relations": "公共关系", "security_study": "安全研究", "sociology": "社会学", "sports_science": "体育学",
	"traditional_chinese_medicine": "中医中药", "virology": "病毒学", "world_history": "世界历史", "world_religions": "世界宗教",
}
