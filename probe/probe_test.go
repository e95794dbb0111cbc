package probe

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/patchctl/patchctl/internal/testenv"
)

// targets starts one of each kind of target the probes must work against: redis and
// memcached directly, with a password, and through nutcracker 0.5.0.
func targets(t *testing.T) map[string]Target {
	t.Helper()
	r := testenv.Redis(t)
	ra := testenv.Redis(t, "--requirepass", "s3cret")
	m := testenv.Memcached(t)
	rl, ml := testenv.Addr(testenv.FreePort(t)), testenv.Addr(testenv.FreePort(t))
	conf := fmt.Sprintf(`r:
  listen: %s
  redis: true
  redis_auth: s3cret
  servers:
   - %s:1
m:
  listen: %s
  servers:
   - %s:1
`, rl, ra.Addr, ml, m.Addr)
	testenv.StartNutcracker(t, "0.5.0", conf, rl, ml)
	return map[string]Target{
		"redis":               {Addr: r.Addr, Protocol: Redis},
		"redis db 3":          {Addr: r.Addr, Protocol: Redis, DB: 3},
		"redis auth":          {Addr: ra.Addr, Protocol: Redis, Auth: "s3cret"},
		"memcache":            {Addr: m.Addr, Protocol: Memcache},
		"nutcracker redis":    {Addr: rl, Protocol: Redis, Auth: "s3cret"},
		"nutcracker memcache": {Addr: ml, Protocol: Memcache},
	}
}

// TestStores is the conformance suite every store implementation passes, directly and through
// nutcracker.
func TestStores(t *testing.T) {
	ctx := context.Background()
	for name, tg := range targets(t) {
		t.Run(name, func(t *testing.T) {
			c, err := Dial(ctx, tg)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if err := c.Ping(ctx); err != nil {
				t.Fatal(err)
			}
			keys := make([]string, 300) // more than one batch
			for i := range keys {
				keys[i] = fmt.Sprintf("probe-test:%s:%d", strings.ReplaceAll(name, " ", "-"), i)
			}
			if err := c.Set(ctx, keys, []byte("v"), time.Minute); err != nil {
				t.Fatal(err)
			}
			vals, err := c.Get(ctx, append(keys, "probe-test:absent"))
			if err != nil {
				t.Fatal(err)
			}
			if len(vals) != len(keys)+1 {
				t.Fatalf("Get returned %d values, want %d", len(vals), len(keys)+1)
			}
			for i, v := range vals[:len(keys)] {
				if string(v) != "v" {
					t.Fatalf("Get(%s) = %q, want v", keys[i], v)
				}
			}
			if vals[len(keys)] != nil {
				t.Fatalf("Get(absent) = %q, want nil", vals[len(keys)])
			}
			if err := c.Delete(ctx, append(keys, "probe-test:absent")); err != nil {
				t.Fatal(err)
			}
			vals, err = c.Get(ctx, keys[:3])
			if err != nil {
				t.Fatal(err)
			}
			for i, v := range vals {
				if v != nil {
					t.Fatalf("after Delete, Get(%s) = %q, want nil", keys[i], v)
				}
			}
			if err := Canary(ctx, tg, "probe-test:canary"); err != nil {
				t.Fatal(err)
			}
			if _, err := Ping(ctx, tg); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestErrors(t *testing.T) {
	ctx := context.Background()
	ra := testenv.Redis(t, "--requirepass", "s3cret")
	dead := testenv.Addr(testenv.FreePort(t))

	// A server that accepts and never answers (it reads until the client hangs up).
	silent := testenv.ServeTCP(t, func(c net.Conn) { io.Copy(io.Discard, c) })

	for _, tc := range []struct {
		name   string
		target Target
		op     string
		is     error
	}{
		{"refused", Target{Addr: dead, Protocol: Redis}, "connect", syscall.ECONNREFUSED},
		{"memcache refused", Target{Addr: dead, Protocol: Memcache}, "connect", syscall.ECONNREFUSED},
		{"wrong password", Target{Addr: ra.Addr, Protocol: Redis, Auth: "nope"}, "auth", nil},
		{"no password", Target{Addr: ra.Addr, Protocol: Redis}, "ping", nil},
		{"silent redis", Target{Addr: silent, Protocol: Redis, Timeout: 200 * time.Millisecond}, "ping", nil},
		{"silent memcache", Target{Addr: silent, Protocol: Memcache, Timeout: 200 * time.Millisecond}, "ping", nil},
		{"bad protocol", Target{Addr: dead, Protocol: "http"}, "connect", ErrProtocol},
	} {
		t.Run(tc.name, func(t *testing.T) {
			start := time.Now()
			_, err := Ping(ctx, tc.target)
			var pe *Error
			if !errors.As(err, &pe) {
				t.Fatalf("Ping error = %v, want *probe.Error", err)
			}
			if pe.Op != tc.op || pe.Addr != tc.target.Addr {
				t.Errorf("error %q: op %q addr %q, want op %q addr %q", err, pe.Op, pe.Addr, tc.op, tc.target.Addr)
			}
			if !strings.Contains(err.Error(), tc.target.Addr) {
				t.Errorf("error %q does not name the address", err)
			}
			if tc.is != nil && !errors.Is(err, tc.is) {
				t.Errorf("error %q is not %v", err, tc.is)
			}
			if d := time.Since(start); d > testenv.WaitTimeout {
				t.Errorf("took %s, want the timeout to bound it", d)
			}
		})
	}
}

func TestCheckAll(t *testing.T) {
	ctx := context.Background()
	r := testenv.Redis(t)
	m := testenv.Memcached(t)
	dead := testenv.Addr(testenv.FreePort(t))
	in := []Target{
		{Addr: r.Addr, Protocol: Redis},
		{Addr: dead, Protocol: Redis},
		{Addr: m.Addr, Protocol: Memcache},
		{Addr: r.Addr, Protocol: Memcache, Timeout: 300 * time.Millisecond}, // wrong protocol
	}
	got := CheckAll(ctx, in, 2)
	if len(got) != len(in) {
		t.Fatalf("%d results, want %d", len(got), len(in))
	}
	for i, res := range got {
		if res.Target != in[i] {
			t.Errorf("result %d is for %+v, want %+v", i, res.Target, in[i])
		}
		wantOK := i == 0 || i == 2
		if (res.Err == nil) != wantOK {
			t.Errorf("result %d (%s %s): err = %v, want ok=%v", i, res.Target.Protocol, res.Target.Addr, res.Err, wantOK)
		}
		if wantOK && (res.Latency <= 0 || res.Connect <= 0) {
			t.Errorf("result %d: connect %s latency %s, want both positive", i, res.Connect, res.Latency)
		}
	}

	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	for _, res := range CheckAll(cancelled, in[:1], 1) {
		if !errors.Is(res.Err, context.Canceled) {
			t.Errorf("with a cancelled context: err = %v, want context.Canceled", res.Err)
		}
	}
}
