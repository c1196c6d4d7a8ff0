package main

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"syscall"

	"github.com/ebitengine/purego"
	"golang.org/x/sys/cpu"
)

// OpenBLAS, the peer of golem's SGEMM, opened at run time with purego (no
// cgo). Debian's OpenMP build is used; OpenBLAS 0.3.21 does not know these
// CPUs (it took a Sapphire Rapids under KVM for a Prescott) and must be
// told which kernels to use through OPENBLAS_CORETYPE, which it reads when
// the library loads: SkylakeX's (AVX-512) where the CPU has AVX-512,
// Haswell's (AVX2 and FMA) where it has only those. The PyTorch peers read
// the same variable (their --tuned keeps a value already set), so the
// benchmarks set it for them too (setOpenBLASCore): SkylakeX on an AVX2-only
// AMD EPYC stopped the peer with an illegal instruction.

const (
	openBLASPath     = "/usr/lib/x86_64-linux-gnu/openblas-openmp/libopenblas.so.0"
	openBLASApt      = "apt-get install -y libopenblas0-openmp"
	cblasRowMajor    = 101
	cblasNoTrans     = 111
	cblasTrans       = 112
	openBLASCoreType = "OPENBLAS_CORETYPE"
)

// openBLASCore is the OpenBLAS core type for this CPU's vector units.
var openBLASCore = func() string {
	if cpu.X86.HasAVX512F {
		return "SkylakeX"
	}
	return "Haswell"
}()

// coreInherited is the OPENBLAS_CORETYPE this process started with: the
// one a library it opens sees (os.Setenv does not reach it without cgo).
var coreInherited string

// setOpenBLASCore sets OPENBLAS_CORETYPE for the peers this process runs,
// unless the user set it.
func setOpenBLASCore() {
	coreInherited = os.Getenv(openBLASCoreType)
	if coreInherited == "" {
		os.Setenv(openBLASCoreType, openBLASCore)
	}
}

type openBLAS struct {
	sgemm      func(order, transA, transB, m, n, k int32, alpha float32, a *float32, lda int32, b *float32, ldb int32, beta float32, c *float32, ldc int32)
	setThreads func(n int32)
	corename   func() string
	config     func() string
}

// ensureOpenBLASEnv re-executes the running program with OPENBLAS_CORETYPE
// set to openBLASCore (replacing any other value) when it is not, so that the
// library sees it at load time. It returns nil only when the variable is
// already right.
func ensureOpenBLASEnv() error {
	if coreInherited == openBLASCore {
		return nil
	}
	if os.Getenv("GOLEM_BENCH_REEXEC") != "" {
		return fmt.Errorf("%s is %q after re-executing, want %q", openBLASCoreType, os.Getenv(openBLASCoreType), openBLASCore)
	}
	env := []string{openBLASCoreType + "=" + openBLASCore, "GOLEM_BENCH_REEXEC=1"}
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, openBLASCoreType+"=") {
			env = append(env, kv)
		}
	}
	err := syscall.Exec("/proc/self/exe", os.Args, env)
	return fmt.Errorf("re-executing /proc/self/exe with %s=%s: %w", openBLASCoreType, openBLASCore, err)
}

// loadOpenBLAS opens OpenBLAS and checks that it runs openBLASCore's kernels.
func loadOpenBLAS() (*openBLAS, error) {
	if _, err := os.Stat(openBLASPath); err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("OpenBLAS not found at %s; install it with: %s", openBLASPath, openBLASApt)
		}
		return nil, err
	}
	lib, err := purego.Dlopen(openBLASPath, purego.RTLD_NOW|purego.RTLD_GLOBAL)
	if err != nil {
		return nil, fmt.Errorf("opening %s: %w (install it with: %s)", openBLASPath, err, openBLASApt)
	}
	var o openBLAS
	for name, fn := range map[string]any{
		"cblas_sgemm":              &o.sgemm,
		"openblas_set_num_threads": &o.setThreads,
		"openblas_get_corename":    &o.corename,
		"openblas_get_config":      &o.config,
	} {
		sym, err := purego.Dlsym(lib, name)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", openBLASPath, err)
		}
		purego.RegisterFunc(fn, sym)
	}
	if core := o.corename(); core != openBLASCore {
		return nil, fmt.Errorf("OpenBLAS reports core %q, want %q (is %s=%s reaching it?)", core, openBLASCore, openBLASCoreType, openBLASCore)
	}
	return &o, nil
}

// Sgemm is cblas_sgemm on row-major matrices, with golem's argument order.
func (o *openBLAS) Sgemm(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	t := func(b bool) int32 {
		if b {
			return cblasTrans
		}
		return cblasNoTrans
	}
	o.sgemm(cblasRowMajor, t(transA), t(transB), int32(m), int32(n), int32(k), alpha, &a[0], int32(lda), &b[0], int32(ldb), beta, &c[0], int32(ldc))
}
