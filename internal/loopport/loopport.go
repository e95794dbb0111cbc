// Package loopport picks free loopback TCP ports for programs started later (a test's or the
// demo's redis, memcached and nutcracker).
//
// A port is chosen below the kernel's ephemeral range: a port inside it can become the source
// port of any outgoing connection (a proxy dialling its backends, a client) between the moment
// it is chosen and the moment its server binds it, and the server then fails with "address
// already in use".
package loopport

import (
	"errors"
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
)

// Free returns a loopback port that was free a moment ago and that claim accepted (nil
// accepts any). claim lets callers keep ports they already handed out.
func Free(claim func(port int) bool) (int, error) {
	lo, hi := Range()
	for range 200 {
		port := 0
		if lo < hi {
			port = lo + rand.IntN(hi-lo)
		}
		l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
		if err != nil {
			if port != 0 {
				continue // in use
			}
			return 0, err
		}
		port = l.Addr().(*net.TCPAddr).Port
		l.Close()
		if claim == nil || claim(port) {
			return port, nil
		}
	}
	return 0, errors.New("no unused loopback port after 200 tries")
}

// Range is the half of the ports below the ephemeral range that Free picks from; empty
// when the range cannot be read or leaves too little room (then the kernel picks).
var Range = sync.OnceValues(func() (int, int) {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return 0, 0
	}
	f := strings.Fields(string(b))
	if len(f) != 2 {
		return 0, 0
	}
	ephemeral, err := strconv.Atoi(f[0])
	if err != nil || ephemeral < 4096 {
		return 0, 0
	}
	return ephemeral / 2, ephemeral
})
