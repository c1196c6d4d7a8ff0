// Command bench runs golem's benchmarks side by side with their peers in one
// process run. Each benchmark ends with a line "ratio=X" (golem / peer, higher
// is better). Usage: go run ./bench NAME [flags]. Each benchmark registers
// itself in init from its own file.
package main

import (
	"fmt"
	"os"
	"sort"
)

var benches = map[string]func(args []string) error{}

func register(name string, run func(args []string) error) {
	if _, dup := benches[name]; dup {
		panic("bench registered twice: " + name)
	}
	benches[name] = run
}

func main() {
	setOpenBLASCore()
	if len(os.Args) < 2 {
		names := make([]string, 0, len(benches))
		for n := range benches {
			names = append(names, n)
		}
		sort.Strings(names)
		fmt.Fprintf(os.Stderr, "usage: go run ./bench NAME [flags]\nbenchmarks: %v\n", names)
		os.Exit(2)
	}
	run, ok := benches[os.Args[1]]
	if !ok {
		fmt.Fprintf(os.Stderr, "bench: unknown benchmark %q\n", os.Args[1])
		os.Exit(2)
	}
	if err := run(os.Args[2:]); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}
