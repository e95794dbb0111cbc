// Package probe talks to redis and memcached servers, directly or through nutcracker, for
// connectivity checks, routing verification and smoke tests. It sends only commands
// nutcracker supports (no HELLO, INFO or CLIENT), since nutcracker closes the connection on
// anything else.
package probe

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"
)

// Protocol is the protocol a target speaks.
type Protocol string

// Protocols.
const (
	Redis    Protocol = "redis"
	Memcache Protocol = "memcache"
)

// DefaultTimeout bounds each operation when Target.Timeout is zero.
const DefaultTimeout = 2 * time.Second

// ErrProtocol is returned for a protocol other than redis or memcache.
var ErrProtocol = errors.New("unknown protocol")

// ErrMismatch is returned by Canary when a value read back differs from the one written.
var ErrMismatch = errors.New("value read back differs")

// Target is one server or proxy to talk to.
type Target struct {
	Addr     string   // host:port, [ipv6]:port, or a unix socket path
	Protocol Protocol // redis or memcache
	Auth     string   // redis AUTH password; "" sends none
	DB       int      // redis database to SELECT; nutcracker rejects SELECT, so keep 0 for proxies
	Timeout  time.Duration
}

func (t Target) timeout() time.Duration {
	if t.Timeout > 0 {
		return t.Timeout
	}
	return DefaultTimeout
}

func (t Target) network() string {
	if strings.HasPrefix(t.Addr, "/") {
		return "unix"
	}
	return "tcp"
}

// ErrNotRedis and ErrNotMemcached: the server answered, but in another protocol than the
// pool's (memcached behind a redis pool, or the other way round).
var (
	ErrNotRedis     = errors.New("not a redis server")
	ErrNotMemcached = errors.New("not a memcached server")
)

// Error says which target failed, doing what.
type Error struct {
	Addr     string
	Protocol Protocol
	Op       string // connect, auth, ping, set, get, delete
	Err      error
}

func (e *Error) Error() string {
	return fmt.Sprintf("%s %s: %s: %v", e.Protocol, e.Addr, e.Op, e.Err)
}

func (e *Error) Unwrap() error { return e.Err }

// store is one protocol's implementation of the operations a Client offers. Batch operations
// take many keys so implementations can pipeline.
type store interface {
	ping(ctx context.Context) error
	set(ctx context.Context, keys []string, value []byte, ttl time.Duration) error
	// get returns one value per key, nil when the key is absent.
	get(ctx context.Context, keys []string) ([][]byte, error)
	del(ctx context.Context, keys []string) error
	close() error
}

// Client is an open connection to a target. It is not safe for concurrent use.
type Client struct {
	target  Target
	connect time.Duration
	s       store
}

// Dial connects to a target (and authenticates and selects the database for redis).
func Dial(ctx context.Context, t Target) (*Client, error) {
	if t.Protocol != Redis && t.Protocol != Memcache {
		return nil, &Error{Addr: t.Addr, Protocol: t.Protocol, Op: "connect", Err: fmt.Errorf("%q: %w", t.Protocol, ErrProtocol)}
	}
	ctx, cancel := context.WithTimeout(ctx, t.timeout())
	defer cancel()
	start := time.Now()
	var d net.Dialer
	nc, err := d.DialContext(ctx, t.network(), t.Addr)
	if err != nil {
		return nil, &Error{Addr: t.Addr, Protocol: t.Protocol, Op: "connect", Err: err}
	}
	c := &Client{target: t, connect: time.Since(start)}
	if t.Protocol == Redis {
		c.s, err = newRedis(ctx, nc, t)
	} else {
		c.s = newMemcache(nc, t)
	}
	if err != nil {
		nc.Close()
		return nil, &Error{Addr: t.Addr, Protocol: t.Protocol, Op: "auth", Err: err}
	}
	return c, nil
}

// ConnectTime is how long the TCP (or unix socket) connect took.
func (c *Client) ConnectTime() time.Duration { return c.connect }

func (c *Client) do(ctx context.Context, op string, f func(ctx context.Context) error) error {
	ctx, cancel := context.WithTimeout(ctx, c.target.timeout())
	defer cancel()
	if err := f(ctx); err != nil {
		return &Error{Addr: c.target.Addr, Protocol: c.target.Protocol, Op: op, Err: err}
	}
	return nil
}

// Ping sends redis PING or memcached version.
func (c *Client) Ping(ctx context.Context) error {
	return c.do(ctx, "ping", c.s.ping)
}

// Set stores value under every key, expiring after ttl (rounded up to whole seconds).
func (c *Client) Set(ctx context.Context, keys []string, value []byte, ttl time.Duration) error {
	return c.do(ctx, "set", func(ctx context.Context) error { return c.s.set(ctx, keys, value, ttl) })
}

// Get returns the value of each key, nil where the key is absent.
func (c *Client) Get(ctx context.Context, keys []string) ([][]byte, error) {
	var vals [][]byte
	err := c.do(ctx, "get", func(ctx context.Context) (err error) {
		vals, err = c.s.get(ctx, keys)
		return err
	})
	return vals, err
}

// Delete removes the keys; absent keys are not an error.
func (c *Client) Delete(ctx context.Context, keys []string) error {
	return c.do(ctx, "delete", func(ctx context.Context) error { return c.s.del(ctx, keys) })
}

// Close closes the connection.
func (c *Client) Close() error { return c.s.close() }

// seconds rounds a TTL up to whole seconds, at least 1.
func seconds(ttl time.Duration) int64 {
	s := int64((ttl + time.Second - 1) / time.Second)
	return max(s, 1)
}
