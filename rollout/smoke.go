package rollout

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sort"
	"strings"
	"time"

	"github.com/patchctl/patchctl/nutcracker"
	"github.com/patchctl/patchctl/probe"
)

// pollEvery is how often readiness is polled: fine enough that a switch costs little
// more than nutcracker's own start-up.
const pollEvery = 2 * time.Millisecond

// snapshot is what a smoke test reads from the stats port.
type snapshot struct {
	Version  string
	Requests int64            // sum of the servers' requests, to tell a fresh snapshot
	Errors   map[string]int64 // "pool counter" or "pool/server counter" -> value
}

func fetchStats(ctx context.Context, addr string) (snapshot, error) {
	st, err := nutcracker.FetchStats(ctx, addr)
	if err != nil {
		return snapshot{}, err
	}
	s := snapshot{Version: st.Version, Errors: map[string]int64{}}
	for _, p := range st.Pools {
		s.Errors[p.Name+" client_err"] = p.ClientErr
		s.Errors[p.Name+" forward_error"] = p.ForwardError
		s.Errors[p.Name+" server_ejects"] = p.ServerEjects
		for _, sv := range p.Servers {
			s.Requests += sv.Requests
			s.Errors[p.Name+"/"+sv.Name+" server_err"] = sv.ServerErr
			s.Errors[p.Name+"/"+sv.Name+" server_timedout"] = sv.ServerTimedout
		}
	}
	return s, nil
}

// climbed lists the error counters that grew from a to b.
func climbed(a, b snapshot) []string {
	var out []string
	for k, v := range b.Errors {
		if v > a.Errors[k] {
			out = append(out, fmt.Sprintf("%s %d→%d", k, a.Errors[k], v))
		}
	}
	sort.Strings(out)
	return out
}

// poll calls f every pollEvery until it returns nil or ctx ends; it returns f's last error.
func poll(ctx context.Context, f func(ctx context.Context) error) error {
	t := time.NewTicker(pollEvery)
	defer t.Stop()
	for {
		err := f(ctx)
		if err == nil {
			return nil
		}
		if f, ok := err.(final); ok {
			return f.error
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w (after %s)", err, context.Cause(ctx))
		case <-t.C:
		}
	}
}

// downEvery bounds how often a smoke test whose stats port does not answer asks the host
// whether nutcracker has exited.
const downEvery = 100 * time.Millisecond

// smoke proves the proxy on a host runs version want and serves every pool. The version
// comes from the stats port's first answer and serving from canaries through every pool,
// so no refresh of nutcracker's stats snapshot is waited for; when one happened anyway,
// its error counters must not have climbed. down says why the proxy is not running, if it
// is known not to be.
func smoke(ctx context.Context, h HostSpec, pools []pool, want, opID string, timeout time.Duration, down func(context.Context) error) error {
	ctx, cancel := context.WithTimeoutCause(ctx, timeout, errors.New("smoke test deadline"))
	defer cancel()
	// A proxy just started needs a moment before its stats port answers: the first check
	// of whether it is down comes downEvery after the start, not at the first refusal.
	asked := time.Now()
	// orDown turns a failed attempt into the reason the proxy is down, once two looks in a
	// row agree: the restart returns as nutcracker's exec begins, so one look can fall
	// before the exec shows in the host's process list.
	seenDown := false
	orDown := func(ctx context.Context, err error) error {
		if err != nil && time.Since(asked) >= downEvery {
			asked = time.Now()
			derr := down(ctx)
			if derr != nil && seenDown {
				return final{derr}
			}
			seenDown = derr != nil
		}
		return err
	}
	var before snapshot
	var wrong error // a wrong version seen once is the news, whatever the last attempt met
	err := poll(ctx, func(ctx context.Context) error {
		s, err := fetchStats(ctx, h.StatsAddr)
		if err != nil {
			return orDown(ctx, err)
		}
		if s.Version != want {
			wrong = fmt.Errorf("stats %s answers version %s, want %s: %w", h.StatsAddr, s.Version, want, ErrWrongVersion)
			return wrong
		}
		before = s
		return nil
	})
	if err != nil && wrong != nil && !errors.Is(err, ErrWrongVersion) {
		err = fmt.Errorf("%w (then: %w)", wrong, err)
	}
	if err != nil {
		return fmt.Errorf("%w: %w", ErrSmoke, err)
	}
	for _, p := range pools {
		t := probe.Target{Addr: probeAddr(h, p), Protocol: probe.Memcache, Timeout: time.Second}
		if p.Redis {
			t.Protocol, t.Auth = probe.Redis, p.RedisAuth
		}
		key := "patchctl:smoke:" + opID + ":" + p.Name
		err := poll(ctx, func(ctx context.Context) error {
			// Redis gets a PING first; memcached's "version" is unsupported before 0.5.0.
			if p.Redis {
				if _, err := probe.Ping(ctx, t); err != nil {
					return orDown(ctx, err)
				}
			}
			return orDown(ctx, probe.Canary(ctx, t, key))
		})
		if err != nil {
			return fmt.Errorf("%w: pool %s: %w", ErrSmoke, p.Name, err)
		}
	}
	after, err := fetchStats(ctx, h.StatsAddr)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrSmoke, err)
	}
	if after.Version != want {
		return fmt.Errorf("%w: stats %s answers version %s after the canaries, want %s: %w", ErrSmoke, h.StatsAddr, after.Version, want, ErrWrongVersion)
	}
	if after.Requests > before.Requests {
		if c := climbed(before, after); len(c) > 0 {
			return fmt.Errorf("%w: stats %s: error counters climbed: %s", ErrSmoke, h.StatsAddr, strings.Join(c, ", "))
		}
	}
	return nil
}

// final wraps an error that ends polling at once.
type final struct{ error }

// probeAddr is where patchctl reaches a pool's listen address.
func probeAddr(h HostSpec, p pool) string {
	if p.Port == 0 {
		return p.Listen // a unix socket
	}
	host, port, err := net.SplitHostPort(p.Listen)
	if err != nil {
		return p.Listen
	}
	switch {
	case h.ProbeHost != "":
		host = h.ProbeHost
	case host == "" || host == "0.0.0.0" || host == "::":
		host, _, _ = net.SplitHostPort(h.StatsAddr)
	}
	return net.JoinHostPort(host, port)
}
