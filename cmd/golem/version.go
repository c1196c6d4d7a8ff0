package main

import (
	"fmt"
	"io"
	"os"
	"runtime"
	"runtime/debug"

	"github.com/golem-ml/golem/backend/cpu"
)

func init() {
	register("version", "print golem's module version and commit, the Go version, and the CPU kernels in use", runVersion)
}

func runVersion(args []string) error {
	fs := newFlags("version", "golem version")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	writeVersion(os.Stdout)
	return nil
}

// writeVersion writes golem's version: the module version and commit the
// binary was built from (from its build information; "(devel)" and
// "unknown" for a build outside a module or a git checkout), the Go
// version, the platform and the CPU kernels this machine runs.
func writeVersion(w io.Writer) {
	version, commit, modified := "unknown", "unknown", ""
	if bi, ok := debug.ReadBuildInfo(); ok {
		version = bi.Main.Version
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				commit = s.Value
			case "vcs.modified":
				if s.Value == "true" {
					modified = " (modified)"
				}
			}
		}
	}
	fmt.Fprintf(w, "golem %s\ncommit %s%s\n%s %s/%s\ncpu %d threads, %s\n", version, commit, modified,
		runtime.Version(), runtime.GOOS, runtime.GOARCH, cpu.Threads(), cpu.Features())
}
