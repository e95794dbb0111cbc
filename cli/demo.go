package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing/fstest"
	"time"

	"github.com/patchctl/patchctl/app"
	"github.com/patchctl/patchctl/mirror"
	"github.com/patchctl/patchctl/patching"
)

type demoCmd struct {
	env  *Env
	dir  string
	wait time.Duration
}

func newDemoCmd(env *Env, fs *flag.FlagSet) Command {
	c := &demoCmd{env: env}
	fs.StringVar(&c.dir, "dir", "", "keep the demo's state in this `directory` (default: a temporary one, removed at the end)")
	durationFlag(fs, &c.wait, "wait", 10*time.Second, time.Millisecond, time.Hour, "how `long` to wait for each alert")
	return c
}

// demoHeld are the releases the mirror publishes only in the demo's second act.
var demoHeld = map[string]bool{"0.5.0": true, "v0.5.0-RC1": true}

// demoMarker starts the configuration the demo writes: a --dir whose patchctl.yml lacks it is
// someone else's, and the demo will not reset its state.
const demoMarker = "# written by patchctl demo; its state directory is reset on every run\n"

// demoReport is the demo's answer with -o json (docs/json.md).
type demoReport struct {
	Dir       string     `json:"dir"`
	Mirror    string     `json:"mirror"`
	Webhook   string     `json:"webhook"`
	Socket    string     `json:"socket"`
	Steps     []demoStep `json:"steps"`
	Alerts    []string   `json:"alerts"`
	NextSteps []string   `json:"next_steps"`
}

type demoStep struct {
	Command string          `json:"command"`
	Output  json.RawMessage `json:"output"`
}

// demoNext is what to do after the demo, on a real fleet.
var demoNext = []string{
	"track the real twemproxy: copy configs/patchctl.example.yml to /etc/patchctl/patchctl.yml (github.api_url defaults to api.github.com; set github.token_file to poll without the 60 requests/hour limit)",
	"alert Slack: set slack.webhook_url_file (an incoming webhook) or slack.token_file and slack.channel, then run 'patchctl notify test'",
	"describe your proxies: copy configs/inventory.example.yml, set inventory.file, then run 'patchctl inventory --poll'",
	"check a proxy's configuration for the version you will install: 'patchctl lint --target-version 0.5.0 nutcracker.yml'",
	"first deploy: 'patchctl deploy --host HOST --version 0.5.0 --dry-run', then without --dry-run; 'patchctl rollback --host HOST' undoes it",
	"run the daemon as its own user: configs/patchctl.service",
}

func (c *demoCmd) Run(ctx context.Context) error {
	asJSON := c.env.Output == "json"
	report := demoReport{}
	// The webhook prints from its own goroutine while the steps print tables.
	out := &syncWriter{w: c.env.Out}
	if asJSON {
		out.w = io.Discard
	}
	stdout := c.env.Out
	c.env.Out = out
	dir := c.dir
	if dir == "" {
		tmp, err := os.MkdirTemp("", "patchctl-demo-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(tmp)
		dir = tmp
	} else if err := resetDemoDir(dir); err != nil {
		return err
	}
	report.Dir = dir

	// The second act (a fleet patched in its windows) needs root, the nutcracker packages,
	// redis and memcached; as root the demo installs them the way the test suite does.
	pre := findDemoPrereqs(c.env.Getenv)
	if len(pre.missing) > 0 && pre.root && pre.installer != "" {
		fmt.Fprintf(out, "installing what the fleet part needs (%s), the way the test suite does: bash %s\n", strings.Join(pre.missing, ", "), pre.installer)
		install := exec.CommandContext(ctx, "bash", pre.installer)
		install.Stdout, install.Stderr = c.env.Err, c.env.Err
		if err := install.Run(); err != nil {
			fmt.Fprintf(out, "  the installer failed: %v\n", err)
		}
		pre.check()
	}
	var fleet *demoFleet
	var downloads http.Handler
	if len(pre.missing) == 0 {
		var err error
		if downloads, err = demoDownloads(pre.bin); err != nil {
			return err
		}
		fleet = &demoFleet{p: pre}
		defer fleet.stop(dir)
		// The unprivileged nutcracker user runs the hosts' proxies from under dir.
		if err := os.Chmod(dir, 0o755); err != nil {
			return err
		}
		if err := fleet.start(ctx, dir); err != nil {
			return err
		}
	}

	// A GitHub-compatible mirror of twemproxy's real history, first without 0.5.0.
	before, err := editReleases(mirror.Twemproxy(), func(it map[string]any) bool { return !demoHeld[releaseTag(it)] })
	if err != nil {
		return err
	}
	var current atomic.Pointer[mirror.Server]
	current.Store(mirror.New(before, mirror.Options{}))
	gh, err := serveLoopback(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if downloads != nil && strings.HasPrefix(r.URL.Path, "/download/") {
			downloads.ServeHTTP(w, r)
			return
		}
		current.Load().ServeHTTP(w, r)
	}))
	if err != nil {
		return err
	}
	defer gh.Close()

	// A Slack-compatible incoming webhook that prints what it receives.
	hook := &demoWebhook{out: out, got: make(chan struct{}, 16)}
	slack, err := serveLoopback(hook)
	if err != nil {
		return err
	}
	defer slack.Close()
	report.Mirror, report.Webhook = "http://"+gh.Addr()+"/", "http://"+slack.Addr()+"/"

	cfgPath := filepath.Join(dir, "patchctl.yml")
	cfgText := fmt.Sprintf(demoMarker+`data_dir: %s
log:
  level: warn
metrics:
  listen: 127.0.0.1:0
github:
  api_url: http://%s/
tracker:
  schedule: "@every 1h"
slack:
  webhook_url: http://%s/services/DEMO/DEMO/demo
notify:
  interval: 200ms
  min_backoff: 200ms
  # The demo's webhook has no rate limit, and every alert is shown on its own.
  min_gap: 50ms
  digest_after: 0
`, filepath.Join(dir, "state"), gh.Addr(), slack.Addr())
	if fleet != nil {
		inv := filepath.Join(dir, "inventory.yml")
		if err := os.WriteFile(inv, []byte(fleet.inventory()), 0o644); err != nil {
			return err
		}
		cfgText += demoFleetConfig(inv, report.Mirror)
	}
	if err := os.WriteFile(cfgPath, []byte(cfgText), 0o600); err != nil {
		return err
	}
	c.env.ConfigPath = cfgPath
	cfg, err := c.env.Config()
	if err != nil {
		return err
	}

	fmt.Fprintf(out, "patchctl demo: a real daemon in %s\n", dir)
	fmt.Fprintf(out, "  GitHub-compatible mirror of twemproxy's history: %s (0.5.0 not published yet)\n", report.Mirror)
	fmt.Fprintf(out, "  Slack-compatible webhook:                        %s\n\n", report.Webhook)

	clock := &patching.JumpClock{}
	a, err := app.Open(ctx, cfg, app.Options{Logger: c.env.Logger(), Now: clock.Now})
	if err != nil {
		return err
	}
	defer a.Close()
	daemonCtx, stop := context.WithCancel(ctx)
	ready := make(chan app.Addrs, 1)
	served := make(chan error, 1)
	go func() { served <- a.Serve(daemonCtx, func(ad app.Addrs) { ready <- ad }) }()
	defer func() { stop(); <-served }()
	select {
	case ad := <-ready:
		report.Socket = ad.Socket
		fmt.Fprintf(out, "daemon listening on %s (metrics on http://%s/metrics)\n", ad.Socket, ad.Metrics)
	case err := <-served:
		return fmt.Errorf("daemon: %w", err)
	}

	if fleet != nil {
		if err := c.installFleet(ctx, fleet); err != nil {
			return err
		}
	}

	// Every step below is the CLI talking to the daemon over its socket. With -o json each
	// step's answer is kept for the one JSON document the demo writes at the end.
	step := func(title string, cmd Command) error {
		fmt.Fprintf(out, "\n$ patchctl %s\n", title)
		if !asJSON {
			return cmd.Run(ctx)
		}
		var buf bytes.Buffer
		c.env.Out = &buf
		defer func() { c.env.Out = out }()
		if err := cmd.Run(ctx); err != nil {
			return err
		}
		report.Steps = append(report.Steps, demoStep{Command: title, Output: bytes.TrimSpace(buf.Bytes())})
		return nil
	}
	if err := step("poll", &pollCmd{env: c.env}); err != nil {
		return err
	}
	if err := hook.await(ctx, 1, c.wait); err != nil {
		return err
	}

	fmt.Fprintf(out, "\nmirror: publishing v0.5.0-RC1 (pre-release) and 0.5.0, its .deb as a release asset\n")
	after, err := editReleases(mirror.Twemproxy(), func(it map[string]any) bool {
		if releaseTag(it) == "0.5.0" {
			it["assets"] = []map[string]any{{"name": "nutcracker_0.5.0.deb", "content_type": "application/vnd.debian.binary-package",
				"browser_download_url": report.Mirror + "download/nutcracker_0.5.0.deb"}}
		}
		return true
	})
	if err != nil {
		return err
	}
	current.Store(mirror.New(after, mirror.Options{}))
	if err := step("poll", &pollCmd{env: c.env}); err != nil {
		return err
	}
	if err := hook.await(ctx, 3, c.wait); err != nil {
		return err
	}
	fmt.Fprintf(out, "\n(nothing changed upstream: every endpoint answers 304 Not Modified, no rate-limit unit spent)\n")
	if err := step("poll", &pollCmd{env: c.env}); err != nil {
		return err
	}
	if err := step("releases", &query[app.ReleasesArgs, app.ReleaseList]{env: c.env, method: "releases", table: releasesTable}); err != nil {
		return err
	}
	if err := step("events --kind release.", &eventsCmd{env: c.env, filter: eventFilter("release.")}); err != nil {
		return err
	}
	fmt.Fprintf(out, "\nalerts delivered to the webhook: %d (one summary, one per new release; none repeated)\n", hook.count.Load())
	if fleet != nil {
		if err := c.fleetAct(ctx, fleet, clock, step); err != nil {
			return err
		}
	} else {
		fmt.Fprintf(out, "\nThe fleet part (local hosts patched in their windows, staging then production, a\n"+
			"failing host rolled back, the rollout undone) did not run. Missing: %s.\n", strings.Join(pre.missing, "; "))
		if !pre.root {
			fmt.Fprintf(out, "Run the demo as root: it then installs nutcracker 0.4.1 and 0.5.0, redis and memcached itself.\n")
		}
	}
	fmt.Fprintf(out, "\nNext, on your own fleet:\n")
	for i, s := range demoNext {
		fmt.Fprintf(out, "  %d. %s\n", i+1, s)
	}
	if c.dir != "" {
		fmt.Fprintf(out, "\nThe demo's store stays in %s: 'patchctl --config %s releases' reads it.\n", dir, cfgPath)
	}
	if !asJSON {
		return nil
	}
	report.Alerts, report.NextSteps = hook.texts(), demoNext
	c.env.Out = stdout
	return c.env.writeJSON(report)
}

// resetDemoDir prepares a --dir for a new run: the state of an earlier demo run is removed
// (its first poll must be a first poll again); a directory holding anything else's
// patchctl.yml is refused.
func resetDemoDir(dir string) error {
	data, err := os.ReadFile(filepath.Join(dir, "patchctl.yml"))
	switch {
	case errors.Is(err, os.ErrNotExist):
		return os.MkdirAll(dir, 0o700)
	case err != nil:
		return err
	case !bytes.HasPrefix(data, []byte(demoMarker)):
		return usagef("%s holds a patchctl.yml the demo did not write: choose an empty --dir", dir)
	}
	// The state, and the hosts of the fleet part (their deploy roots belong to that state).
	return errors.Join(os.RemoveAll(filepath.Join(dir, "state")), os.RemoveAll(filepath.Join(dir, "hosts")))
}

// releaseTag is a listed release's or tag's name.
func releaseTag(it map[string]any) string {
	if tag, _ := it["tag_name"].(string); tag != "" {
		return tag
	}
	name, _ := it["name"].(string)
	return name
}

// editReleases returns fsys with every JSON listing passed through keep, which may change an
// item and says whether it stays.
func editReleases(fsys fs.FS, keep func(item map[string]any) bool) (fs.FS, error) {
	out := fstest.MapFS{}
	err := fs.WalkDir(fsys, ".", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := fs.ReadFile(fsys, path)
		if err != nil {
			return err
		}
		if filepath.Ext(path) == ".json" {
			var items []map[string]any
			if err := json.Unmarshal(data, &items); err != nil {
				return fmt.Errorf("%s: %w", path, err)
			}
			kept := items[:0]
			for _, it := range items {
				if keep(it) {
					kept = append(kept, it)
				}
			}
			if data, err = json.Marshal(kept); err != nil {
				return err
			}
		}
		out[path] = &fstest.MapFile{Data: data, Mode: 0o444}
		return nil
	})
	return out, err
}

type loopbackServer struct {
	srv *http.Server
	ln  net.Listener
}

func (s *loopbackServer) Addr() string { return s.ln.Addr().String() }
func (s *loopbackServer) Close()       { s.srv.Close() }

func serveLoopback(h http.Handler) (*loopbackServer, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	s := &loopbackServer{srv: &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}, ln: ln}
	go s.srv.Serve(ln)
	return s, nil
}

type syncWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}

// demoWebhook answers like a Slack incoming webhook and prints each message's text.
type demoWebhook struct {
	out      io.Writer
	count    atomic.Int32
	got      chan struct{}
	mu       sync.Mutex
	received []string
}

// texts returns the messages received so far.
func (h *demoWebhook) texts() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.received)
}

func (h *demoWebhook) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var msg struct {
		Text string `json:"text"`
	}
	if err := json.NewDecoder(io.LimitReader(r.Body, 1<<20)).Decode(&msg); err != nil || msg.Text == "" {
		http.Error(w, "invalid_payload", http.StatusBadRequest)
		return
	}
	fmt.Fprintf(h.out, "  [slack] %s\n", msg.Text)
	h.mu.Lock()
	h.received = append(h.received, msg.Text)
	h.mu.Unlock()
	h.count.Add(1)
	w.Write([]byte("ok"))
	select {
	case h.got <- struct{}{}:
	default:
	}
}

// await waits until n messages in total have arrived.
func (h *demoWebhook) await(ctx context.Context, n int, timeout time.Duration) error {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for int(h.count.Load()) < n {
		select {
		case <-h.got:
		case <-deadline.C:
			return errors.New("no alert reached the webhook in time")
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}
