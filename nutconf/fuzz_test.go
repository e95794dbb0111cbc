package nutconf

import (
	"os"
	"path/filepath"
	"testing"
)

// addSeeds seeds a fuzz target with the parity corpus and the full example.
func addSeeds(f *testing.F) {
	seeds, _ := filepath.Glob(filepath.Join("..", "lint", "testdata", "parity", "*.yml"))
	seeds = append(seeds, filepath.Join("testdata", "full.yml"))
	for _, s := range seeds {
		data, err := os.ReadFile(s)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
}

func FuzzParse(f *testing.F) {
	addSeeds(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := Parse("fuzz.yml", data)
		if cfg == nil {
			t.Fatal("nil config")
		}
		if err == nil && len(cfg.Pools) == 0 {
			t.Fatal("no error and no pools")
		}
		for _, p := range cfg.Pools {
			p.Listen()
			p.Timeout()
			for _, s := range p.Servers {
				_ = s.HashName()
			}
		}
	})
}

func FuzzParseServer(f *testing.F) {
	for _, s := range []string{"127.0.0.1:6379:1", "h:11211:2 name", "/a.sock:1", "/a:b:1", "::1:1:1", "", " ", "a:b:c d e", "x\x00:1:1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, line string) {
		s, err := ParseServer(line)
		if err != s.Err {
			t.Fatalf("returned %v, Err %v", err, s.Err)
		}
		if err != nil {
			return
		}
		if s.Weight <= 0 || (!s.Unix && (s.Port < 1 || s.Port > 65535)) {
			t.Fatalf("accepted %q as %+v", line, s)
		}
		if !s.HasName && s.Unix && s.HashName() != s.Host+":" {
			t.Fatalf("unix hash name %q", s.HashName())
		}
	})
}

func FuzzParseListen(f *testing.F) {
	for _, s := range []string{"127.0.0.1:22121", "/a.sock 0666", "/a.sock -1", "::1:1", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		l, err := ParseListen(v)
		if err == nil && l.Unix && l.Perm > 0o777 {
			t.Fatalf("accepted perm %o", l.Perm)
		}
		_ = l.PermIsOctal()
	})
}
