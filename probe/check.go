package probe

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"sync"
	"time"
)

// Ping connects to a target and sends one redis PING (after AUTH when set) or memcached
// version. It returns the round trip of that command.
func Ping(ctx context.Context, t Target) (time.Duration, error) {
	r := check(ctx, t)
	return r.Latency, r.Err
}

// Canary writes a random value under key with a short TTL, reads it back and deletes it.
func Canary(ctx context.Context, t Target, key string) error {
	c, err := Dial(ctx, t)
	if err != nil {
		return err
	}
	defer c.Close()
	token := make([]byte, 8)
	_, _ = rand.Read(token)
	value := []byte("patchctl-canary-" + hex.EncodeToString(token))
	keys := []string{key}
	if err := c.Set(ctx, keys, value, time.Minute); err != nil {
		return err
	}
	got, err := c.Get(ctx, keys)
	if err != nil {
		return err
	}
	if string(got[0]) != string(value) {
		return &Error{Addr: t.Addr, Protocol: t.Protocol, Op: "get",
			Err: fmt.Errorf("key %q: got %q, want %q: %w", key, got[0], value, ErrMismatch)}
	}
	return c.Delete(ctx, keys)
}

// Result is the outcome of checking one target.
type Result struct {
	Target  Target
	Connect time.Duration // TCP connect time
	Latency time.Duration // round trip of PING or version
	Err     error         // an *Error naming the address and the failed step
}

// CheckAll connects to every target and pings it, at most concurrency at a time, each within
// its own timeout. Results are in the order of targets.
func CheckAll(ctx context.Context, targets []Target, concurrency int) []Result {
	results := make([]Result, len(targets))
	sem := make(chan struct{}, max(concurrency, 1))
	var wg sync.WaitGroup
	for i, t := range targets {
		wg.Add(1)
		go func() {
			defer wg.Done()
			select {
			case sem <- struct{}{}:
				defer func() { <-sem }()
				results[i] = check(ctx, t)
			case <-ctx.Done():
				results[i] = Result{Target: t, Err: &Error{Addr: t.Addr, Protocol: t.Protocol, Op: "connect", Err: ctx.Err()}}
			}
		}()
	}
	wg.Wait()
	return results
}

func check(ctx context.Context, t Target) Result {
	r := Result{Target: t}
	c, err := Dial(ctx, t)
	if err != nil {
		r.Err = err
		return r
	}
	defer c.Close()
	r.Connect = c.ConnectTime()
	start := time.Now()
	if r.Err = c.Ping(ctx); r.Err == nil {
		r.Latency = time.Since(start)
	}
	return r
}
