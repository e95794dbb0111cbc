package routing

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	redigo "github.com/gomodule/redigo/redis"
	"github.com/patchctl/patchctl/internal/testenv"
	"github.com/patchctl/patchctl/probe"
)

type livePool struct {
	pool     Pool
	listen   string
	protocol probe.Protocol
	db       int
}

// yaml renders the pool as a nutcracker.yml pool.
func (lp livePool) yaml() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s:\n  listen: %s\n  hash: %s\n  distribution: %s\n", lp.pool.Name, lp.listen, lp.pool.Hash, lp.pool.Distribution)
	if lp.protocol == probe.Redis {
		fmt.Fprintf(&b, "  redis: true\n")
	}
	if lp.db != 0 {
		fmt.Fprintf(&b, "  redis_db: %d\n", lp.db)
	}
	if lp.pool.HashTag != "" {
		fmt.Fprintf(&b, "  hash_tag: %q\n", lp.pool.HashTag)
	}
	b.WriteString("  servers:\n")
	for _, s := range lp.pool.Servers {
		fmt.Fprintf(&b, "   - %s:%d", s.Addr, s.Weight)
		if s.Name != "" {
			fmt.Fprintf(&b, " %s", s.Name)
		}
		b.WriteString("\n")
	}
	return b.String()
}

// TestVerifyLive proves the routing against a live nutcracker 0.5.0: every hash with ketama
// and modula, unequal weights in unsorted order, a named server, hash tags, redis_db, the
// random distribution, and memcached servers on port 11211 named by host alone.
func TestVerifyLive(t *testing.T) {
	var redis, mc []string
	for range 4 {
		redis = append(redis, testenv.Redis(t).Addr)
	}
	for _, p := range testenv.Memcached11211(t, 3) {
		mc = append(mc, p.Addr)
	}
	redisServers := []Server{
		{Addr: redis[2], Weight: 1},
		{Addr: redis[0], Weight: 2},
		{Addr: redis[3], Weight: 1, Name: "cache-z"},
		{Addr: redis[1], Weight: 3},
	}
	mcServers := []Server{{Addr: mc[1], Weight: 2}, {Addr: mc[0], Weight: 1}, {Addr: mc[2], Weight: 1}}

	var pools []livePool
	add := func(p Pool, proto probe.Protocol, db int) {
		p.Name = fmt.Sprintf("p%d", len(pools))
		pools = append(pools, livePool{pool: p, listen: testenv.Addr(testenv.FreePort(t)), protocol: proto, db: db})
	}
	for _, h := range HashNames() {
		for _, d := range []string{Ketama, Modula} {
			add(Pool{Hash: h, Distribution: d, Servers: redisServers}, probe.Redis, 0)
			add(Pool{Hash: h, Distribution: d, Servers: mcServers}, probe.Memcache, 0)
		}
	}
	add(Pool{Hash: "md5", Distribution: Ketama, HashTag: "{}", Servers: redisServers}, probe.Redis, 0)
	add(Pool{Hash: "murmur", Distribution: Modula, HashTag: "$$", Servers: mcServers}, probe.Memcache, 0)
	add(Pool{Hash: "fnv1a_64", Distribution: Ketama, Servers: redisServers}, probe.Redis, 2)
	add(Pool{Hash: "fnv1a_64", Distribution: Random, Servers: redisServers}, probe.Redis, 0)

	var conf strings.Builder
	var listens []string
	for _, lp := range pools {
		conf.WriteString(lp.yaml())
		listens = append(listens, lp.listen)
	}
	testenv.StartNutcracker(t, "0.5.0", conf.String(), listens...)

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for _, lp := range pools {
		name := fmt.Sprintf("%s/%s/%s", lp.protocol, lp.pool.Hash, lp.pool.Distribution)
		if lp.pool.HashTag != "" {
			name += "/tag"
		}
		if lp.db != 0 {
			name += "/db"
		}
		t.Run(name, func(t *testing.T) {
			rep, err := Verify(ctx, lp.pool, lp.listen, VerifyOptions{Keys: 200, Protocol: lp.protocol, DB: lp.db})
			if err != nil {
				t.Fatal(err)
			}
			if !rep.OK() {
				t.Fatalf("%d of %d keys not on the predicted backend, e.g. %+v", rep.Mismatches, rep.Keys, rep.Examples)
			}
			found := 0
			for _, s := range rep.Servers {
				found += s.Found
			}
			if found != rep.Keys {
				t.Fatalf("keys found %d times in total, want %d (each exactly once)", found, rep.Keys)
			}
		})
	}

	// The check must be able to fail: describe a pool with another hash than the proxy uses.
	t.Run("wrong hash is caught", func(t *testing.T) {
		lp := pools[0] // redis, the first hash, ketama
		wrong := lp.pool
		wrong.Hash = "murmur"
		if lp.pool.Hash == "murmur" {
			wrong.Hash = "md5"
		}
		rep, err := Verify(ctx, wrong, lp.listen, VerifyOptions{Keys: 200, Protocol: lp.protocol})
		if err != nil {
			t.Fatal(err)
		}
		if rep.Mismatches < 50 {
			t.Fatalf("%d mismatches with the wrong hash, want many", rep.Mismatches)
		}
	})

	// Probe keys are deleted afterwards: the backends hold no keys once every Verify is done.
	t.Run("cleanup", func(t *testing.T) {
		for _, addr := range redis {
			for _, db := range []int{0, 2} {
				c, err := redigo.Dial("tcp", addr, redigo.DialDatabase(db), redigo.DialReadTimeout(testenv.WaitTimeout))
				if err != nil {
					t.Fatal(err)
				}
				n, err := redigo.Int(c.Do("DBSIZE"))
				c.Close()
				if err != nil {
					t.Fatal(err)
				}
				if n != 0 {
					t.Errorf("redis %s db %d holds %d keys after Verify, want 0", addr, db, n)
				}
			}
		}
	})
}
