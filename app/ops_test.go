package app_test

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/patchctl/patchctl/app"
)

func newRunner() *app.Runner { return app.NewRunner(slog.New(slog.DiscardHandler), time.Now) }

// wait returns the operation's done event, failing the test after a generous bound.
func wait(t *testing.T, o *app.Op) app.OpEvent {
	t.Helper()
	select {
	case <-o.Done():
	case <-time.After(30 * time.Second):
		t.Fatalf("operation %s did not end", o.ID())
	}
	evs, ended, _ := o.Events(0)
	if !ended {
		t.Fatalf("operation %s is done without a done event: %+v", o.ID(), evs)
	}
	return evs[len(evs)-1]
}

func TestRunnerOneOperationPerHost(t *testing.T) {
	r := newRunner()
	defer r.Shutdown(t.Context())
	release := make(chan struct{})
	first, err := r.Start("deploy", []string{"h1"}, "uid 1", func(ctx context.Context, op *app.Op) (any, error) {
		<-release
		return "ok", nil
	})
	if err != nil {
		t.Fatal(err)
	}
	_, err = r.Start("rollback", []string{"h2", "h1"}, "uid 2", func(context.Context, *app.Op) (any, error) { return nil, nil })
	if err == nil || !strings.Contains(err.Error(), "host h1 is busy") || !strings.Contains(err.Error(), first.ID()) {
		t.Fatalf("second operation on h1: %v", err)
	}
	// All or none: h2 was not taken by the refused operation.
	other, err := r.Start("deploy", []string{"h2"}, "uid 2", func(context.Context, *app.Op) (any, error) { return nil, nil })
	if err != nil {
		t.Fatalf("h2 is free: %v", err)
	}
	wait(t, other)
	// A fleet operation takes hosts as it goes.
	fleet, err := r.Start("rollout", nil, "uid 3", func(ctx context.Context, op *app.Op) (any, error) {
		if _, err := op.Acquire("h1"); err == nil {
			return nil, errors.New("acquired a busy host")
		}
		rel, err := op.Acquire("h3")
		if err != nil {
			return nil, err
		}
		if _, err := r.Start("deploy", []string{"h3"}, "uid 4", func(context.Context, *app.Op) (any, error) { return nil, nil }); err == nil {
			return nil, errors.New("h3 taken twice")
		}
		rel()
		return "done", nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if e := wait(t, fleet); e.State != app.OpSucceeded {
		t.Fatalf("fleet operation: %+v", e)
	}
	close(release)
	if e := wait(t, first); e.State != app.OpSucceeded || string(e.Result) != `"ok"` {
		t.Fatalf("done = %+v", e)
	}
	if _, err := r.Start("deploy", []string{"h1", "h3"}, "uid 1", func(context.Context, *app.Op) (any, error) { return nil, nil }); err != nil {
		t.Fatalf("hosts not released at the end: %v", err)
	}
}

func TestRunnerEventsAbortAndShutdown(t *testing.T) {
	r := newRunner()
	started := make(chan struct{})
	o, err := r.Start("deploy", []string{"h1"}, "uid 1 (alice)", func(ctx context.Context, op *app.Op) (any, error) {
		op.Emit(app.OpEvent{Type: app.EventStep, Host: "h1", Step: "install"})
		close(started)
		<-ctx.Done()
		return nil, context.Cause(ctx)
	})
	if err != nil {
		t.Fatal(err)
	}
	<-started
	// A follower that goes away changes nothing.
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := o.Follow(ctx, 0, func(app.OpEvent) error { return nil }); !errors.Is(err, context.Canceled) {
		t.Fatalf("Follow with a cancelled ctx: %v", err)
	}
	if o.Info().State != app.OpRunning {
		t.Fatal("a follower leaving ended the operation")
	}
	if _, err := r.Abort(o.ID(), "uid 2 (bob)"); err != nil {
		t.Fatal(err)
	}
	done := wait(t, o)
	if done.State != app.OpAborted || !strings.Contains(done.Message, app.ErrAborted.Error()) {
		t.Fatalf("aborted operation: %+v", done)
	}
	var types []string
	if err := o.Follow(t.Context(), 0, func(e app.OpEvent) error {
		types = append(types, e.Type+":"+e.By)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if got, want := strings.Join(types, " "), "accepted:uid 1 (alice) step: info:uid 2 (bob) done:"; got != want {
		t.Fatalf("events = %s, want %s", got, want)
	}
	if evs, _, _ := o.Events(3); len(evs) != 1 || evs[0].Type != app.EventDone {
		t.Fatalf("events after 3: %+v", evs)
	}
	if _, err := r.Abort(o.ID(), "uid 2"); err == nil || !strings.Contains(err.Error(), "already ended") {
		t.Fatalf("abort of a finished operation: %v", err)
	}
	var ae *app.Error
	if _, err := r.Abort("op-nope", "uid 2"); !errors.As(err, &ae) || ae.Kind != app.KindUsage {
		t.Fatalf("abort of an unknown operation: %v", err)
	}

	// A panic fails the operation, not the daemon.
	p, err := r.Start("deploy", []string{"h1"}, "uid 1", func(context.Context, *app.Op) (any, error) { panic("bug") })
	if err != nil {
		t.Fatal(err)
	}
	if e := wait(t, p); e.State != app.OpFailed || e.Error == nil || !strings.Contains(e.Error.Msg, "internal error: bug") {
		t.Fatalf("panicked operation: %+v", e)
	}

	// Shutdown cancels what runs and refuses what comes.
	long, err := r.Start("deploy", []string{"h1"}, "uid 1", func(ctx context.Context, _ *app.Op) (any, error) {
		<-ctx.Done()
		return nil, ctx.Err()
	})
	if err != nil {
		t.Fatal(err)
	}
	r.Shutdown(t.Context())
	if e := wait(t, long); e.State != app.OpFailed {
		t.Fatalf("operation at shutdown: %+v", e)
	}
	if _, err := r.Start("deploy", nil, "uid 1", nil); !errors.Is(err, app.ErrStopping) {
		t.Fatalf("Start after Shutdown: %v", err)
	}
	if n := len(r.List()); n != 3 {
		t.Fatalf("List has %d operations, want 3", n)
	}
}
