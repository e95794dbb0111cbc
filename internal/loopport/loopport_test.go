package loopport

import (
	"net"
	"strconv"
	"testing"
)

// Ports come from below the ephemeral range, are free when handed out, and a refused claim
// makes Free pick another.
func TestFree(t *testing.T) {
	lo, hi := Range()
	if lo == 0 || hi <= lo {
		t.Fatalf("no port range derived from the kernel's ephemeral range: [%d, %d)", lo, hi)
	}
	seen := map[int]bool{}
	claim := func(p int) bool {
		if seen[p] {
			return false
		}
		seen[p] = true
		return true
	}
	prev := 0
	for range 20 {
		p, err := Free(claim)
		if err != nil {
			t.Fatal(err)
		}
		if p < lo || p >= hi || p == prev {
			t.Fatalf("port %d: outside [%d, %d) or handed out twice", p, lo, hi)
		}
		prev = p
		l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(p))
		if err != nil {
			t.Fatalf("handed-out port %d is not free: %v", p, err)
		}
		l.Close()
	}
	refused := 0
	if _, err := Free(func(int) bool { refused++; return refused > 3 }); err != nil || refused != 4 {
		t.Fatalf("Free after 3 refused claims: %v, %d claims", err, refused)
	}
}
