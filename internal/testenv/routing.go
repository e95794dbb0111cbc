package testenv

import (
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"testing"
)

// MemcachedAt starts memcached on host:port, for tests that need a fixed port such as 11211
// (nutcracker names such servers by host alone). host must be a loopback address.
func MemcachedAt(t testing.TB, host string, port int) *Process {
	t.Helper()
	args := []string{"-l", host, "-p", strconv.Itoa(port), "-U", "0", "-m", "16"}
	if os.Geteuid() == 0 {
		args = append(args, "-u", "nobody")
	}
	return Start(t, net.JoinHostPort(host, strconv.Itoa(port)), LookPath(t, "memcached"), args...)
}

// Memcached11211 starts n memcached servers on port 11211 of distinct loopback addresses
// (all of 127.0.0.0/8 is loopback on Linux), picked at random so that concurrent test runs
// do not collide.
func Memcached11211(t testing.TB, n int) []*Process {
	t.Helper()
	var ps []*Process
	used := map[string]bool{}
	for tries := 0; len(ps) < n; tries++ {
		if tries == 50*n {
			t.Fatalf("no free 127.x.y.z:11211 after %d tries", tries)
		}
		host := net.IPv4(127, byte(1+rand.IntN(254)), byte(rand.IntN(256)), byte(1+rand.IntN(254))).String()
		if used[host] {
			continue
		}
		l, err := net.Listen("tcp", net.JoinHostPort(host, "11211"))
		if err != nil {
			continue
		}
		l.Close()
		used[host] = true
		ps = append(ps, MemcachedAt(t, host, 11211))
	}
	return ps
}
