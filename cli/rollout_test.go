package cli_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/patchctl/patchctl/cli"
)

// TestDeployAndRollbackCommands drives a pidfile host with real redis and memcached
// backends from the command line: install 0.4.1 from its Debian package, upgrade to 0.5.0,
// roll back in one command, and read the history and the slots.
func TestDeployAndRollbackCommands(t *testing.T) {
	cfg := newDeployHost(t).cfg

	deploy := func(args ...string) (int, string, string) {
		return run(t, nil, append([]string{"--config", cfg}, args...)...)
	}
	if code, out, errOut := deploy("deploy", "--host", "proxy-1", "--version", "0.4.1", "--dry-run"); code != cli.ExitOK || !strings.Contains(out, "dry run") {
		t.Fatalf("dry run: exit %d\n%s%s", code, out, errOut)
	}
	for _, v := range []string{"0.4.1", "0.5.0"} {
		code, out, errOut := deploy("deploy", "--host", "proxy-1", "--version", v)
		if code != cli.ExitOK || !strings.Contains(out, "succeeded") && !strings.Contains(out, "done") {
			t.Fatalf("deploy %s: exit %d\n%s%s", v, code, out, errOut)
		}
	}
	code, out, errOut := deploy("rollback", "--host", "proxy-1", "-o", "json")
	var rep struct {
		Operation struct {
			ToVersion string `json:"to_version"`
			State     string `json:"state"`
		} `json:"operation"`
	}
	if code != cli.ExitOK || json.Unmarshal([]byte(out), &rep) != nil || rep.Operation.ToVersion != "0.4.1" {
		t.Fatalf("rollback: exit %d %+v\n%s%s", code, rep, out, errOut)
	}
	code, out, _ = deploy("slots", "--host", "proxy-1")
	if code != cli.ExitOK || !strings.Contains(out, "0.5.0") || !regexpActive(out, "0.4.1") {
		t.Fatalf("slots:\n%s", out)
	}
	code, out, _ = deploy("history", "--host", "proxy-1")
	if code != cli.ExitOK || strings.Count(out, "→") != 3 {
		t.Fatalf("history:\n%s", out)
	}
	// The host really runs 0.4.1 again: the inventory reads it from the stats port.
	code, out, errOut = deploy("inventory", "--poll", "-o", "json")
	if code != cli.ExitOK || !strings.Contains(out, `"version": "0.4.1"`) {
		t.Fatalf("inventory after rollback: exit %d\n%s%s", code, out, errOut)
	}
	// Errors name what is wrong.
	for _, c := range []struct {
		args     []string
		code     int
		contains string
	}{
		{[]string{"deploy", "--host", "nope", "--version", "0.5.0"}, cli.ExitUsage, `no host "nope"`},
		{[]string{"deploy", "--host", "proxy-1"}, cli.ExitUsage, "--version is required"},
		{[]string{"deploy", "--host", "proxy-1", "--version", "0.4.0"}, cli.ExitFailure, "no verified build of nutcracker 0.4.0"},
		{[]string{"rollback", "--host", "proxy-1", "--to", "9.9.9"}, cli.ExitUsage, "9.9.9"},
	} {
		code, out, errOut := deploy(c.args...)
		if code != c.code || !strings.Contains(out+errOut, c.contains) {
			t.Errorf("%v: exit %d (want %d), want %q in:\n%s%s", c.args, code, c.code, c.contains, out, errOut)
		}
	}
}

// regexpActive reports whether the slots table marks a slot of version v active.
func regexpActive(table, v string) bool {
	for _, line := range strings.Split(table, "\n") {
		f := strings.Fields(line)
		if len(f) >= 2 && f[1] == v && f[len(f)-1] == "*" {
			return true
		}
	}
	return false
}
