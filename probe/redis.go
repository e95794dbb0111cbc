package probe

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/gomodule/redigo/redis"
)

// batch is how many commands are pipelined or how many keys one MGET/DEL carries.
const batch = 128

type redisStore struct{ c redis.Conn }

var _ store = (*redisStore)(nil)

func newRedis(ctx context.Context, nc net.Conn, t Target) (*redisStore, error) {
	s := &redisStore{c: redis.NewConn(nc, t.timeout(), t.timeout())}
	if t.Auth != "" {
		if _, err := redis.DoContext(s.c, ctx, "AUTH", t.Auth); err != nil {
			return nil, err
		}
	}
	if t.DB != 0 {
		if _, err := redis.DoContext(s.c, ctx, "SELECT", t.DB); err != nil {
			return nil, fmt.Errorf("select %d: %w", t.DB, err)
		}
	}
	return s, nil
}

func (s *redisStore) ping(ctx context.Context) error {
	reply, err := redis.String(redis.DoContext(s.c, ctx, "PING"))
	if err != nil {
		// redigo reports an answer that is not RESP at all (memcached's "ERROR") with its own
		// prefix; a redis error reply or a network error is something else.
		var re redis.Error
		if !errors.As(err, &re) && strings.HasPrefix(err.Error(), "redigo: ") {
			return fmt.Errorf("%w: it does not answer PING in the redis protocol (a memcached server?)", ErrNotRedis)
		}
		return err
	}
	if reply != "PONG" {
		return fmt.Errorf("unexpected reply %q", reply)
	}
	return nil
}

func (s *redisStore) set(ctx context.Context, keys []string, value []byte, ttl time.Duration) error {
	for chunk := range chunks(keys) {
		for _, k := range chunk {
			if err := s.c.Send("SET", k, value, "EX", seconds(ttl)); err != nil {
				return err
			}
		}
		if err := s.c.Flush(); err != nil {
			return err
		}
		for _, k := range chunk {
			if _, err := redis.String(redis.ReceiveContext(s.c, ctx)); err != nil {
				return fmt.Errorf("%q: %w", k, err)
			}
		}
	}
	return nil
}

func (s *redisStore) get(ctx context.Context, keys []string) ([][]byte, error) {
	vals := make([][]byte, 0, len(keys))
	for chunk := range chunks(keys) {
		v, err := redis.ByteSlices(redis.DoContext(s.c, ctx, "MGET", redis.Args{}.AddFlat(chunk)...))
		if err != nil {
			return nil, err
		}
		if len(v) != len(chunk) {
			return nil, fmt.Errorf("mget of %d keys returned %d values", len(chunk), len(v))
		}
		vals = append(vals, v...)
	}
	return vals, nil
}

func (s *redisStore) del(ctx context.Context, keys []string) error {
	for chunk := range chunks(keys) {
		if _, err := redis.DoContext(s.c, ctx, "DEL", redis.Args{}.AddFlat(chunk)...); err != nil {
			return err
		}
	}
	return nil
}

func (s *redisStore) close() error { return s.c.Close() }

// chunks yields keys in slices of at most batch keys.
func chunks(keys []string) func(yield func([]string) bool) {
	return func(yield func([]string) bool) {
		for len(keys) > 0 {
			n := min(batch, len(keys))
			if !yield(keys[:n]) {
				return
			}
			keys = keys[n:]
		}
	}
}
