package slack

import (
	"flag"
	"os"
	"path/filepath"
	"testing"
)

var update = flag.Bool("update", false, "rewrite testdata golden files")

// readGolden returns testdata/name, first writing got to it under -update.
func readGolden(t *testing.T, name string, got []byte) ([]byte, error) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			return nil, err
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			return nil, err
		}
	}
	return os.ReadFile(path)
}
