package execx_test

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/patchctl/patchctl/internal/execx"
)

// A binary still open for writing cannot be executed; Run waits until the writer lets go.
func TestRunWaitsForWriter(t *testing.T) {
	p := filepath.Join(t.TempDir(), "prog")
	f, err := os.OpenFile(p, os.O_CREATE|os.O_WRONLY, 0o700)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString("#!/bin/sh\necho ran\n"); err != nil {
		t.Fatal(err)
	}
	// Without the retry the start fails: this is the condition Run exists for.
	if err := exec.Command(p).Run(); !errors.Is(err, syscall.ETXTBSY) {
		f.Close()
		t.Fatalf("exec of a file open for writing: %v, want ETXTBSY", err)
	}
	attempts := 0
	var out []byte
	err = execx.Run(context.Background(), func() *exec.Cmd {
		attempts++
		if attempts == 2 {
			f.Close() // the writer lets go after the first refused start
		}
		cmd := exec.Command(p)
		cmd.Stdout = writerFunc(func(b []byte) { out = append(out, b...) })
		return cmd
	})
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	if string(out) != "ran\n" || attempts != 2 {
		t.Errorf("output %q after %d attempts, want \"ran\\n\" after 2", out, attempts)
	}
}

// Other start errors are returned at once.
func TestRunOtherErrors(t *testing.T) {
	attempts := 0
	err := execx.Run(context.Background(), func() *exec.Cmd {
		attempts++
		return exec.Command(filepath.Join(t.TempDir(), "missing"))
	})
	if !errors.Is(err, os.ErrNotExist) || attempts != 1 {
		t.Errorf("Run = %v after %d attempts, want not-exist after 1", err, attempts)
	}
}

type writerFunc func([]byte)

func (w writerFunc) Write(b []byte) (int, error) { w(b); return len(b), nil }
