package main

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"syscall"

	"github.com/ebitengine/purego"
)

// OpenBLAS, the peer of golem's SGEMM, opened at run time with purego (no
// cgo). Debian's OpenMP build is used; OpenBLAS 0.3.21 does not know this
// CPU and must be told to use its SkylakeX (AVX-512) kernels through
// OPENBLAS_CORETYPE, which it reads when the library loads.

const (
	openBLASPath     = "/usr/lib/x86_64-linux-gnu/openblas-openmp/libopenblas.so.0"
	openBLASCore     = "SkylakeX"
	openBLASApt      = "apt-get install -y libopenblas0-openmp"
	cblasRowMajor    = 101
	cblasNoTrans     = 111
	cblasTrans       = 112
	openBLASCoreType = "OPENBLAS_CORETYPE"
)

type openBLAS struct {
	sgemm      func(order, transA, transB, m, n, k int32, alpha float32, a *float32, lda int32, b *float32, ldb int32, beta float32, c *float32, ldc int32)
	setThreads func(n int32)
	corename   func() string
	config     func() string
}

// ensureOpenBLASEnv re-executes the running program with OPENBLAS_CORETYPE
// set to SkylakeX (replacing any other value) when it is not, so that the
// library sees it at load time. It returns nil only when the variable is
// already right.
func ensureOpenBLASEnv() error {
	if os.Getenv(openBLASCoreType) == openBLASCore {
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

// loadOpenBLAS opens OpenBLAS and checks that it runs the SkylakeX kernels.
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
