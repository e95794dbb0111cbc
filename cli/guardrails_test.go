package cli_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/patchctl/patchctl/cli"
	"github.com/patchctl/patchctl/internal/testenv"

	"github.com/patchctl/patchctl/lint"
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

// TestGuardrailFidelity runs configurations nutcracker 0.5.0 accepts but that are almost
// always mistakes: patchctl lint warns (and reports no error, as nutcracker accepts them),
// and routing verify through the real nutcracker finds every key where patchctl predicts,
// so the routing model hashes them exactly as nutcracker does.
func TestGuardrailFidelity(t *testing.T) {
	r1, r2, r3 := testenv.Redis(t), testenv.Redis(t), testenv.Redis(t)
	long := strings.Repeat("n", 290)
	cases := []struct {
		name    string
		servers []string
		rule    string
	}{
		// A line ending in a space has an explicit empty name: nutcracker hashes "" (not the
		// address), and patchctl must predict the same.
		{"empty name", []string{`"` + r1.Addr + `:1 "`, r2.Addr + ":1 b", r3.Addr + ":1 c"}, lint.RuleEmptyServerName},
		// One backend under two names is placed twice: double weight.
		{"same address twice", []string{r1.Addr + ":1 a", r1.Addr + ":1 a2", r2.Addr + ":1 b"}, lint.RuleDuplicateAddress},
		// 0.5.0 truncates "<name>-<i>" to 272 bytes on the ketama ring.
		{"long name", []string{r1.Addr + ":1 " + long + "1", r2.Addr + ":1 " + long + "2", r3.Addr + ":1 c"}, lint.RuleLongServerName},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			listen := testenv.Addr(testenv.FreePort(t))
			conf := fmt.Sprintf("p:\n  listen: %s\n  redis: true\n  hash: fnv1a_64\n  distribution: ketama\n  timeout: 400\n  servers:\n   - %s\n",
				listen, strings.Join(c.servers, "\n   - "))
			path := writeFile(t, "nutcracker.yml", conf)
			ok, output, err := testenv.CheckConfig(context.Background(), testenv.Nutcracker(t, "0.5.0"), path)
			if err != nil || !ok {
				t.Fatalf("nutcracker 0.5.0 -t refuses the case: %v %s", err, output)
			}
			code, out, errOut := run(t, nil, "lint", "-o", "json", "--target-version", "0.5.0", path)
			var rep struct {
				Errors   int
				Findings []struct{ Rule string }
			}
			if code != cli.ExitOK || json.Unmarshal([]byte(out), &rep) != nil || rep.Errors != 0 {
				t.Fatalf("lint: exit %d (nutcracker accepts the file)\n%s%s", code, out, errOut)
			}
			if !slices.ContainsFunc(rep.Findings, func(f struct{ Rule string }) bool { return f.Rule == c.rule }) {
				t.Fatalf("lint does not warn %s:\n%s", c.rule, out)
			}
			testenv.StartNutcracker(t, "0.5.0", conf, listen)
			code, out, errOut = run(t, nil, "routing", "verify", path, "--keys", "600")
			if code != cli.ExitOK || !strings.Contains(out, "0 mismatches") {
				t.Fatalf("routing verify through nutcracker 0.5.0: exit %d\n%s%s", code, out, errOut)
			}
		})
	}
}

// TestLintReportsEveryFile: an unreadable file among several is reported, and so are the
// findings of the others; the exit code is the worst (2: a bad argument).
func TestLintReportsEveryFile(t *testing.T) {
	a := writeFile(t, "a.yml", "alpha:\n  listen: 127.0.0.1:22121\n  redis: True\n  timeout: 400\n  servers:\n   - 127.0.0.1:6379:1\n")
	b := writeFile(t, "b.yml", "beta:\n  listen: 127.0.0.1:22122\n  servers:\n   - 127.0.0.1:6379:1\n")
	code, out, errOut := run(t, nil, "lint", a, "/nonexistent/missing.yml", b)
	if code != cli.ExitUsage {
		t.Fatalf("exit %d, want 2\n%s%s", code, out, errOut)
	}
	for _, want := range []string{"a.yml:3:10: error: invalid-bool", "missing.yml:1:1: error: read: cannot read the file", "b.yml:1:1: warning: no-timeout"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(errOut, "lint: lint:") {
		t.Errorf("doubled prefix: %s", errOut)
	}
}

// TestCheckConnectWrongProtocol: a server that answers in the other protocol is named as
// such, not as unreachable.
func TestCheckConnectWrongProtocol(t *testing.T) {
	r, mc := testenv.Redis(t), testenv.Memcached(t)
	path := writeFile(t, "swapped.yml", fmt.Sprintf("r:\n  listen: 127.0.0.1:%d\n  redis: true\n  servers:\n   - %s:1\nm:\n  listen: 127.0.0.1:%d\n  servers:\n   - %s:1\n",
		testenv.FreePort(t), mc.Addr, testenv.FreePort(t), r.Addr))
	code, out, errOut := run(t, nil, "check", "connect", path, "-o", "json")
	var rows []struct{ Pool, Error string }
	if code != cli.ExitFailure || json.Unmarshal([]byte(out), &rows) != nil || len(rows) != 2 {
		t.Fatalf("exit %d\n%s%s", code, out, errOut)
	}
	for _, row := range rows {
		want := map[string]string{"r": "not a redis server", "m": "not a memcached server"}[row.Pool]
		if !strings.Contains(row.Error, want) || strings.Contains(row.Error, "redigo") {
			t.Errorf("pool %s: error %q, want %q", row.Pool, row.Error, want)
		}
	}
}
