package probe

import (
	"net"
	"strconv"
	"time"

	"github.com/patchctl/patchctl/nutconf"
)

// PoolProtocol is the protocol a pool of nutcracker.yml speaks.
func PoolProtocol(p *nutconf.Pool) Protocol {
	if p.Redis() {
		return Redis
	}
	return Memcache
}

// ProxyTarget is the pool's listen address, as clients reach it through nutcracker; ok is
// false when the pool has no valid listen.
func ProxyTarget(p *nutconf.Pool, timeout time.Duration) (Target, bool) {
	l, ok := p.Listen()
	if !ok {
		return Target{}, false
	}
	addr := l.Host
	if !l.Unix {
		addr = net.JoinHostPort(l.Host, strconv.Itoa(l.Port))
	}
	return Target{Addr: addr, Protocol: PoolProtocol(p), Auth: p.RedisAuth(), Timeout: timeout}, true
}

// ServerTarget is one backend of the pool, reached directly. nutcracker sends the pool's
// redis_auth to its backends too, so the same password applies.
func ServerTarget(p *nutconf.Pool, s nutconf.Server, timeout time.Duration) Target {
	addr := s.Host
	if !s.Unix {
		addr = net.JoinHostPort(s.Host, strconv.Itoa(s.Port))
	}
	return Target{Addr: addr, Protocol: PoolProtocol(p), Auth: p.RedisAuth(), Timeout: timeout}
}
