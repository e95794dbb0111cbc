package prockill_test

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/patchctl/patchctl/internal/prockill"
)

// start runs sleep through a link named under dir, so its command line starts there.
func start(t *testing.T, dir string) *exec.Cmd {
	t.Helper()
	sleep, err := exec.LookPath("sleep")
	if err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "sleep")
	if err := os.Symlink(sleep, link); err != nil {
		t.Fatal(err)
	}
	c := exec.Command(link, "300")
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Process.Kill(); c.Wait() })
	return c
}

func TestUnderKillsOnlyProcessesUnderDir(t *testing.T) {
	base := t.TempDir()
	in, out := filepath.Join(base, "hosts"), filepath.Join(base, "hosts-other")
	for _, d := range []string{in, out} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	victim, bystander := start(t, in), start(t, out)
	done := make(chan error, 1)
	go func() { done <- victim.Wait() }()

	prockill.Under(in)

	select {
	case err := <-done:
		var exit *exec.ExitError
		if !errors.As(err, &exit) || exit.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
			t.Fatalf("the process under %s ended with %v, want SIGKILL", in, err)
		}
	case <-time.After(60 * time.Second):
		t.Fatalf("the process under %s still runs", in)
	}
	// A directory whose name only starts like dir is not under it.
	if err := bystander.Process.Signal(syscall.Signal(0)); err != nil {
		t.Fatalf("the process under %s was ended too: %v", out, err)
	}
}
