package cli_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/patchctl/patchctl/cli"
	"github.com/patchctl/patchctl/internal/testenv"
	"github.com/patchctl/patchctl/mirror"
)

// TestDemo runs the README's first command and checks the flow it shows. Without the
// nutcracker packages it runs the tracker part and says what the fleet part is missing.
func TestDemo(t *testing.T) {
	code, out, errOut := run(t, map[string]string{"PATCHCTL_TESTBIN": filepath.Join(t.TempDir(), "none")}, "demo")
	if code != cli.ExitOK {
		t.Fatalf("demo: exit %d\n%s%s", code, out, errOut)
	}
	for _, want := range []string{
		"[slack] patchctl now tracks twitter/twemproxy",
		"[slack] [SECURITY] twitter/twemproxy 0.5.0 released",
		"0.5.0-RC1 pre-release published",
		"unchanged",
		"alerts delivered to the webhook: 3",
		"Next, on your own fleet:",
		"patchctl deploy --host HOST --version 0.5.0 --dry-run",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("demo output lacks %q", want)
		}
	}
	if strings.Count(out, "[slack]") != 3 {
		t.Errorf("demo printed %d alerts, want 3:\n%s", strings.Count(out, "[slack]"), out)
	}
	if !strings.Contains(out, "The fleet part") || !strings.Contains(out, "Missing: nutcracker 0.4.1") {
		t.Errorf("demo does not say what the fleet part is missing:\n%s", out)
	}
}

// TestDemoWholeLoop runs the demo with the nutcracker packages: the whole job on local hosts,
// from the alert to production and back.
func TestDemoWholeLoop(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Fatal("the demo's fleet runs nutcracker as the unprivileged nutcracker user: run as root (CI does)")
	}
	code, out, errOut := run(t, map[string]string{"PATCHCTL_TESTBIN": testenv.BinDir()}, "demo")
	if code != cli.ExitOK {
		t.Fatalf("demo: exit %d\n%s%s", code, out, errOut)
	}
	for _, want := range []string{
		"[slack] [SECURITY] twitter/twemproxy 0.5.0 released",
		"its .deb as a release asset",
		"is exposed to",
		"demo clock: jumping to",
		"when the staging window opens",
		"the daemon started rollout",
		"staging     passed",
		"waiting for approval: patchctl rollout approve",
		"approved: its production waves run in the next production window",
		"when the production window opens",
		"prod-3: deploy of 0.5.0 rolled back to 0.4.1",
		"rollback-smoke",
		"rolled_back",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("demo output lacks %q", want)
		}
	}
	// After rollback --rollout every host runs 0.4.1 again.
	inv := out[strings.LastIndex(out, "$ patchctl inventory --poll"):]
	if strings.Count(inv, " 0.4.1 ") < 4 || strings.Contains(inv, " 0.5.0  0.5.0") {
		t.Errorf("after the rollback the inventory shows:\n%s", inv)
	}
}

// TestRestartBetweenPolls: a daemon restarted between polls neither loses what it knew nor
// alerts again; the poll after the restart is answered by conditional requests.
func TestRestartBetweenPolls(t *testing.T) {
	gh := httptest.NewServer(mirror.New(mirror.Twemproxy(), mirror.Options{}))
	defer gh.Close()
	var alerts atomic.Int32
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		alerts.Add(1)
		w.Write([]byte("ok"))
	}))
	defer hook.Close()
	cfg := writeConfig(t, "github:\n  api_url: "+gh.URL+"\nslack:\n  webhook_url: "+hook.URL+"/services/x\nnotify:\n  interval: 50ms\n")

	for i := range 2 {
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan int, 1)
		go func() {
			done <- cli.Main(ctx, []string{"--config", cfg, "daemon"}, cli.IO{Out: &strings.Builder{}, Err: &strings.Builder{}, Getenv: func(string) string { return "" }})
		}()
		// The CLI reaches the daemon once its socket answers.
		var code int
		var out, errOut string
		for start := time.Now(); time.Since(start) < testenv.WaitTimeout; time.Sleep(20 * time.Millisecond) {
			code, out, errOut = run(t, nil, "--config", cfg, "status")
			if strings.Contains(out, "running, socket") {
				break
			}
		}
		code, out, errOut = run(t, nil, "--config", cfg, "poll", "-o", "json")
		if code != cli.ExitOK {
			t.Fatalf("poll %d: exit %d %s%s", i, code, out, errOut)
		}
		// The first daemon's start-up poll may have recorded everything already.
		if i == 1 && !strings.Contains(out, `"outcome": "unchanged"`) ||
			!strings.Contains(out, `"outcome": "ok"`) && !strings.Contains(out, `"outcome": "unchanged"`) {
			t.Fatalf("poll %d: want ok or, after a restart, unchanged:\n%s", i, out)
		}
		// Let the dispatcher deliver, then stop the daemon.
		for start := time.Now(); alerts.Load() < 1 && time.Since(start) < testenv.WaitTimeout; time.Sleep(20 * time.Millisecond) {
		}
		cancel()
		if c := <-done; c != cli.ExitOK {
			t.Fatalf("daemon %d exited %d", i, c)
		}
	}
	if n := alerts.Load(); n != 1 {
		t.Fatalf("webhook got %d alerts over two daemon runs, want 1 (the first-poll summary)", n)
	}
	// Without a daemon the CLI reads the same store.
	code, out, _ := run(t, nil, "--config", cfg, "releases", "-o", "json")
	var list struct {
		Releases []struct{ Version string }
		Latest   map[string]struct{ Version string }
	}
	if err := json.Unmarshal([]byte(out), &list); code != cli.ExitOK || err != nil || len(list.Releases) != 15 ||
		list.Releases[0].Version != "0.5.0" || list.Latest["twitter/twemproxy"].Version != "0.5.0" {
		t.Fatalf("releases after restart: exit %d, %v\n%s", code, err, out)
	}
}

// TestDemoJSONAndRerun: with -o json the demo writes one JSON document; run again in the
// same --dir it starts over; a --dir holding another patchctl.yml is refused.
func TestDemoJSONAndRerun(t *testing.T) {
	dir := t.TempDir()
	for i := range 2 {
		code, out, errOut := run(t, nil, "demo", "--dir", dir, "-o", "json")
		if code != cli.ExitOK {
			t.Fatalf("run %d: exit %d\n%s%s", i, code, out, errOut)
		}
		var rep struct {
			Steps     []struct{ Command string }
			Alerts    []string
			NextSteps []string `json:"next_steps"`
		}
		dec := json.NewDecoder(strings.NewReader(out))
		if err := dec.Decode(&rep); err != nil || dec.More() {
			t.Fatalf("run %d: stdout is not one JSON document (%v):\n%s", i, err, out)
		}
		if len(rep.Steps) != 5 || len(rep.Alerts) != 3 || len(rep.NextSteps) == 0 {
			t.Fatalf("run %d: %+v", i, rep)
		}
	}
	other := t.TempDir()
	os.WriteFile(filepath.Join(other, "patchctl.yml"), []byte("data_dir: /srv/important\n"), 0o600)
	if code, _, errOut := run(t, nil, "demo", "--dir", other); code != cli.ExitUsage || !strings.Contains(errOut, "did not write") {
		t.Fatalf("foreign --dir: exit %d %s", code, errOut)
	}
}

// TestMirrorServe: `patchctl mirror serve` serves a directory as GitHub's API, and a daemon
// configured with it as github.api_url polls it.
func TestMirrorServe(t *testing.T) {
	dir := t.TempDir()
	repo := filepath.Join(dir, "repos", "acme", "proxy")
	os.MkdirAll(repo, 0o755)
	os.WriteFile(filepath.Join(repo, "releases.json"), []byte(`[{"tag_name":"v1.2.0","name":"1.2.0","published_at":"2026-01-02T00:00:00Z","body":"fixes a crash"}]`), 0o644)
	listen := testenv.Addr(testenv.FreePort(t))
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan int, 1)
	var errOut strings.Builder
	go func() {
		done <- cli.Main(ctx, []string{"mirror", "serve", "--dir", dir, "--listen", listen}, cli.IO{Out: &strings.Builder{}, Err: &syncBuilder{b: &errOut}, Getenv: func(string) string { return "" }})
	}()
	cfg := writeConfig(t, "github:\n  api_url: http://"+listen+"/\ntracker:\n  sources:\n    - repo: acme/proxy\n")
	var code int
	var out, pollErr string
	for start := time.Now(); time.Since(start) < 30*time.Second; time.Sleep(50 * time.Millisecond) {
		if code, out, pollErr = run(t, nil, "--config", cfg, "poll", "-o", "json"); code == cli.ExitOK {
			break
		}
	}
	if code != cli.ExitOK || !strings.Contains(out, `"version": "1.2.0"`) {
		t.Fatalf("poll through the mirror: exit %d\n%s%s", code, out, pollErr)
	}
	stop()
	if c := <-done; c != cli.ExitOK {
		t.Fatalf("mirror serve exited %d", c)
	}
	if code, _, errOut := run(t, nil, "mirror", "serve", "--dir", filepath.Join(dir, "missing")); code != cli.ExitUsage {
		t.Fatalf("missing --dir: exit %d %s", code, errOut)
	}
}

type syncBuilder struct {
	mu sync.Mutex
	b  *strings.Builder
}

func (s *syncBuilder) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}
