package cli_test

import (
	"context"
	"encoding/json"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/patchctl/patchctl/cli"
	"github.com/patchctl/patchctl/internal/testenv"
)

// TestRolloutCommands drives a two-host fleet (real nutcracker, redis, memcached) from the
// command line through a daemon: plan, start, status --watch, list, rollback --rollout,
// with -o json and the documented exit codes.
func TestRolloutCommands(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Fatal("deploys run nutcracker as the unprivileged nutcracker user: run as root (CI does)")
	}
	hosts := testenv.Fleet(t, testenv.FleetHost{Name: "stage-1", Environment: "staging"}, testenv.FleetHost{Name: "prod-1", Environment: "production"})
	inv := writeFile(t, "inventory.yml", testenv.FleetInventory(hosts, ""))
	cfg := daemonConfig(t, inv, `rollouts:
  default_policy: quick
  soak_interval: 100ms
  policies:
    - name: quick
      waves:
        - name: staging
          environments: [staging]
        - name: production
          environments: [production]
`)
	cmd := func(args ...string) (int, string, string) {
		return run(t, nil, append([]string{"--config", cfg}, args...)...)
	}

	// Without a daemon: reading works, starting is refused.
	if code, out, _ := cmd("rollout", "list", "-o", "json"); code != cli.ExitOK || !strings.Contains(out, `"rollouts": []`) {
		t.Fatalf("list: exit %d\n%s", code, out)
	}
	if code, _, errOut := cmd("rollout", "status"); code != cli.ExitUsage || !strings.Contains(errOut, "no rollout yet") {
		t.Errorf("status with no rollout: exit %d %s", code, errOut)
	}
	if code, _, errOut := cmd("rollout", "start", "--version", "0.5.0"); code != cli.ExitFailure || !strings.Contains(errOut, "patchctl daemon") {
		t.Errorf("start without daemon: exit %d %s", code, errOut)
	}
	for _, args := range [][]string{{"rollout", "plan"}, {"rollout", "pause"}, {"rollout", "abort", "a", "b"},
		{"rollout", "plan", "--version", "0.5.0", "--policy", "nope"}, {"rollback", "--rollout", "x", "--host", "h"}} {
		if code, _, errOut := cmd(args...); code != cli.ExitUsage {
			t.Errorf("%v: exit %d (want 2) %s", args, code, errOut)
		}
	}

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int, 1)
	go func() {
		done <- cli.Main(ctx, []string{"--config", cfg, "daemon"}, cli.IO{Out: &strings.Builder{}, Err: &strings.Builder{}, Getenv: func(string) string { return "" }})
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(time.Minute):
			t.Error("daemon did not stop")
		}
	})
	for start := time.Now(); ; time.Sleep(50 * time.Millisecond) {
		if _, out, _ := cmd("status", "-o", "json"); strings.Contains(out, `"daemon": true`) {
			break
		}
		if time.Since(start) > time.Minute {
			t.Fatal("daemon did not start")
		}
	}
	for _, h := range hosts {
		if code, out, errOut := cmd("deploy", "--host", h.Name, "--version", "0.4.1"); code != cli.ExitOK {
			t.Fatalf("deploy 0.4.1 to %s: exit %d\n%s%s", h.Name, code, out, errOut)
		}
	}

	code, out, errOut := cmd("rollout", "plan", "--version", "0.5.0")
	if code != cli.ExitOK || !strings.Contains(out, "staging") || strings.Count(out, " deploy ") != 2 {
		t.Fatalf("plan: exit %d\n%s%s", code, out, errOut)
	}
	code, out, errOut = cmd("rollout", "start", "--version", "0.5.0", "-o", "json")
	var started struct {
		ID    string `json:"id"`
		State string `json:"state"`
	}
	if code != cli.ExitOK || json.Unmarshal([]byte(out), &started) != nil || started.State != "running" {
		t.Fatalf("start: exit %d\n%s%s", code, out, errOut)
	}
	code, out, errOut = cmd("rollout", "status", started.ID, "--watch", "--interval", "200ms")
	if code != cli.ExitOK || !strings.Contains(out, "succeeded") {
		t.Fatalf("status --watch: exit %d\n%s%s", code, out, errOut)
	}
	code, out, _ = cmd("rollout", "status", "-o", "json")
	var st struct {
		Waves []struct {
			State string   `json:"state"`
			Hosts []string `json:"hosts"`
		} `json:"waves"`
		Hosts     map[string]struct{ State string } `json:"hosts"`
		HoldAfter []string                          `json:"hold_after"`
		Unmatched []string                          `json:"unmatched"`
	}
	if code != cli.ExitOK || json.Unmarshal([]byte(out), &st) != nil || len(st.Waves) != 2 || st.Hosts["prod-1"].State != "succeeded" ||
		st.HoldAfter == nil || st.Unmatched == nil {
		t.Fatalf("status -o json: exit %d\n%s", code, out)
	}
	for _, h := range hosts {
		if v, err := h.Version(context.Background()); err != nil || v != "0.5.0" {
			t.Errorf("%s runs %s, %v", h.Name, v, err)
		}
	}
	if code, out, _ := cmd("rollout", "list"); code != cli.ExitOK || !strings.Contains(out, started.ID) {
		t.Errorf("list: exit %d\n%s", code, out)
	}
	if code, _, errOut := cmd("rollout", "resume", started.ID); code != cli.ExitFailure || !strings.Contains(errOut, "only a paused rollout") {
		t.Errorf("resume of a finished rollout: exit %d %s", code, errOut)
	}

	if code, out, errOut := cmd("rollback", "--rollout", started.ID); code != cli.ExitOK || !strings.Contains(out, "aborting") {
		t.Fatalf("rollback --rollout: exit %d\n%s%s", code, out, errOut)
	}
	code, out, _ = cmd("rollout", "status", started.ID, "--watch", "--interval", "200ms")
	if code != cli.ExitFailure || !strings.Contains(out, "rolled_back") {
		t.Fatalf("status after rollback: exit %d\n%s", code, out)
	}
	for _, h := range hosts {
		if v, err := h.Version(context.Background()); err != nil || v != "0.4.1" {
			t.Errorf("%s runs %s after the rollback, %v", h.Name, v, err)
		}
	}
}
