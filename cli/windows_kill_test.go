package cli_test

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/patchctl/patchctl/internal/testenv"
	"github.com/patchctl/patchctl/patching"
	"github.com/patchctl/patchctl/store"
	"github.com/patchctl/patchctl/waves"
)

// TestScheduledRolloutSurvivesSIGKILL: the daemon, killed with SIGKILL while a window is open
// and the rollout it started runs, and started again, continues the schedule and the
// rollout: one rollout, started once, every host patched once and serving.
func TestScheduledRolloutSurvivesSIGKILL(t *testing.T) {
	rels := t.TempDir()
	repo := filepath.Join(rels, "repos", "twitter", "twemproxy")
	if err := os.MkdirAll(repo, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(repo, "releases.json"), []byte(`[
  {"tag_name": "0.4.1", "name": "0.4.1", "published_at": "2015-06-22T00:00:00Z", "body": "0.4.1"},
  {"tag_name": "0.5.0", "name": "0.5.0", "published_at": "2021-07-13T00:00:00Z", "body": "0.5.0"}]`), 0o644); err != nil {
		t.Fatal(err)
	}
	// Windows open every minute for an hour: whenever the test runs, they are open (the
	// real clock runs the daemon here). No approval, so production follows staging.
	f := newProcFleet(t, fmt.Sprintf(`tracker:
  sources:
    - repo: twitter/twemproxy
      dir: %s
      tags: false
      advisories: false
rollouts:
  default_policy: kill
  soak_interval: 200ms
  policies:
    - name: kill
      waves:
        - name: staging
          environments: [staging]
          soak: 2s
        - name: production
          environments: [production]
          max_parallel: 1
          soak: 2s
patching:
  policies:
    - name: always
      min_release_age: 0s
      require_approval: false
  windows:
    - name: staging
      recurrence: "* * * * *"
      time_zone: UTC
      duration: 1h
      kind: staging
    - name: production
      recurrence: "* * * * *"
      time_zone: UTC
      duration: 1h
      kind: production
`, rels),
		testenv.FleetHost{Name: "stage-1", Environment: "staging"},
		testenv.FleetHost{Name: "prod-1", Environment: "production"},
		testenv.FleetHost{Name: "prod-2", Environment: "production"})
	for _, args := range [][]string{{"poll"}, {"inventory", "--poll"}} {
		if code, out, errOut := f.cmd(args...); code != 0 {
			t.Fatalf("%s: exit %d\n%s%s", args[0], code, out, errOut)
		}
	}
	rollouts := func() []store.Rollout {
		t.Helper()
		var list struct {
			Rollouts []store.Rollout `json:"rollouts"`
		}
		code, out, errOut := f.cmd("rollout", "list", "-o", "json")
		if code != 0 || json.Unmarshal([]byte(out), &list) != nil {
			t.Fatalf("rollout list: exit %d\n%s%s\ndaemon log:\n%s", code, out, errOut, f.d.tail())
		}
		return list.Rollouts
	}
	// waitFor polls the one rollout until cond holds (the scheduler ticks every 15 s), and
	// fails at once if the rollout settled where nothing will move it. cond and the check
	// read the same status answer: the list is older by a moment.
	waitFor := func(what string, cond func(waves.View) bool) store.Rollout {
		t.Helper()
		for start := time.Now(); ; time.Sleep(200 * time.Millisecond) {
			rs := rollouts()
			if len(rs) > 1 {
				t.Fatalf("%d rollouts: the scheduler started one twice: %+v", len(rs), rs)
			}
			if len(rs) == 1 {
				v := f.status(rs[0].ID)
				if cond(v) {
					return rs[0]
				}
				// The scheduler itself promotes a staged rollout and resumes one its window
				// closed; any other settled rollout stays as it is.
				if v.Settled() && !v.AwaitingPromote && v.Reason != patching.ReasonWindowClosed {
					t.Fatalf("%s: not reached; rollout %s settled %s (%s)\ndaemon log:\n%s", what, v.ID, v.State, v.Reason, f.d.tail())
				}
			}
			if time.Since(start) > 5*time.Minute {
				t.Fatalf("%s: not reached; rollouts %+v\ndaemon log:\n%s", what, rs, f.d.tail())
			}
		}
	}
	hostRunning := func(v waves.View, wave string) bool {
		for _, h := range v.Hosts {
			if h.Wave == wave && h.State == waves.HostRunning {
				return true
			}
		}
		return false
	}
	// Killed while staging runs, then while production runs (or soaks), then while
	// production soaks.
	waitFor("staging running", func(v waves.View) bool {
		return hostRunning(v, "staging") || v.Waves[0].State == waves.WaveSoaking
	})
	f.d.signal(syscall.SIGKILL)
	f.d.start()
	// A production deploy takes a tenth of a second here, less than one look: a kill
	// during its soak does too.
	waitFor("production running", func(v waves.View) bool {
		return hostRunning(v, "production") || v.Waves[1].State == waves.WaveSoaking
	})
	f.d.signal(syscall.SIGKILL)
	f.d.start()
	waitFor("production soaking", func(v waves.View) bool {
		return v.Waves[1].State == waves.WaveSoaking || v.State == waves.StateSucceeded
	})
	f.d.signal(syscall.SIGKILL)
	f.d.start()
	r := waitFor("succeeded", func(v waves.View) bool { return v.State == waves.StateSucceeded })

	// Started once, each host deployed once, and the scheduler let go of it.
	code, out, _ := f.cmd("events", "--kind", "patching.started", "-n", "0", "-o", "json")
	if code != 0 || strings.Count(out, `"kind": "patching.started"`) != 1 {
		t.Errorf("patching.started events (want exactly one):\n%s", out)
	}
	code, out, _ = f.cmd("events", "--kind", "deploy.", "-n", "0", "-o", "json")
	for _, h := range f.hosts {
		if n := strings.Count(out, `"subject": "`+h.Name+`"`); code != 0 || n == 0 {
			t.Errorf("%s: no deploy events", h.Name)
		}
		if err := h.WaitServing(t.Context(), "0.5.0", 30*time.Second); err != nil {
			t.Errorf("%s: %v", h.Name, err)
		}
	}
	// The next tick sees the rollout finished and the fleet current.
	for start := time.Now(); ; time.Sleep(500 * time.Millisecond) {
		f.cmd("inventory", "--poll")
		_, out, _ = f.cmd("windows", "--next", "1", "-o", "json")
		if strings.Contains(out, `"rollouts": []`) && strings.Contains(out, "all hosts run 0.5.0") {
			break
		}
		if time.Since(start) > 2*time.Minute {
			t.Fatalf("rollout %s finished but the scheduler still holds it:\n%s", r.ID, out)
		}
	}
}
