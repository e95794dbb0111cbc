package routing

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"strings"
	"testing"
)

func TestKetamaPoints(t *testing.T) {
	for _, tc := range []struct {
		weights []int
		want    []int
	}{
		{[]int{1, 1, 1}, []int{160, 160, 160}},
		{[]int{1, 2, 1, 3}, []int{88, 180, 88, 272}},
		{[]int{1, 2}, []int{104, 212}},
		{[]int{100000, 1}, []int{316, 0}},
	} {
		total := 0
		for _, w := range tc.weights {
			total += w
		}
		for i, w := range tc.weights {
			if got := ketamaPoints(w, total, len(tc.weights)); got != tc.want[i] {
				t.Errorf("weights %v: server %d gets %d points, want %d", tc.weights, i, got, tc.want[i])
			}
		}
	}
}

func TestHashName(t *testing.T) {
	for addr, want := range map[string]string{
		"127.0.0.1:6379":   "127.0.0.1:6379",
		"10.0.0.1:11211":   "10.0.0.1",
		"cache-a:11211":    "cache-a",
		"cache-a:112110":   "cache-a:112110",
		"/run/redis.sock":  "/run/redis.sock:",
		"::1:6379":         "::1:6379",
		"localhost:11212":  "localhost:11212",
		"localhost:011211": "localhost",
	} {
		if got := HashName(addr); got != want {
			t.Errorf("HashName(%q) = %q, want %q", addr, got, want)
		}
	}
}

func TestTagged(t *testing.T) {
	curly := [2]byte{'{', '}'}
	for key, want := range map[string]string{
		"user:{42}:name": "42",
		"{}x":            "{}x",
		"{abc":           "{abc",
		"abc}":           "abc}",
		"a}{b}":          "b",
		"{a}{b}":         "a",
		"plain":          "plain",
		"":               "",
	} {
		if got := string(tagged([]byte(key), curly)); got != want {
			t.Errorf("tagged(%q) = %q, want %q", key, got, want)
		}
	}
	dollar := [2]byte{'$', '$'}
	if got := string(tagged([]byte("a$bc$d$"), dollar)); got != "bc" {
		t.Errorf(`tagged("a$bc$d$", "$$") = %q, want "bc"`, got)
	}
}

func TestNewErrors(t *testing.T) {
	ok := []Server{{Addr: "127.0.0.1:6379", Weight: 1}}
	for _, tc := range []struct {
		pool Pool
		want string
		is   error
	}{
		{Pool{Name: "p", Hash: "sha1", Servers: ok}, "pool p: hash", ErrUnknownHash},
		{Pool{Name: "p", Distribution: "rendezvous", Servers: ok}, "distribution", ErrUnknownDistribution},
		{Pool{Name: "p", HashTag: "{", Servers: ok}, "hash_tag", nil},
		{Pool{Name: "p"}, "servers: none", nil},
		{Pool{Name: "p", Servers: []Server{{Addr: "a:1", Weight: 0}}}, "servers[0] a:1: weight 0", nil},
		{Pool{Name: "p", Servers: []Server{{Weight: 1}}}, "servers[0]: empty address", nil},
		{Pool{Name: "p", Servers: []Server{{Addr: "a:11211", Weight: 1}, {Addr: "b:1", Name: "a", Weight: 1}}}, `same name "a"`, nil},
	} {
		_, err := New(tc.pool)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("New(%+v) error = %v, want it to contain %q", tc.pool, err, tc.want)
		}
		if tc.is != nil && !errors.Is(err, tc.is) {
			t.Errorf("New(%+v) error = %v, want errors.Is %v", tc.pool, err, tc.is)
		}
	}
}

// TestLookupOrder checks that Lookup answers in the caller's server order while routing by
// nutcracker's sorted order: permuting the configuration must not move any key.
func TestLookupOrder(t *testing.T) {
	servers := []Server{
		{Addr: "127.0.0.1:7003", Weight: 1},
		{Addr: "127.0.0.1:7001", Weight: 2},
		{Addr: "10.1.1.1:11211", Weight: 1},
		{Addr: "127.0.0.1:7002", Name: "zeta", Weight: 3},
	}
	reversed := make([]Server, len(servers))
	for i, s := range servers {
		reversed[len(servers)-1-i] = s
	}
	for _, dist := range []string{Ketama, Modula} {
		a, err := New(Pool{Hash: "md5", Distribution: dist, Servers: servers})
		if err != nil {
			t.Fatal(err)
		}
		b, err := New(Pool{Hash: "md5", Distribution: dist, Servers: reversed})
		if err != nil {
			t.Fatal(err)
		}
		hits := make([]int, len(servers))
		for i := range 2000 {
			key := []byte(fmt.Sprintf("key:%d", i))
			ia, ib := a.Lookup(key), b.Lookup(key)
			if servers[ia] != reversed[ib] {
				t.Fatalf("%s: key %s goes to %v in one order and %v in the other", dist, key, servers[ia], reversed[ib])
			}
			hits[ia]++
		}
		for i, h := range hits {
			if h == 0 {
				t.Errorf("%s: server %v got no keys", dist, servers[i])
			}
		}
	}
}

// TestModulaSlots checks modula against nutcracker's definition, written out here: a list
// of servers sorted by (name length, bytes), each repeated weight times, indexed by
// hash % len.
func TestModulaSlots(t *testing.T) {
	servers := []Server{{Addr: "bb:1", Weight: 1}, {Addr: "a:1", Weight: 2}, {Addr: "ab:1", Weight: 1}}
	r, err := New(Pool{Distribution: Modula, Servers: servers})
	if err != nil {
		t.Fatal(err)
	}
	key := []byte("apple") // fnv1a_64 1488911807 % 4 = 3: a:1, a:1, ab:1, bb:1
	if got := r.Lookup(key); got != 0 {
		t.Fatalf("Lookup(apple) = %d, want 0", got)
	}

	rng := rand.New(rand.NewPCG(1, 2))
	for round := range 50 {
		servers := make([]Server, 1+rng.IntN(6))
		for i := range servers {
			servers[i] = Server{Addr: fmt.Sprintf("%s:%d", strings.Repeat("h", 1+rng.IntN(3)), i), Weight: 1 + rng.IntN(5)}
		}
		r, err := New(Pool{Distribution: Modula, Servers: servers})
		if err != nil {
			t.Fatal(err)
		}
		var list []int
		for _, i := range sortedServers(servers) {
			for range servers[i].Weight {
				list = append(list, i)
			}
		}
		for k := range 200 {
			key := []byte(fmt.Sprint("key-", round, "-", k))
			want := list[r.HashKey(key)%uint32(len(list))]
			if len(servers) == 1 {
				want = 0
			}
			if got := r.Lookup(key); got != want {
				t.Fatalf("round %d %v: Lookup(%s) = %d, want %d", round, servers, key, got, want)
			}
		}
	}
}

// TestModulaHugeWeight: a weight of 50,000,000 is routed without a list of that length
// (it cost 1.35 GB and 10 s), and a total nutcracker's 32-bit count cannot hold is refused.
func TestModulaHugeWeight(t *testing.T) {
	servers := []Server{{Addr: "a:1", Weight: 50_000_000}, {Addr: "b:1", Weight: 50_000_000}, {Addr: "cc:1", Weight: 1}}
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	r, err := New(Pool{Distribution: Modula, Servers: servers})
	runtime.ReadMemStats(&after)
	if err != nil {
		t.Fatal(err)
	}
	if grew := after.TotalAlloc - before.TotalAlloc; grew > 1<<20 {
		t.Fatalf("New allocated %d bytes for 3 servers", grew)
	}
	for k := range 1000 {
		key := []byte(fmt.Sprint("k", k))
		slot := r.HashKey(key) % 100_000_001
		want := 0
		switch {
		case slot >= 100_000_000:
			want = 2
		case slot >= 50_000_000:
			want = 1
		}
		if got := r.Lookup(key); got != want {
			t.Fatalf("Lookup(%s) slot %d = %d, want %d", key, slot, got, want)
		}
	}
	_, err = New(Pool{Name: "big", Distribution: Modula, Servers: []Server{{Addr: "a:1", Weight: math.MaxInt32}, {Addr: "b:1", Weight: math.MaxInt32}, {Addr: "c:1", Weight: 2}}})
	if err == nil || !strings.Contains(err.Error(), "pool big") || !strings.Contains(err.Error(), "total server weight") {
		t.Fatalf("err = %v, want the total weight refused", err)
	}
}

func TestLookupSingleAndEmpty(t *testing.T) {
	one, err := New(Pool{Distribution: Random, Servers: []Server{{Addr: "x:1", Weight: 5}}})
	if err != nil {
		t.Fatal(err)
	}
	if !one.Deterministic() || one.Lookup([]byte("k")) != 0 {
		t.Fatal("a single-server pool must always route to server 0")
	}
	r, err := New(Pool{Servers: []Server{{Addr: "x:1", Weight: 1}, {Addr: "y:1", Weight: 1}}})
	if err != nil {
		t.Fatal(err)
	}
	if got := r.HashKey(nil); got != 0 {
		t.Fatalf("HashKey(empty) = %d, want 0", got)
	}
	// Hash 0 lands on the lowest point of the ring.
	if got, want := r.Lookup(nil), int(r.servers[0]); got != want {
		t.Fatalf("Lookup(empty) = %d, want %d", got, want)
	}
}
