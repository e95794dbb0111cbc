package readfile_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/patchctl/patchctl/internal/readfile"
)

func TestRead(t *testing.T) {
	dir := t.TempDir()
	small := filepath.Join(dir, "small")
	if err := os.WriteFile(small, []byte("0123456789"), 0o600); err != nil {
		t.Fatal(err)
	}
	empty, large := filepath.Join(dir, "empty"), filepath.Join(dir, "large")
	long := strings.Repeat("0123456789", 1000)
	if err := os.WriteFile(empty, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(large, []byte(long), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name  string
		path  string
		limit int64
		want  string
		is    error
		msg   string
	}{
		{"within", small, 10, "0123456789", nil, ""},
		{"empty", empty, 10, "", nil, ""},
		{"larger than the first buffer", large, 1 << 20, long, nil, ""},
		{"large, over the limit", large, 9999, "", readfile.ErrTooLarge, large + ": too large: more than 9999 bytes"},
		{"over by one", small, 9, "", readfile.ErrTooLarge, small + ": too large: more than 9 bytes"},
		// A device that never ends: the cap, not the end of input, stops the read.
		{"endless", "/dev/zero", 1 << 20, "", readfile.ErrTooLarge, "/dev/zero: too large: more than 1 MiB"},
		{"missing", filepath.Join(dir, "absent"), 10, "", os.ErrNotExist, "absent"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := readfile.Read(tt.path, tt.limit)
			if tt.is == nil {
				if err != nil || string(got) != tt.want {
					t.Fatalf("Read = %q, %v; want %q", got, err, tt.want)
				}
				return
			}
			if !errors.Is(err, tt.is) || !strings.Contains(err.Error(), tt.msg) {
				t.Fatalf("err = %v, want %v saying %q", err, tt.is, tt.msg)
			}
		})
	}
}

func TestSize(t *testing.T) {
	for n, want := range map[int64]string{300: "300 bytes", 64 << 10: "64 KiB", 16 << 20: "16 MiB", 1500: "1500 bytes"} {
		if got := readfile.Size(n); got != want {
			t.Errorf("Size(%d) = %q, want %q", n, got, want)
		}
	}
}
