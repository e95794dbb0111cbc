package cli_test

import (
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/patchctl/patchctl/cli"
	"github.com/patchctl/patchctl/internal/testenv"
	"github.com/patchctl/patchctl/mirror"
)

// TestInventoryCommand reads real nutcracker 0.4.1 and 0.5.0 processes and a dead host,
// assesses them against the releases the tracker stored and the curated feed, and alerts
// once per change.
func TestInventoryCommand(t *testing.T) {
	redis := testenv.Redis(t)
	proxy := func(v string) *testenv.Proxy {
		listen := testenv.Addr(testenv.FreePort(t))
		return testenv.StartNutcracker(t, v, fmt.Sprintf("p:\n  listen: %s\n  redis: true\n  servers:\n   - %s:1\n", listen, redis.Addr), listen)
	}
	old, cur := proxy("0.4.1"), proxy("0.5.0")
	inv := writeFile(t, "inventory.yml", fmt.Sprintf(`defaults:
  config: /etc/nutcracker/nutcracker.yml
  transport:
    type: local
hosts:
  - name: old
    environment: production
    stats: %s
    binary: %s
  - name: current
    environment: production
    stats: %s
  - name: gone
    environment: staging
    stats: 127.0.0.1:%d
    binary: %s
`, old.Stats, testenv.Nutcracker(t, "0.4.1"), cur.Stats, testenv.FreePort(t), testenv.Nutcracker(t, "0.5.0")))
	gh := httptest.NewServer(mirror.New(mirror.Twemproxy(), mirror.Options{}))
	defer gh.Close()
	cfg := writeConfig(t, "github:\n  api_url: "+gh.URL+"\ninventory:\n  file: "+inv+"\n  stats_timeout: 1s\n")

	if code, out, errOut := run(t, nil, "--config", cfg, "poll"); code != cli.ExitOK {
		t.Fatalf("poll: exit %d %s%s", code, out, errOut)
	}
	code, out, errOut := run(t, nil, "--config", cfg, "inventory", "--poll", "-o", "json")
	if code != cli.ExitOK {
		t.Fatalf("inventory: exit %d %s%s", code, out, errOut)
	}
	var rep struct {
		Hosts []struct {
			Host, Version, Latest, Source string
			Answering                     bool
			Behind                        int
			Findings                      []struct {
				ID          string
				Severity    json.RawMessage
				DaysExposed int `json:"days_exposed"`
			}
		}
		Environments []struct {
			Environment    string
			Hosts, Exposed int
		}
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	hosts := map[string]int{}
	for i, h := range rep.Hosts {
		hosts[h.Host] = i
	}
	o, c, g := rep.Hosts[hosts["old"]], rep.Hosts[hosts["current"]], rep.Hosts[hosts["gone"]]
	if o.Version != "0.4.1" || o.Latest != "0.5.0" || o.Behind != 1 || len(o.Findings) <= len(c.Findings) {
		t.Errorf("0.4.1 host = %+v", o)
	}
	for _, f := range o.Findings {
		if f.DaysExposed < 365 && f.ID != "" && strings.Contains(string(f.Severity), "high") {
			t.Errorf("finding %s fixed in 2021 exposed only %d days", f.ID, f.DaysExposed)
		}
	}
	if c.Version != "0.5.0" || c.Behind != 0 {
		t.Errorf("0.5.0 host = %+v", c)
	}
	// The dead host's stats port is closed; its binary still tells the version.
	if g.Version != "0.5.0" || g.Answering || g.Source != "binary" {
		t.Errorf("dead host = %+v", g)
	}

	// A second pass changes nothing: no new event, no new alert.
	count := func() int {
		_, out, _ := run(t, nil, "--config", cfg, "events", "--kind", "inventory.", "-n", "0", "-o", "json")
		var evs []any
		json.Unmarshal([]byte(out), &evs)
		return len(evs)
	}
	first := count()
	if first == 0 {
		t.Fatal("no inventory event after the first pass")
	}
	if code, _, errOut := run(t, nil, "--config", cfg, "inventory", "--poll"); code != cli.ExitOK {
		t.Fatalf("second pass: %s", errOut)
	}
	if n := count(); n != first {
		t.Errorf("second pass added %d events", n-first)
	}
	// Stopping a host is one change.
	old.Stop()
	run(t, nil, "--config", cfg, "inventory", "--poll")
	if n := count(); n != first+1 {
		t.Errorf("stopping a host added %d events, want 1", n-first)
	}
	code, out, _ = run(t, nil, "--config", cfg, "status")
	if code != cli.ExitOK || !strings.Contains(out, "production") || !strings.Contains(out, "staging") {
		t.Errorf("status lacks the fleet:\n%s", out)
	}
}
