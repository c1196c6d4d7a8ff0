package train

import (
	"encoding/json"
	"os"
	"path/filepath"
	"sort"
)

const metricsFile = "metrics.jsonl"

// metricsLog appends one JSON object per line to OUT/metrics.jsonl.
type metricsLog struct{ f *os.File }

func openMetrics(dir string, resume bool) (*metricsLog, error) {
	if dir == "" {
		return &metricsLog{}, nil
	}
	flag := os.O_CREATE | os.O_WRONLY | os.O_TRUNC
	if resume {
		flag = os.O_CREATE | os.O_WRONLY | os.O_APPEND
	}
	f, err := os.OpenFile(filepath.Join(dir, metricsFile), flag, 0o644)
	if err != nil {
		return nil, err
	}
	return &metricsLog{f: f}, nil
}

func (m *metricsLog) write(rec map[string]any) {
	if m.f == nil {
		return
	}
	b, err := json.Marshal(rec)
	if err == nil {
		m.f.Write(append(b, '\n'))
	}
}

func (m *metricsLog) Close() error {
	if m.f == nil {
		return nil
	}
	return m.f.Close()
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
