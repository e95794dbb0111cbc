package routing_test

import (
	"testing"

	"github.com/patchctl/patchctl/nutconf"
	"github.com/patchctl/patchctl/routing"
)

// FuzzDiff routes keys through every pool of an arbitrary nutcracker.yml diffed with itself:
// it never panics, and a pool compared with itself moves no key. Weights as large as
// nutcracker accepts stay cheap (modula is not materialised).
func FuzzDiff(f *testing.F) {
	for _, s := range []string{
		"a:\n  listen: 127.0.0.1:22121\n  servers:\n   - 127.0.0.1:6379:1\n   - 127.0.0.1:6380:2 b\n",
		"a:\n  listen: 127.0.0.1:22121\n  distribution: modula\n  servers:\n   - 127.0.0.1:6379:50000000\n   - 127.0.0.1:6380:1\n",
		"a:\n  listen: 127.0.0.1:22121\n  distribution: modula\n  servers:\n   - 127.0.0.1:6379:2147483647\n   - 127.0.0.1:6380:2147483647\n   - 127.0.0.1:6381:2\n",
		"a:\n  listen: 127.0.0.1:22121\n  hash: murmur\n  hash_tag: \"{}\"\n  servers:\n   - 127.0.0.1:11211:100000\n   - 127.0.0.1:11212:1\n",
		"a:\n  listen: 127.0.0.1:22121\n  distribution: random\n  servers:\n   - 127.0.0.1:6379:1\n",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		cfg, _ := nutconf.Parse("nutcracker.yml", []byte(s))
		if cfg == nil {
			return
		}
		for _, p := range cfg.Pools {
			pool := routing.FromConfig(p)
			rep, err := routing.Diff(pool, pool, 100)
			if err != nil {
				continue // a pool routing refuses (no servers, bad weight, unknown hash)
			}
			if !rep.Random && rep.Moved != 0 {
				t.Fatalf("pool %s moved %v keys against itself", p.Name, rep.Moved)
			}
		}
	})
}
