package nutconf

import (
	"errors"
	"os"
	"slices"
	"testing"
	"time"
)

func TestParseModel(t *testing.T) {
	data, err := os.ReadFile("testdata/full.yml")
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := Parse("full.yml", data)
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Pools) != 2 || cfg.Pools[0].Name != "alpha" || cfg.Pools[1].Name != "beta" {
		t.Fatalf("pools = %+v", cfg.Pools)
	}
	a := cfg.Pool("alpha")
	if a.Pos != (Pos{2, 1}) {
		t.Errorf("alpha at %v", a.Pos)
	}
	if k := a.Key("hash"); k == nil || k.Pos != (Pos{4, 3}) || k.Values[0].Pos != (Pos{4, 9}) {
		t.Errorf("hash key = %+v", k)
	}
	l, ok := a.Listen()
	if !ok || l.Host != "127.0.0.1" || l.Port != 22121 {
		t.Errorf("Listen() = %+v, %v", l, ok)
	}
	timeout, ok := a.Timeout()
	checks := []struct {
		name      string
		got, want any
	}{
		{"Redis", a.Redis(), true},
		{"RedisAuth", a.RedisAuth(), "s3cret"},
		{"RedisDB", a.RedisDB(), 3},
		{"Hash", a.Hash(), "murmur"},
		{"Distribution", a.Distribution(), "modula"},
		{"HashTag", a.HashTag(), "{}"},
		{"Timeout", timeout, 400 * time.Millisecond},
		{"TimeoutSet", ok, true},
		{"Backlog", a.Backlog(), 1024},
		{"TCPKeepalive", a.TCPKeepalive(), true},
		{"Preconnect", a.Preconnect(), true},
		{"AutoEjectHosts", a.AutoEjectHosts(), true},
		{"ServerConnections", a.ServerConnections(), 2},
		{"ServerRetryTimeout", a.ServerRetryTimeout(), 2 * time.Second},
		{"ServerFailureLimit", a.ServerFailureLimit(), 5},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s() = %v, want %v", c.name, c.got, c.want)
		}
	}
	var names []string
	for _, s := range a.Servers {
		if s.Err != nil {
			t.Errorf("server %q: %v", s.Raw, s.Err)
		}
		names = append(names, s.HashName())
	}
	if want := []string{"one", "127.0.0.1:6380", "/run/redis.sock:"}; !slices.Equal(names, want) {
		t.Errorf("hash names = %q, want %q", names, want)
	}
	if a.Servers[1].Pos != (Pos{20, 6}) || a.Servers[1].Weight != 2 {
		t.Errorf("second server = %+v", a.Servers[1])
	}

	b := cfg.Pool("beta")
	if _, ok := b.Timeout(); ok {
		t.Error("beta has no timeout")
	}
	if b.Hash() != DefaultHash || b.Distribution() != DefaultDistribution || b.Redis() || b.ServerConnections() != 1 ||
		b.Backlog() != DefaultBacklog || b.ServerRetryTimeout() != DefaultServerRetryTimeout || b.ServerFailureLimit() != 2 {
		t.Errorf("beta defaults wrong: %+v", b)
	}
	if l, ok := b.Listen(); !ok || !l.Unix || l.Host != "/run/beta.sock" || l.Perm != 0o660 {
		t.Errorf("beta Listen() = %+v, %v", l, ok)
	}
	if b.Servers[0].HashName() != "127.0.0.1" {
		t.Errorf("11211 hash name = %q", b.Servers[0].HashName())
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name string
		in   string
		kind Kind
		pos  Pos
	}{
		{"empty", "", KindDocument, Pos{1, 1}},
		{"doc start", "---\na:\n  servers:\n   - h:1:1\n", KindToken, Pos{1, 1}},
		{"doc end", "a:\n  servers:\n   - h:1:1\n...\n", KindToken, Pos{4, 1}},
		{"directive", "%YAML 1.1\n---\na:\n  servers:\n   - h:1:1\n", KindToken, Pos{1, 1}},
		{"flow", "a:\n  servers: [h:1:1]\n", KindToken, Pos{2, 12}},
		{"anchor", "a:\n  hash: &x md5\n  servers:\n   - h:1:1\n", KindToken, Pos{2, 9}},
		{"tag", "a:\n  hash: !!str md5\n  servers:\n   - h:1:1\n", KindToken, Pos{2, 9}},
		{"tab", "a:\n\tservers:\n", KindSyntax, Pos{2, 1}},
		{"top scalar", "hello\n", KindStructure, Pos{1, 1}},
		{"top sequence", "- a\n", KindStructure, Pos{1, 1}},
		{"pool scalar", "a: b\n", KindStructure, Pos{1, 4}},
		{"depth", "a:\n  x:\n    y: 1\n  servers:\n   - h:1:1\n", KindStructure, Pos{3, 5}},
		{"no sequence", "a:\n  listen: 1\n", KindStructure, Pos{1, 1}},
		{"two sequences", "a:\n  servers:\n   - h:1:1\n  x:\n   - h:2:1\n", KindStructure, Pos{5, 4}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse("f.yml", []byte(tt.in))
			var es Errors
			if !errors.As(err, &es) || len(es) == 0 {
				t.Fatalf("err = %v, want Errors", err)
			}
			var e *Error
			if !errors.As(err, &e) {
				t.Fatal("errors.As(*Error) failed")
			}
			for _, e := range es {
				if e.Kind == tt.kind && e.Pos == tt.pos && e.File == "f.yml" {
					return
				}
			}
			t.Errorf("no %s error at %v in:\n%v", tt.kind, tt.pos, err)
		})
	}
}

// A key given as a one-item list is handled like a scalar by nutcracker: the structure
// check only counts sequences, and the parser calls the key's handler once per item.
func TestParseKeyAsList(t *testing.T) {
	cfg, err := Parse("f.yml", []byte("a:\n  listen: 127.0.0.1:1\n  hash:\n   - md5\n  servers: 127.0.0.1:2:1\n"))
	if err != nil {
		t.Fatal(err)
	}
	p := cfg.Pools[0]
	if p.Hash() != "md5" || len(p.Servers) != 1 || p.Servers[0].Port != 2 || !p.Key("hash").Seq {
		t.Errorf("pool = %+v", p)
	}
}
