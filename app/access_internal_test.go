package app

import (
	"net"
	"os"
	"path/filepath"
	"testing"
)

// SO_PEERCRED on a real socket names this test process.
func TestPeerCaller(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "s")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := l.Accept()
		if err != nil {
			close(accepted)
			return
		}
		accepted <- c
	}()
	c, err := net.Dial("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	srv, ok := <-accepted
	if !ok {
		t.Fatal("accept failed")
	}
	defer srv.Close()
	got := peerCaller(srv)
	if !got.Known || got.UID != os.Getuid() || got.GID != os.Getgid() || got.PID != os.Getpid() {
		t.Fatalf("peerCaller = %+v, want uid %d gid %d pid %d", got, os.Getuid(), os.Getgid(), os.Getpid())
	}
	if peerCaller(nil).Known {
		t.Fatal("a connection that is not a unix socket has a known caller")
	}
}

func TestAccessCheck(t *testing.T) {
	acc := access{users: []int{1001}, groups: []int{2002}}
	for _, tc := range []struct {
		name   string
		method string
		c      Caller
		ok     bool
	}{
		{"read-only is open", "status", Caller{UID: 4242, Known: true}, true},
		{"listed user", "deploy", Caller{UID: 1001, GID: 9, Known: true}, true},
		{"listed primary group", "rollback", Caller{UID: 4242, GID: 2002, Known: true}, true},
		{"root", "deploy", Caller{UID: 0, Known: true}, true},
		{"other user", "deploy", Caller{UID: 4242, GID: 9, Known: true}, false},
		{"unknown caller", "deploy", Caller{}, false},
		{"new methods are changing", "rollout.start", Caller{UID: 4242, GID: 9, Known: true}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := acc.check(tc.method, tc.c)
			if (err == nil) != tc.ok {
				t.Fatalf("check(%s, %+v) = %v", tc.method, tc.c, err)
			}
		})
	}
}
