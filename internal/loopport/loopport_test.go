package loopport

import (
	"net"
	"strconv"
	"testing"
)

// Ports come from below the ephemeral range, are free when handed out, and never twice.
func TestFree(t *testing.T) {
	lo, hi := Range()
	if lo == 0 || hi <= lo {
		t.Fatalf("no port range derived from the kernel's ephemeral range: [%d, %d)", lo, hi)
	}
	seen := map[int]bool{}
	for range 50 {
		p, err := Free()
		if err != nil {
			t.Fatal(err)
		}
		if p < lo || p >= hi || seen[p] {
			t.Fatalf("port %d: outside [%d, %d) or handed out twice", p, lo, hi)
		}
		seen[p] = true
		l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(p))
		if err != nil {
			t.Fatalf("handed-out port %d is not free: %v", p, err)
		}
		l.Close()
		if claim(p) {
			t.Fatalf("port %d claimed twice", p)
		}
	}
}
