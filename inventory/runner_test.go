package inventory_test

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/patchctl/patchctl/internal/testenv"
	"github.com/patchctl/patchctl/inventory"
	"github.com/patchctl/patchctl/transport"
)

// dialLocal reaches hosts through the real transports (local in these tests).
func dialLocal(ctx context.Context, spec transport.Spec) (inventory.Runner, error) {
	return transport.Dial(ctx, spec)
}

// testRunner is the conformance suite for inventory.Runner: what discovery relies on.
func testRunner(t *testing.T, dial inventory.DialFunc, spec transport.Spec) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*testenv.WaitTimeout)
	defer cancel()
	r, err := dial(ctx, spec)
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
		if _, err := r.Run(short, []string{"sleep", "300"}, nil); err == nil {
			t.Fatal("no error past the deadline")
		}
		// Only the deadline can end the command early.
		if d := time.Since(start); d > testenv.WaitTimeout {
			t.Errorf("took %s", d)
		}
	})
	t.Run("missing binary", func(t *testing.T) {
		if _, err := r.Run(ctx, []string{"/nonexistent/nutcracker", "-V"}, nil); err == nil {
			t.Fatal("no error")
		}
	})
}

func TestRunnerLocal(t *testing.T) { testRunner(t, dialLocal, transport.Spec{Kind: "local"}) }

// TestRunnerSSH runs the same checks through a real OpenSSH server: the -V fallback works on
// remote hosts.
func TestRunnerSSH(t *testing.T) {
	srv := testenv.SSHD(t)
	testRunner(t, dialLocal, transport.Spec{Kind: "ssh", Address: srv.Addr, User: srv.User,
		IdentityFile: srv.IdentityFile, KnownHosts: srv.KnownHosts, Timeout: testenv.WaitTimeout})
}
