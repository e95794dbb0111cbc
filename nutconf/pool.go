package nutconf

import "time"

// Defaults nutcracker applies to keys a pool leaves out.
const (
	DefaultHash               = "fnv1a_64"
	DefaultDistribution       = "ketama"
	DefaultBacklog            = 512
	DefaultServerConnections  = 1
	DefaultServerRetryTimeout = 30 * time.Second
	DefaultServerFailureLimit = 2
)

// The accessors below read the first value of a key the way nutcracker would once the
// file is valid. On a file the lint package rejects they return the default for values
// nutcracker would refuse.

// Listen returns the parsed listen: value; ok is false when it is missing or invalid.
func (p *Pool) Listen() (l Listen, ok bool) {
	v, ok := p.text("listen")
	if !ok {
		return Listen{}, false
	}
	l, err := ParseListen(v)
	return l, err == nil
}

// Redis reports whether the pool speaks the redis protocol (else memcached).
func (p *Pool) Redis() bool { return p.flag("redis") }

// RedisAuth returns the redis_auth password, "" when unset.
func (p *Pool) RedisAuth() string {
	v, _ := p.text("redis_auth")
	return v
}

// RedisDB returns the redis_db the proxy selects on backends (0 when unset).
func (p *Pool) RedisDB() int { return p.number("redis_db", 0) }

// Hash returns the key hash function name.
func (p *Pool) Hash() string { return p.textOr("hash", DefaultHash) }

// Distribution returns ketama, modula or random.
func (p *Pool) Distribution() string { return p.textOr("distribution", DefaultDistribution) }

// HashTag returns the two-byte hash tag, "" when unset.
func (p *Pool) HashTag() string {
	v, _ := p.text("hash_tag")
	return v
}

// Timeout returns the per-request server timeout; ok is false when unset (wait forever).
func (p *Pool) Timeout() (d time.Duration, ok bool) {
	n := p.number("timeout", -1)
	if n < 0 {
		return 0, false
	}
	return time.Duration(n) * time.Millisecond, true
}

// Backlog returns the listen backlog.
func (p *Pool) Backlog() int { return p.number("backlog", DefaultBacklog) }

// Preconnect reports whether nutcracker connects to every server at startup.
func (p *Pool) Preconnect() bool { return p.flag("preconnect") }

// AutoEjectHosts reports whether failing servers are taken out of the ring.
func (p *Pool) AutoEjectHosts() bool { return p.flag("auto_eject_hosts") }

// TCPKeepalive reports whether server connections use SO_KEEPALIVE (0.5.0+).
func (p *Pool) TCPKeepalive() bool { return p.flag("tcpkeepalive") }

// ServerConnections returns the connections per server.
func (p *Pool) ServerConnections() int {
	return p.number("server_connections", DefaultServerConnections)
}

// ServerRetryTimeout returns how long an ejected server stays out.
func (p *Pool) ServerRetryTimeout() time.Duration {
	n := p.number("server_retry_timeout", -1)
	if n < 0 {
		return DefaultServerRetryTimeout
	}
	return time.Duration(n) * time.Millisecond
}

// ServerFailureLimit returns the consecutive failures that eject a server.
func (p *Pool) ServerFailureLimit() int {
	return p.number("server_failure_limit", DefaultServerFailureLimit)
}

func (p *Pool) flag(key string) bool {
	v, _ := p.text(key)
	return v == "true"
}

func (p *Pool) textOr(key, def string) string {
	if v, ok := p.text(key); ok {
		return v
	}
	return def
}

func (p *Pool) number(key string, def int) int {
	v, ok := p.text(key)
	if !ok {
		return def
	}
	if n := Number(v); n >= 0 {
		return n
	}
	return def
}
