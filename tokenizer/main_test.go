package tokenizer

import (
	"os"
	"testing"
)

// TestMain removes the folder of the SentencePiece models the tests
// trained (spTrain's, one for the test binary).
func TestMain(m *testing.M) {
	code := m.Run()
	if spModels.dir != "" {
		os.RemoveAll(spModels.dir)
	}
	os.Exit(code)
}
