package main

import (
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"

	"github.com/golem-ml/golem/data"
)

func init() {
	register("data inspect", "read a data set with strict checks and summarise it", runDataInspect)
}

// fileList is a flag that may be given several times.
type fileList []string

func (f *fileList) String() string     { return strings.Join(*f, ",") }
func (f *fileList) Set(v string) error { *f = append(*f, v); return nil }

func runDataInspect(args []string) error {
	fs := newFlags("data inspect", `golem data inspect --data train.jsonl --show 2`)
	var files fileList
	fs.Var(&files, "data", "data file: JSON array or JSON lines, optionally .gz (repeat for several)")
	format := fs.String("format", "", "force the format: "+formatNames()+" (default: detect from the first record)")
	show := fs.Int("show", 1, "number of examples to print")
	if err := parseWithArgs(fs, args); err != nil {
		return err
	}
	files = append(files, fs.Args()...)
	if len(files) == 0 {
		return usageError{errors.New("data inspect: need --data FILE (golem data inspect --help)")}
	}
	ds, err := data.ReadAll(files, data.ReadOptions{Format: data.Format(*format)})
	if err != nil {
		return err
	}
	w := os.Stdout
	for _, s := range ds.Files {
		fmt.Fprintf(w, "%s\n  format    %s (%s)\n  records   %d read, 0 rejected\n  examples  %d", s.File, s.Format, s.Shape, s.Records, s.Examples)
		for _, k := range sortedKinds(s.Kinds) {
			fmt.Fprintf(w, "  %s %d", k, s.Kinds[k])
		}
		fmt.Fprintln(w)
	}
	st := data.Describe(ds.Examples)
	if len(ds.Files) > 1 {
		fmt.Fprintf(w, "total\n  records   %d\n  examples  %d\n", ds.Records(), st.Examples)
	}
	fmt.Fprintf(w, "  standard  %d plain-text, %d conversational\n", st.Plain, st.Examples-st.Plain)
	fmt.Fprintf(w, "  turns     min %d, mean %.2f, max %d (messages per conversation)\n", st.MinTurns, st.MeanTurns, st.MaxTurns)
	fmt.Fprintf(w, "  roles    ")
	for _, role := range []string{"system", "user", "assistant"} {
		fmt.Fprintf(w, " %s %d", role, st.Roles[role])
	}
	fmt.Fprintf(w, "\n  size      mean %.0f, max %d bytes per conversation\n", st.MeanBytes, st.MaxBytes)
	if st.MaxAnswers > 0 {
		fmt.Fprintf(w, "  answers   %d to %d per ranking (%d pairs from all rankings)\n", st.MinAnswers, st.MaxAnswers, countPairs(ds.Examples))
	}
	for i := 0; i < *show && i < len(ds.Examples); i++ {
		fmt.Fprintf(w, "\nexample %d: %s", i+1, ds.Examples[i].Render())
	}
	return nil
}

func formatNames() string {
	var names []string
	for _, f := range data.Formats() {
		names = append(names, string(f))
	}
	return strings.Join(names, ", ")
}

func sortedKinds(m map[data.Kind]int) []data.Kind {
	var ks []data.Kind
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}

func countPairs(exs []data.Example) int {
	n := 0
	for i := range exs {
		if exs[i].Kind == data.Ranking {
			n += len(data.RankingPairs(exs[i].Ranking))
		}
	}
	return n
}
