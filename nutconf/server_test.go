package nutconf

import (
	"errors"
	"testing"
)

func TestParseServer(t *testing.T) {
	tests := []struct {
		line     string
		err      error
		host     string
		port     int
		weight   int
		name     string
		hashName string
		unix     bool
	}{
		{line: "127.0.0.1:6379:1", host: "127.0.0.1", port: 6379, weight: 1, hashName: "127.0.0.1:6379"},
		{line: "10.0.0.1:11211:3", host: "10.0.0.1", port: 11211, weight: 3, hashName: "10.0.0.1"},
		{line: "10.0.0.1:011211:3", host: "10.0.0.1", port: 11211, weight: 3, hashName: "10.0.0.1"},
		{line: "10.0.0.1:06379:1", host: "10.0.0.1", port: 6379, weight: 1, hashName: "10.0.0.1:06379"},
		{line: "127.0.0.1:6379:2 cache-a", host: "127.0.0.1", port: 6379, weight: 2, name: "cache-a", hashName: "cache-a"},
		{line: "::1:6379:1", host: "::1", port: 6379, weight: 1, hashName: "::1:6379"},
		{line: "/run/redis.sock:1", host: "/run/redis.sock", weight: 1, unix: true, hashName: "/run/redis.sock:"},
		{line: "/run/redis.sock:4 r", host: "/run/redis.sock", weight: 4, unix: true, name: "r", hashName: "r"},
		{line: "redis.example:6379:1", host: "redis.example", port: 6379, weight: 1, hashName: "redis.example:6379"},
		{line: "127.0.0.1:6379", err: ErrServerFormat},
		{line: "", err: ErrServerFormat},
		{line: "/run/a:b.sock:1", err: ErrServerFormat},
		{line: "/run/a.sock", err: ErrServerFormat},
		{line: "127.0.0.1:6379:0", err: ErrServerZeroWeight},
		{line: "127.0.0.1:6379:4294967296", err: ErrServerZeroWeight},
		{line: "127.0.0.1:6379:2147483648", err: ErrServerWeight},
		{line: "127.0.0.1:6379:x", err: ErrServerWeight},
		{line: "127.0.0.1:6379:-1", err: ErrServerWeight},
		{line: "127.0.0.1:6379:1 my name", err: ErrServerWeight},
		{line: "127.0.0.1:0:1", err: ErrServerPort},
		{line: "127.0.0.1:65536:1", err: ErrServerPort},
		{line: "127.0.0.1::1", err: ErrServerPort},
	}
	for _, tt := range tests {
		t.Run(tt.line, func(t *testing.T) {
			s, err := ParseServer(tt.line)
			if !errors.Is(err, tt.err) || !errors.Is(s.Err, tt.err) {
				t.Fatalf("err = %v (Err %v), want %v", err, s.Err, tt.err)
			}
			if tt.err != nil {
				return
			}
			if s.Host != tt.host || s.Port != tt.port || s.Weight != tt.weight || s.Name != tt.name || s.Unix != tt.unix {
				t.Errorf("got %+v", s)
			}
			if got := s.HashName(); got != tt.hashName {
				t.Errorf("HashName() = %q, want %q", got, tt.hashName)
			}
		})
	}
}

func TestNumber(t *testing.T) {
	tests := []struct {
		in   string
		want int
		over bool
	}{
		{"0", 0, false}, {"400", 400, false}, {"007", 7, false},
		{"", -1, false}, {"-1", -1, false}, {"+5", -1, false}, {"0x10", -1, false}, {"10ms", -1, false}, {" 1", -1, false},
		{"2147483647", 2147483647, false},
		{"2147483648", -1, true},
		{"4294967296", 0, true},
		{"99999999999", 1215752191, true},
	}
	for _, tt := range tests {
		if got := Number(tt.in); got != tt.want {
			t.Errorf("Number(%q) = %d, want %d", tt.in, got, tt.want)
		}
		if got := Overflows(tt.in); got != tt.over {
			t.Errorf("Overflows(%q) = %v, want %v", tt.in, got, tt.over)
		}
	}
}

func TestParseListen(t *testing.T) {
	tests := []struct {
		in      string
		err     error
		host    string
		port    int
		unix    bool
		perm    uint32
		octal   bool
		address string
	}{
		{in: "127.0.0.1:22121", host: "127.0.0.1", port: 22121, octal: true, address: "127.0.0.1:22121"},
		{in: "::1:22121", host: "::1", port: 22121, octal: true, address: "::1:22121"},
		{in: "0.0.0.0:22121", host: "0.0.0.0", port: 22121, octal: true, address: "0.0.0.0:22121"},
		{in: "/run/nc.sock", host: "/run/nc.sock", unix: true, octal: true, address: "/run/nc.sock"},
		{in: "/run/nc.sock 0666", host: "/run/nc.sock", unix: true, perm: 0o666, octal: true, address: "/run/nc.sock"},
		{in: "/run/nc.sock 0999", host: "/run/nc.sock", unix: true, perm: 0, address: "/run/nc.sock"},
		{in: "/run/nc.sock 06x", host: "/run/nc.sock", unix: true, perm: 6, address: "/run/nc.sock"},
		{in: "/run/nc.sock 1777", err: ErrListenPerm},
		{in: "/run/nc.sock -1", err: ErrListenPerm},
		{in: "/run/nc.sock 7777777777777777777777777", err: ErrListenPerm},
		{in: "127.0.0.1", err: ErrListenFormat},
		{in: "", err: ErrListenFormat},
		{in: "127.0.0.1:0", err: ErrListenPort},
		{in: "127.0.0.1:70000", err: ErrListenPort},
		{in: "127.0.0.1:http", err: ErrListenPort},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			l, err := ParseListen(tt.in)
			if !errors.Is(err, tt.err) {
				t.Fatalf("err = %v, want %v", err, tt.err)
			}
			if tt.err != nil {
				return
			}
			if l.Host != tt.host || l.Port != tt.port || l.Unix != tt.unix || l.Perm != tt.perm || l.PermIsOctal() != tt.octal || l.Address() != tt.address {
				t.Errorf("got %+v octal=%v address=%q", l, l.PermIsOctal(), l.Address())
			}
		})
	}
}
