package routing

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	mrand "math/rand/v2"
	"net"
	"strings"
	"time"

	"github.com/patchctl/patchctl/probe"
)

// VerifyOptions configures Verify.
type VerifyOptions struct {
	Keys     int            // probe keys to write, 1 to MaxVerifyKeys; 0 = 200
	Protocol probe.Protocol // redis or memcache
	Auth     string         // the pool's redis_auth: used for the proxy and the backends
	DB       int            // the pool's redis_db
	Timeout  time.Duration  // per operation; default probe.DefaultTimeout
	// TTL makes probe keys expire even if the cleanup fails; default 5 minutes.
	TTL time.Duration
}

// VerifyReport is what Verify found.
type VerifyReport struct {
	Keys       int            `json:"keys"`
	Mismatches int            `json:"mismatches"` // keys not found on the backend predicted (any backend, for random)
	Examples   []Mismatch     `json:"examples"`   // the first few mismatches
	Servers    []ServerResult `json:"servers"`
}

// OK reports whether every key was where it was predicted.
func (r VerifyReport) OK() bool { return r.Mismatches == 0 }

// Mismatch is one key that was not where it was predicted.
type Mismatch struct {
	Key       string   `json:"key"`
	Predicted string   `json:"predicted"` // address; "" for the random distribution
	Found     []string `json:"found"`     // addresses the key was found on
}

// ServerResult is one backend's share of the probe keys.
type ServerResult struct {
	Name        string  `json:"name"`
	Addr        string  `json:"addr"`
	Weight      int     `json:"weight"`
	WeightShare float64 `json:"weight_share"` // configured weight / total weight
	Predicted   int     `json:"predicted"`    // keys predicted to land here
	Found       int     `json:"found"`        // keys found here
	Share       float64 `json:"share"`        // Found / Keys
}

const maxExamples = 10

// MaxVerifyKeys bounds the probe keys Verify writes through a live proxy.
const MaxVerifyKeys = 100_000

// Verify writes opts.Keys unique probe keys through the nutcracker listening on proxyAddr,
// reads every backend of pool directly, and counts the keys that are not on the backend New
// predicts. Probe keys are deleted through the proxy afterwards.
func Verify(ctx context.Context, pool Pool, proxyAddr string, opts VerifyOptions) (VerifyReport, error) {
	ring, err := New(pool)
	if err != nil {
		return VerifyReport{}, err
	}
	n := opts.Keys
	if n == 0 {
		n = 200
	}
	if n < 1 || n > MaxVerifyKeys {
		return VerifyReport{}, fmt.Errorf("keys: %d: %w (1 to %d)", n, ErrOutOfRange, MaxVerifyKeys)
	}
	ttl := opts.TTL
	if ttl <= 0 {
		ttl = 5 * time.Minute
	}
	auth := ""
	if opts.Protocol == probe.Redis {
		auth = opts.Auth
	}
	proxy, err := probe.Dial(ctx, probe.Target{Addr: proxyAddr, Protocol: opts.Protocol, Auth: auth, Timeout: opts.Timeout})
	if err != nil {
		return VerifyReport{}, fmt.Errorf("proxy: %w", err)
	}
	defer proxy.Close()

	backends := make([]*probe.Client, len(pool.Servers))
	for i, s := range pool.Servers {
		c, err := probe.Dial(ctx, probe.Target{Addr: dialAddr(s.Addr), Protocol: opts.Protocol, Auth: auth,
			DB: backendDB(s, opts), Timeout: opts.Timeout})
		if err != nil {
			return VerifyReport{}, fmt.Errorf("backend %s: %w", s.hashName(), err)
		}
		defer c.Close()
		backends[i] = c
	}

	run := make([]byte, 6)
	_, _ = rand.Read(run)
	value := []byte("patchctl-verify-" + hex.EncodeToString(run))
	keys := probeKeys(string(value), n, pool.HashTag)

	if err := proxy.Set(ctx, keys, value, ttl); err != nil {
		return VerifyReport{}, fmt.Errorf("write probe keys through %s: %w", proxyAddr, err)
	}
	// found[i][s]: key i is on server s.
	found := make([][]bool, n)
	for i := range found {
		found[i] = make([]bool, len(pool.Servers))
	}
	defer func() {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		cleanup(cctx, proxy, backends, ring, keys, found) // the TTL removes what this misses
	}()
	for s, c := range backends {
		vals, err := c.Get(ctx, keys)
		if err != nil {
			return VerifyReport{}, fmt.Errorf("backend %s: %w", pool.Servers[s].hashName(), err)
		}
		for i, v := range vals {
			found[i][s] = string(v) == string(value)
		}
	}

	rep := VerifyReport{Keys: n, Servers: make([]ServerResult, len(pool.Servers))}
	total := 0
	for _, s := range pool.Servers {
		total += s.Weight
	}
	for i, s := range pool.Servers {
		rep.Servers[i] = ServerResult{Name: s.hashName(), Addr: s.Addr, Weight: s.Weight,
			WeightShare: float64(s.Weight) / float64(total)}
	}
	for i, k := range keys {
		var where []string
		for s, ok := range found[i] {
			if ok {
				rep.Servers[s].Found++
				where = append(where, pool.Servers[s].Addr)
			}
		}
		m := Mismatch{Key: k, Found: where}
		if ring.Deterministic() {
			p := ring.Lookup([]byte(k))
			rep.Servers[p].Predicted++
			m.Predicted = pool.Servers[p].Addr
			if found[i][p] {
				continue
			}
		} else if len(where) > 0 {
			continue
		}
		rep.Mismatches++
		if len(rep.Examples) < maxExamples {
			rep.Examples = append(rep.Examples, m)
		}
	}
	for i := range rep.Servers {
		rep.Servers[i].Share = float64(rep.Servers[i].Found) / float64(n)
	}
	return rep, nil
}

// cleanup deletes the probe keys through the proxy, then directly from any backend the proxy
// would not reach them on: wherever a key was found but not predicted, and everywhere for the
// random distribution, where a DEL through the proxy goes to a random backend.
func cleanup(ctx context.Context, proxy *probe.Client, backends []*probe.Client, ring *Ring, keys []string, found [][]bool) {
	_ = proxy.Delete(ctx, keys)
	stray := make([][]string, len(backends))
	for i, k := range keys {
		p := -1
		if ring.Deterministic() {
			p = ring.Lookup([]byte(k))
		}
		for s, ok := range found[i] {
			if ok && s != p {
				stray[s] = append(stray[s], k)
			}
		}
	}
	for s, c := range backends {
		if len(stray[s]) > 0 {
			_ = c.Delete(ctx, stray[s])
		}
	}
}

// backendDB is the database nutcracker 0.5.0 really writes to: it never sends SELECT to unix
// socket backends, and its SELECT fails before AUTH on backends that need a password.
func backendDB(s Server, opts VerifyOptions) int {
	if opts.Protocol != probe.Redis || opts.Auth != "" || strings.HasPrefix(s.Addr, "/") {
		return 0
	}
	return opts.DB
}

// dialAddr turns a server-line address ("host:port", "::1:6379", "/path") into one Go dials.
func dialAddr(addr string) string {
	if strings.HasPrefix(addr, "/") {
		return addr
	}
	i := strings.LastIndexByte(addr, ':')
	if i < 0 {
		return addr
	}
	return net.JoinHostPort(addr[:i], addr[i+1:])
}

// probeKeys returns n keys unique to this run. Their endings vary in length and content so
// that they spread over the ring, a third end in bytes >= 0x80 (which nutcracker's hashes
// sign-extend), and with a hash tag half of them carry a tag around a varying part.
func probeKeys(run string, n int, tag string) []string {
	rng := mrand.New(mrand.NewPCG(uint64(len(run)), uint64(n)))
	keys := make([]string, n)
	for i := range keys {
		body := fmt.Sprintf("%x", rng.Uint64()>>(rng.IntN(8)*8))
		if i%3 == 2 {
			body += string([]byte{byte(0x80 + rng.IntN(0x80)), byte(0x80 + rng.IntN(0x80))})
		}
		if len(tag) == 2 && i%2 == 1 {
			body = fmt.Sprintf("%c%s%c", tag[0], body, tag[1])
		}
		keys[i] = fmt.Sprintf("%s:%d:%s", run, i, body)
	}
	return keys
}
