package cli_test

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/patchctl/patchctl/cli"
	"github.com/patchctl/patchctl/internal/testenv"
)

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestLintCommand(t *testing.T) {
	good := writeFile(t, "good.yml", "alpha:\n  listen: 127.0.0.1:22121\n  redis: true\n  timeout: 400\n  tcpkeepalive: true\n  servers:\n   - 127.0.0.1:6379:1\n")
	cases := []struct {
		name     string
		args     []string
		code     int
		contains string
	}{
		{"valid on 0.5.0", []string{"lint", good}, cli.ExitOK, ""},
		{"tcpkeepalive refused by 0.4.1", []string{"lint", "--target-version", "0.4.1", good}, cli.ExitFailure, "tcpkeepalive"},
		{"sarif", []string{"lint", "-o", "sarif", "--target-version", "v0.4.1", good}, cli.ExitFailure, `"version": "2.1.0"`},
		{"json", []string{"lint", "-o", "json", good}, cli.ExitOK, "{"},
		{"unknown version", []string{"lint", "--target-version", "9.9.9", good}, cli.ExitUsage, "target-version"},
		{"missing file", []string{"lint", "/nonexistent/n.yml"}, cli.ExitUsage, "no such file"},
		{"no file", []string{"lint"}, cli.ExitUsage, "at least one"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			code, out, errOut := run(t, nil, c.args...)
			if code != c.code || !strings.Contains(out+errOut, c.contains) {
				t.Fatalf("exit %d (want %d), output lacks %q:\n%s%s", code, c.code, c.contains, out, errOut)
			}
		})
	}
}

func TestCheckConnectAndRouting(t *testing.T) {
	r1, r2 := testenv.Redis(t), testenv.Redis(t)
	mc := testenv.Memcached(t)
	listenR := testenv.Addr(testenv.FreePort(t))
	listenM := testenv.Addr(testenv.FreePort(t))
	conf := fmt.Sprintf("cache:\n  listen: %s\n  redis: true\n  hash: murmur\n  servers:\n   - %s:1\n   - %s:2 second\nmc:\n  listen: %s\n  servers:\n   - %s:1\n",
		listenR, r1.Addr, r2.Addr, listenM, mc.Addr)
	path := writeFile(t, "nutcracker.yml", conf)
	testenv.StartNutcracker(t, "0.5.0", conf, listenR, listenM)

	code, out, errOut := run(t, nil, "check", "connect", path, "-o", "json")
	if code != cli.ExitOK {
		t.Fatalf("check connect: exit %d\n%s%s", code, out, errOut)
	}
	var rows []map[string]any
	if err := json.Unmarshal([]byte(out), &rows); err != nil || len(rows) != 3 {
		t.Fatalf("check connect -o json: %v\n%s", err, out)
	}

	dead := writeFile(t, "dead.yml", fmt.Sprintf("cache:\n  listen: %s\n  redis: true\n  servers:\n   - %s:1\n   - 127.0.0.1:%d:1\n", listenR, r1.Addr, testenv.FreePort(t)))
	if code, out, _ := run(t, nil, "check", "connect", dead); code != cli.ExitFailure || !strings.Contains(out, "no") {
		t.Fatalf("check connect with a dead server: exit %d\n%s", code, out)
	}

	for _, pool := range []string{"cache", "mc"} {
		code, out, errOut = run(t, nil, "routing", "verify", path, "--pool", pool, "--keys", "100")
		if code != cli.ExitOK || !strings.Contains(out, "0 mismatches") {
			t.Fatalf("routing verify %s: exit %d\n%s%s", pool, code, out, errOut)
		}
	}
	// The same file with the hash changed predicts wrongly: verify must fail.
	wrong := writeFile(t, "wrong.yml", strings.Replace(conf, "hash: murmur", "hash: md5", 1))
	if code, out, _ := run(t, nil, "routing", "verify", wrong, "--pool", "cache", "--proxy", listenR, "--keys", "100"); code != cli.ExitFailure {
		t.Fatalf("routing verify with the wrong hash: exit %d\n%s", code, out)
	}
	code, out, _ = run(t, nil, "routing", "diff", path, wrong, "--pool", "cache", "-o", "json")
	var diffs []struct {
		Pool          string
		MovedFraction float64 `json:"moved_fraction"`
	}
	if code != cli.ExitOK || json.Unmarshal([]byte(out), &diffs) != nil || len(diffs) != 1 || diffs[0].MovedFraction < 0.2 {
		t.Fatalf("routing diff: exit %d %+v\n%s", code, diffs, out)
	}
	if code, _, errOut := run(t, nil, "routing", "verify", path); code != cli.ExitUsage || !strings.Contains(errOut, "--pool") {
		t.Fatalf("routing verify without --pool on a 2-pool file: exit %d %s", code, errOut)
	}
}
