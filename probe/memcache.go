package probe

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/bradfitz/gomemcache/memcache"
)

// memcacheStore drives gomemcache, which takes no context: each call gets a timeout of the
// context's remaining time, and the context is checked between keys.
type memcacheStore struct {
	mc      *memcache.Client
	timeout time.Duration
}

var _ store = (*memcacheStore)(nil)

// oneServer is a gomemcache ServerSelector with a single server.
type oneServer struct{ addr net.Addr }

func (o oneServer) PickServer(string) (net.Addr, error) { return o.addr, nil }
func (o oneServer) Each(f func(net.Addr) error) error   { return f(o.addr) }

func newMemcache(nc net.Conn, t Target) *memcacheStore {
	mc := memcache.NewFromSelector(oneServer{nc.RemoteAddr()})
	// Hand gomemcache the connection Dial already made; reconnects dial afresh.
	var once sync.Once
	mc.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		var first net.Conn
		once.Do(func() { first = nc })
		if first != nil {
			return first, nil
		}
		var d net.Dialer
		return d.DialContext(ctx, network, addr)
	}
	mc.MaxIdleConns = 1
	return &memcacheStore{mc: mc, timeout: t.timeout()}
}

// arm sets the client's timeout from the context deadline, or fails if the context is done.
func (s *memcacheStore) arm(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	d := s.timeout
	if dl, ok := ctx.Deadline(); ok {
		d = min(d, time.Until(dl))
	}
	s.mc.Timeout = max(d, time.Millisecond)
	return nil
}

func (s *memcacheStore) ping(ctx context.Context) error {
	if err := s.arm(ctx); err != nil {
		return err
	}
	err := s.mc.Ping()
	if err != nil && strings.Contains(err.Error(), "unexpected response line") {
		return fmt.Errorf("%w: it does not answer version as memcached does (a redis server?)", ErrNotMemcached)
	}
	return err
}

func (s *memcacheStore) set(ctx context.Context, keys []string, value []byte, ttl time.Duration) error {
	for _, k := range keys {
		if err := s.arm(ctx); err != nil {
			return err
		}
		if err := s.mc.Set(&memcache.Item{Key: k, Value: value, Expiration: int32(seconds(ttl))}); err != nil {
			return err
		}
	}
	return nil
}

func (s *memcacheStore) get(ctx context.Context, keys []string) ([][]byte, error) {
	vals := make([][]byte, 0, len(keys))
	for chunk := range chunks(keys) {
		if err := s.arm(ctx); err != nil {
			return nil, err
		}
		items, err := s.mc.GetMulti(chunk)
		if err != nil {
			return nil, err
		}
		for _, k := range chunk {
			if it, ok := items[k]; ok {
				vals = append(vals, it.Value)
			} else {
				vals = append(vals, nil)
			}
		}
	}
	return vals, nil
}

func (s *memcacheStore) del(ctx context.Context, keys []string) error {
	for _, k := range keys {
		if err := s.arm(ctx); err != nil {
			return err
		}
		if err := s.mc.Delete(k); err != nil && !errors.Is(err, memcache.ErrCacheMiss) {
			return err
		}
	}
	return nil
}

func (s *memcacheStore) close() error { return s.mc.Close() }
