package inventory_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/patchctl/patchctl/internal/testenv"
	"github.com/patchctl/patchctl/inventory"
	"github.com/patchctl/patchctl/transport"
)

// execRunner runs commands on this machine. It stands in for transport.Local, which is
// written in parallel; at merge, dialLocal returns transport.Local instead.
type execRunner struct{}

var _ inventory.Runner = execRunner{}

func (execRunner) Run(ctx context.Context, argv []string, stdin io.Reader) (transport.Result, error) {
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = stdin, &stdout, &stderr
	err := cmd.Run()
	res := transport.Result{Stdout: stdout.Bytes(), Stderr: stderr.Bytes()}
	var ee *exec.ExitError
	if errors.As(err, &ee) && ctx.Err() == nil {
		return res, &transport.ExitError{Argv: argv, Status: ee.ExitCode(), Stderr: strings.TrimSpace(stderr.String())}
	}
	if err != nil {
		return res, fmt.Errorf("run %s: %w", argv[0], err)
	}
	return res, nil
}

func (execRunner) Close() error { return nil }

func dialLocal(ctx context.Context, spec transport.Spec) (inventory.Runner, error) {
	if spec.Kind != "local" {
		return nil, fmt.Errorf("transport %q not available in tests", spec.Kind)
	}
	return execRunner{}, nil
}

// testRunner is the conformance suite for inventory.Runner: what discovery relies on.
func testRunner(t *testing.T, dial inventory.DialFunc) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	r, err := dial(ctx, transport.Spec{Kind: "local"})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	t.Run("version on stderr", func(t *testing.T) {
		res, err := r.Run(ctx, []string{testenv.Nutcracker(t, "0.5.0"), "-V"}, nil)
		if err != nil || !bytes.HasPrefix(res.Stderr, []byte("This is nutcracker-0.5.0\n")) || len(res.Stdout) != 0 {
			t.Fatalf("Run = %q / %q, %v", res.Stdout, res.Stderr, err)
		}
	})
	t.Run("exit status", func(t *testing.T) {
		res, err := r.Run(ctx, []string{testenv.Nutcracker(t, "0.5.0"), "-Z"}, nil)
		var ee *transport.ExitError
		if !errors.As(err, &ee) || ee.Status != 1 || len(res.Stderr) == 0 {
			t.Fatalf("Run = %q, %v; want *transport.ExitError status 1", res.Stderr, err)
		}
	})
	t.Run("stdin", func(t *testing.T) {
		res, err := r.Run(ctx, []string{"cat"}, strings.NewReader("hello"))
		if err != nil || string(res.Stdout) != "hello" {
			t.Fatalf("Run = %q, %v", res.Stdout, err)
		}
	})
	t.Run("deadline", func(t *testing.T) {
		short, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
		defer cancel()
		start := time.Now()
		if _, err := r.Run(short, []string{"sleep", "5"}, nil); err == nil {
			t.Fatal("no error past the deadline")
		}
		if d := time.Since(start); d > 3*time.Second {
			t.Errorf("took %s", d)
		}
	})
	t.Run("missing binary", func(t *testing.T) {
		if _, err := r.Run(ctx, []string{"/nonexistent/nutcracker", "-V"}, nil); err == nil {
			t.Fatal("no error")
		}
	})
}

func TestExecRunner(t *testing.T) { testRunner(t, dialLocal) }
