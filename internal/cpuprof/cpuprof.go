// Package cpuprof writes a CPU profile to the file named by the
// GOLEM_CPUPROFILE environment variable: `golem` profiles a whole command
// with it, the benchmarks their timed phases.
package cpuprof

import (
	"fmt"
	"os"
	"runtime/pprof"
)

// Start starts a CPU profile into the file GOLEM_CPUPROFILE names, if it
// is set, and returns the function that stops it and closes the file. A
// file that cannot be written is reported on stderr, prefixed by who,
// and nothing is profiled.
func Start(who string) (stop func()) {
	p := os.Getenv("GOLEM_CPUPROFILE")
	if p == "" {
		return func() {}
	}
	f, err := os.Create(p)
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s: GOLEM_CPUPROFILE: %v\n", who, err)
		return func() {}
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		fmt.Fprintf(os.Stderr, "%s: GOLEM_CPUPROFILE: %v\n", who, err)
		f.Close()
		return func() {}
	}
	return func() { pprof.StopCPUProfile(); f.Close() }
}
