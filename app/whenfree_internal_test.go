package app

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/patchctl/patchctl/config"
	"github.com/patchctl/patchctl/rollout"
	"github.com/patchctl/patchctl/store"
)

// An operation accepted while the daemon's start-up recovery holds its host waits for the
// recovery and says so, once; a host that a rollout took in the meantime is refused, naming
// the rollout, instead of being deployed over.
func TestWhenFree(t *testing.T) {
	dir := t.TempDir()
	cfg, err := config.Parse(filepath.Join(dir, "patchctl.yml"), strings.NewReader("data_dir: "+dir+"\nmetrics:\n  listen: \"\"\n"))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	a, err := Open(ctx, cfg, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()

	run := func(busy int) (OpInfo, []OpEvent, error) {
		calls := 0
		var res error
		op, err := a.ops.Start("deploy", []string{"h1"}, "test", func(ctx context.Context, op *Op) (any, error) {
			_, err := a.whenFree(ctx, op, "h1", false, func() (rollout.Result, error) {
				calls++
				if calls <= busy {
					return rollout.Result{}, fmt.Errorf("host h1: %w", rollout.ErrBusy)
				}
				return rollout.Result{Unchanged: true}, nil
			})
			res = err
			return struct{}{}, err
		})
		if err != nil {
			t.Fatal(err)
		}
		<-op.Done()
		evs, _, _ := op.Events(0)
		if res == nil && calls != busy+1 {
			t.Fatalf("%d calls, want %d (busy %d times, then free)", calls, busy+1, busy)
		}
		return op.Info(), evs, res
	}
	waits := func(evs []OpEvent) (n int) {
		for _, e := range evs {
			if strings.Contains(e.Message, "waiting for the daemon's recovery") {
				n++
			}
		}
		return n
	}

	info, evs, err := run(3)
	if err != nil || info.State != OpSucceeded || waits(evs) != 1 {
		t.Fatalf("busy 3 times: %s, %v, %d waiting events (want succeeded, one)", info.State, err, waits(evs))
	}
	if _, evs, err := run(0); err != nil || waits(evs) != 0 {
		t.Fatalf("free host: %v, %d waiting events", err, waits(evs))
	}

	if err := a.store.Update(ctx, func(tx *store.Tx) error {
		if err := tx.PutRollout(store.Rollout{ID: "r-test", Version: "0.5.0", State: "running"}); err != nil {
			return err
		}
		return tx.PutLease("h1", "r-test")
	}); err != nil {
		t.Fatal(err)
	}
	if info, _, err := run(1); err == nil || !strings.Contains(err.Error(), "rollout r-test") || info.State != OpFailed {
		t.Fatalf("busy host inside a rollout: %s, %v; want a refusal naming r-test", info.State, err)
	}
}
