package testenv

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestRealPrograms proves the harness starts every real program the suite relies on.
func TestRealPrograms(t *testing.T) {
	redis := Redis(t)
	mc := Memcached(t)
	for _, v := range Versions {
		t.Run(v, func(t *testing.T) {
			listen := Addr(FreePort(t))
			conf := fmt.Sprintf("alpha:\n  listen: %s\n  redis: true\n  servers:\n   - %s:1\nbeta:\n  listen: %s\n  servers:\n   - %s:1\n",
				listen, redis.Addr, Addr(FreePort(t)), mc.Addr)
			p := StartNutcracker(t, v, conf, listen)
			c, err := net.DialTimeout("tcp", p.Stats, time.Second)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			_ = c.SetDeadline(time.Now().Add(2 * time.Second))
			body, err := io.ReadAll(c)
			if err != nil {
				t.Fatal(err)
			}
			var stats struct{ Version string }
			if err := json.Unmarshal(body, &stats); err != nil {
				t.Fatalf("stats %q: %v", body, err)
			}
			if stats.Version != v {
				t.Fatalf("stats version = %q, want %q", stats.Version, v)
			}
		})
	}
}

func TestCheckConfig(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.yml")
	if err := os.WriteFile(bad, []byte("alpha:\n  listen: 127.0.0.1:1\n  hash: sha1\n  servers:\n   - 127.0.0.1:2:1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, v := range Versions {
		ok, out, err := CheckConfig(context.Background(), Nutcracker(t, v), bad)
		if err != nil || ok {
			t.Fatalf("%s: ok=%v err=%v out=%s", v, ok, err, out)
		}
	}
}
