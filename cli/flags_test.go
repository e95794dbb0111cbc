package cli_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/patchctl/patchctl/cli"
)

// TestBoundedInput: numeric flags out of range and files without end are usage errors (exit
// 2) that name the flag or the file; none panics or grows without bound.
func TestBoundedInput(t *testing.T) {
	dir := t.TempDir()
	conf := func(name, servers string) string {
		p := filepath.Join(dir, name)
		body := "a:\n  listen: 127.0.0.1:22121\n  distribution: modula\n  servers:\n" + servers
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	// One server of weight 50,000,000 cost 10 s and 1.35 GB when modula was materialised.
	heavy := conf("heavy.yml", "   - 127.0.0.1:6379:50000000\n   - 127.0.0.1:6380:1\n")
	heavier := conf("heavier.yml", "   - 127.0.0.1:6379:50000000\n   - 127.0.0.1:6380:2\n")
	tests := []struct {
		args []string
		code int
		msg  string
	}{
		{[]string{"routing", "diff", "--keys", "-5", heavy, heavier}, cli.ExitUsage, `invalid value "-5" for flag -keys: must be between 1 and 1000000`},
		{[]string{"routing", "diff", "--keys", "2000000000", heavy, heavier}, cli.ExitUsage, "flag -keys: must be between 1 and 1000000"},
		{[]string{"routing", "diff", "--keys", "ten", heavy, heavier}, cli.ExitUsage, "flag -keys: not a whole number"},
		{[]string{"routing", "diff", "--keys", "1000", heavy, heavier}, cli.ExitOK, ""},
		{[]string{"routing", "verify", "--keys", "0", heavy}, cli.ExitUsage, "flag -keys: must be between 1 and 100000"},
		{[]string{"check", "connect", "--concurrency", "100000000", heavy}, cli.ExitUsage, "flag -concurrency: must be between 1 and 1024"},
		{[]string{"check", "connect", "--timeout", "-1s", heavy}, cli.ExitUsage, "flag -timeout: must be between"},
		{[]string{"events", "-n", "-1"}, cli.ExitUsage, "flag -n: must be between 0 and"},
		{[]string{"demo", "--wait", "0s"}, cli.ExitUsage, "flag -wait: must be between"},
		{[]string{"deploy", "--host", "h", "--version", "0.5.0", "--smoke-timeout", "-5s"}, cli.ExitUsage, "flag -smoke-timeout: must be between 0s and 10m0s"},
		{[]string{"lint", "/dev/zero"}, cli.ExitUsage, "/dev/zero: too large: more than 16 MiB"},
		{[]string{"routing", "diff", "/dev/zero", heavy}, cli.ExitUsage, "/dev/zero: too large: more than 16 MiB"},
		{[]string{"--config", "/dev/zero", "status"}, cli.ExitUsage, "/dev/zero: too large: more than 1 MiB"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			code, out, errOut := run(t, nil, tt.args...)
			if code != tt.code || !strings.Contains(errOut, tt.msg) {
				t.Fatalf("exit %d, stderr %q; want exit %d saying %q (stdout %q)", code, errOut, tt.code, tt.msg, out)
			}
		})
	}
}
