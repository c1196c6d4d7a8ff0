package main

import (
	"os"
	"runtime/pprof"
)

// startProfile writes a CPU profile to the file named by GOLEM_CPUPROFILE,
// if set; the returned function stops it.
func startProfile() func() {
	p := os.Getenv("GOLEM_CPUPROFILE")
	if p == "" {
		return func() {}
	}
	f, err := os.Create(p)
	if err != nil {
		return func() {}
	}
	pprof.StartCPUProfile(f)
	return func() { pprof.StopCPUProfile(); f.Close() }
}
