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
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
)

// Free returns a loopback port that was free a moment ago and claims it for this process
// against every process on the machine that picks its ports here: tests run packages in
// parallel, the demo may run beside them, and a server binds its port long after it was
// chosen (a proxy restarted by a deploy frees its ports for a moment). The claim is an
// flock on a file named after the port, held until the process exits (the kernel drops it
// even after a SIGKILL); a second claim of the same port fails in this process too.
func Free() (int, error) {
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
		if claim(port) {
			return port, nil
		}
	}
	return 0, errors.New("no unused loopback port after 200 tries")
}

var (
	claimMu sync.Mutex
	claims  []*os.File // kept open: closing one would release its claim
)

func claim(port int) bool {
	claimMu.Lock()
	defer claimMu.Unlock()
	dir := filepath.Join(os.TempDir(), "patchctl-ports")
	if os.MkdirAll(dir, 0o1777) != nil {
		return true // no shared claims possible here: the listen check above must do
	}
	f, err := os.OpenFile(filepath.Join(dir, strconv.Itoa(port)), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return true
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		return false // claimed by another process, or earlier by this one
	}
	claims = append(claims, f)
	return true
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
