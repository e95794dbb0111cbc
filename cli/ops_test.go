package cli_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/patchctl/patchctl/app"
	"github.com/patchctl/patchctl/cli"
	"github.com/patchctl/patchctl/config"
	"github.com/patchctl/patchctl/internal/testenv"
	"github.com/patchctl/patchctl/nutcracker"
	"github.com/patchctl/patchctl/probe"
	"github.com/patchctl/patchctl/rollout"
)

// cliEnv makes a re-executed test binary the patchctl CLI: its value is the argv as JSON.
const cliEnv = "PATCHCTL_TEST_AS_CLI"

func TestMain(m *testing.M) {
	if argv, ok := os.LookupEnv(cliEnv); ok {
		var args []string
		if err := json.Unmarshal([]byte(argv), &args); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(cli.ExitUsage)
		}
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		code := cli.Main(ctx, args, cli.Stdio())
		stop()
		os.Exit(code)
	}
	os.Exit(m.Run())
}

// deployHost is a pidfile host whose nutcracker proxies real redis and memcached.
type deployHost struct {
	cfg   string // patchctl.yml
	root  string // the host's deploy root
	stats string
	pools []probe.Target
}

func newDeployHost(t *testing.T) deployHost {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Fatal("deploys run nutcracker as the unprivileged nutcracker user: run as root (CI does)")
	}
	redis, mc := testenv.Redis(t), testenv.Memcached(t)
	rl, ml, stats := testenv.Addr(testenv.FreePort(t)), testenv.Addr(testenv.FreePort(t)), testenv.Addr(testenv.FreePort(t))
	cfg, root, _ := pidfileHost(t, "cli-deploy-", stats, fmt.Sprintf("r:\n  listen: %s\n  redis: true\n  timeout: 400\n  servers:\n   - %s:1\nm:\n  listen: %s\n  timeout: 400\n  servers:\n   - %s:1\n",
		rl, redis.Addr, ml, mc.Addr), "")
	return deployHost{cfg: cfg, root: root, stats: stats, pools: []probe.Target{
		{Addr: rl, Protocol: probe.Redis, Timeout: 2 * time.Second}, {Addr: ml, Protocol: probe.Memcache, Timeout: 2 * time.Second}}}
}

// pidfileHost lays out proxy-1, a pidfile host deployed under a fresh directory
// (testenv.DeployRoot) whose nutcracker.yml is conf, and its inventory. It returns
// patchctl.yml (daemonConfig with extra), the deploy root and nutcracker.yml's path.
func pidfileHost(t *testing.T, prefix, stats, conf, extra string) (cfg, root, nutconf string) {
	t.Helper()
	dir := testenv.DeployRoot(t, prefix)
	nutconf, root = filepath.Join(dir, "nutcracker.yml"), filepath.Join(dir, "nc")
	if err := os.WriteFile(nutconf, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	inv := writeFile(t, "inventory.yml", fmt.Sprintf(`hosts:
  - name: proxy-1
    environment: staging
    stats: %s
    config: %s
    transport: {type: local}
    deploy:
      root: %s
      restart: pidfile
      user: nutcracker
`, stats, nutconf, root))
	return daemonConfig(t, inv, extra), root, nutconf
}

// daemonConfig writes patchctl.yml: the inventory, the test binaries' .deb packages as the
// artifact source, then extra.
func daemonConfig(t *testing.T, inv, extra string) string {
	t.Helper()
	return writeConfig(t, fmt.Sprintf("inventory:\n  file: %s\nartifacts:\n  sources:\n    - kind: deb\n      path: %s\n",
		inv, filepath.Join(testenv.BinDir(), "nutcracker_{{.Version}}.deb"))+extra)
}

// serving checks that the host's one nutcracker runs version, answers through every pool,
// and that the slot table's current and previous good builds are on disk.
func (h deployHost) serving(t *testing.T, c *app.Client, version string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := nutcracker.FetchStats(ctx, h.stats)
	if err != nil || s.Version != version {
		t.Fatalf("stats: %+v, %v; want version %s", s, err, version)
	}
	for _, p := range h.pools {
		if err := probe.Canary(ctx, p, "patchctl-test-canary"); err != nil {
			t.Fatalf("proxy does not serve %s: %v", p.Addr, err)
		}
	}
	var hs rollout.HostState
	if err := c.Call(ctx, "slots", app.HostArgs{Host: "proxy-1"}, &hs); err != nil {
		t.Fatal(err)
	}
	good := 0
	for _, sl := range hs.Slots {
		if sl.State != rollout.SlotGood {
			continue
		}
		good++
		if _, err := os.Stat(filepath.Join(h.root, "slots", sl.Name, "nutcracker")); err != nil {
			t.Fatalf("good build %s is gone: %v", sl.Name, err)
		}
		if sl.Name == hs.Current && sl.Version != version {
			t.Fatalf("current slot %s is %s, want %s", sl.Name, sl.Version, version)
		}
	}
	if good < 2 {
		t.Fatalf("%d good builds on the host, want the current one and the last good one: %+v", good, hs.Slots)
	}
}

// startDaemon serves the configuration's socket from this test process.
func startDaemon(t *testing.T, cfgPath string) *app.Client {
	t.Helper()
	cfg, err := config.LoadFile(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	a, err := app.Open(context.Background(), cfg, app.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ready, done := make(chan struct{}), make(chan error, 1)
	go func() { done <- a.Serve(ctx, func(app.Addrs) { close(ready) }) }()
	t.Cleanup(func() {
		cancel()
		<-done
		a.Close()
	})
	select {
	case <-ready:
	case err := <-done:
		t.Fatalf("daemon: %v", err)
	}
	return app.NewClient(cfg.Socket)
}

// waitIdle waits until the daemon runs no operation and returns them all.
func waitIdle(t *testing.T, c *app.Client) []app.OpInfo {
	t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	for {
		var ops []app.OpInfo
		if err := c.Call(context.Background(), "ops", nil, &ops); err != nil {
			t.Fatal(err)
		}
		running := false
		for _, o := range ops {
			running = running || o.State == app.OpRunning
		}
		if !running {
			return ops
		}
		if time.Now().After(deadline) {
			t.Fatalf("operations still running after 90s: %+v", ops)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// lineTrigger is an io.Writer that closes fire once it has seen n lines.
type lineTrigger struct {
	mu    sync.Mutex
	buf   bytes.Buffer
	n     int
	fire  chan struct{}
	fired bool
}

func newLineTrigger(n int) *lineTrigger { return &lineTrigger{n: n, fire: make(chan struct{})} }

func (w *lineTrigger) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf.Write(p)
	if !w.fired && bytes.Count(w.buf.Bytes(), []byte("\n")) >= w.n {
		w.fired = true
		close(w.fire)
	}
	return len(p), nil
}

func (w *lineTrigger) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.String()
}

// TestCLIKilledMidDeploy kills the CLI while the daemon deploys (SIGKILL of a real CLI
// process, or the cancellation of an in-process one), at a random point: right away, or
// after the k-th line it printed (accepted, resolve, install, preflight, switch, restart,
// smoke). Whatever the point, an accepted deploy runs to its end: the host serves the new
// version, and the build it replaced stays as the last good one. PATCHCTL_KILL_TRIALS sets
// the number of trials (default 8).
func TestCLIKilledMidDeploy(t *testing.T) {
	trials := 8
	if n, err := strconv.Atoi(os.Getenv("PATCHCTL_KILL_TRIALS")); err == nil && n > 0 {
		trials = n
	}
	h := newDeployHost(t)
	c := startDaemon(t, h.cfg)
	for _, v := range []string{"0.4.1", "0.5.0"} {
		if code, out, errOut := run(t, nil, "--config", h.cfg, "deploy", "--host", "proxy-1", "--version", v); code != cli.ExitOK {
			t.Fatalf("deploy %s: exit %d\n%s%s", v, code, out, errOut)
		}
	}
	seed := uint64(time.Now().UnixNano())
	rng := rand.New(rand.NewPCG(seed, 1))
	t.Logf("seed %d", seed)
	version, accepted := "0.5.0", len(waitIdle(t, c))
	counts := map[string]int{}
	for i := range trials {
		target := map[string]string{"0.4.1": "0.5.0", "0.5.0": "0.4.1"}[version]
		args := []string{"--config", h.cfg, "deploy", "--host", "proxy-1", "--version", target}
		after := rng.IntN(8) // 0: kill at once; k: after the k-th line
		how := "SIGKILL"
		var out string
		if i%2 == 0 {
			out = killedCLI(t, args, after, rng)
		} else {
			how = "cancel"
			out = cancelledCLI(t, args, after, rng)
		}
		ops := waitIdle(t, c)
		switch {
		case len(ops) == accepted:
			counts[how+": killed before the daemon accepted"]++
		case len(ops) == accepted+1 && ops[len(ops)-1].State == app.OpSucceeded:
			version = target
			if strings.Contains(out, "succeeded") {
				counts[how+": the CLI saw the end before the kill"]++
			} else {
				counts[fmt.Sprintf("%s: killed after %d lines, deploy finished in the daemon", how, after)]++
			}
		default:
			t.Fatalf("trial %d (%s after %d lines): operations %+v\nCLI output:\n%s", i, how, after, ops[accepted:], out)
		}
		accepted = len(ops)
		h.serving(t, c, version)
	}
	t.Logf("%d trials, every one ended with nutcracker serving a defined version and the last good build present:", trials)
	for _, k := range slices.Sorted(maps.Keys(counts)) {
		t.Logf("  %3d  %s", counts[k], k)
	}
}

// killedCLI runs the CLI as its own process and SIGKILLs it after it printed after lines
// (0: within a few milliseconds of its start); it returns what the CLI printed.
func killedCLI(t *testing.T, args []string, after int, rng *rand.Rand) string {
	t.Helper()
	argv, _ := json.Marshal(args)
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), cliEnv+"="+string(argv))
	out := newLineTrigger(max(after, 1))
	pr, pw := io.Pipe()
	cmd.Stdout, cmd.Stderr = pw, io.Discard
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { io.Copy(out, bufio.NewReader(pr)) }()
	exited := make(chan struct{})
	go func() { cmd.Wait(); pw.Close(); close(exited) }()
	if after == 0 {
		time.Sleep(time.Duration(rng.IntN(50)) * time.Millisecond)
	} else {
		select {
		case <-out.fire:
		case <-exited:
		case <-time.After(90 * time.Second):
			t.Fatalf("the CLI printed no %d lines in 90s:\n%s", after, out)
		}
	}
	cmd.Process.Kill()
	<-exited
	return out.String()
}

// cancelledCLI runs the CLI in this process and cancels its context after it printed
// after lines (0: at once), as an interrupt does.
func cancelledCLI(t *testing.T, args []string, after int, rng *rand.Rand) string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	out := newLineTrigger(max(after, 1))
	done := make(chan int, 1)
	go func() {
		done <- cli.Main(ctx, args, cli.IO{In: strings.NewReader(""), Out: out, Err: io.Discard, Getenv: func(string) string { return "" }})
	}()
	if after == 0 {
		time.Sleep(time.Duration(rng.IntN(50)) * time.Millisecond)
	} else {
		select {
		case <-out.fire:
		case <-done:
			return out.String()
		case <-time.After(90 * time.Second):
			t.Fatalf("the CLI printed no %d lines in 90s:\n%s", after, out)
		}
	}
	cancel()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("the CLI did not return after its cancellation")
	}
	return out.String()
}

// TestDetachAttachAbort: --detach returns with the id once the daemon accepted; attach
// follows it live (or replays a finished one) with the exit code of its outcome; a second
// operation on a busy host is refused naming the first; abort mid-deploy leaves the host
// on the build it ran, and the events say who aborted.
func TestDetachAttachAbort(t *testing.T) {
	h := newDeployHost(t)
	c := startDaemon(t, h.cfg)
	cfg, err := config.LoadFile(h.cfg)
	if err != nil {
		t.Fatal(err)
	}
	patchctl := func(args ...string) (int, string, string) {
		return run(t, nil, append([]string{"--config", h.cfg}, args...)...)
	}
	if code, out, errOut := patchctl("deploy", "--host", "proxy-1", "--version", "0.5.0"); code != cli.ExitOK {
		t.Fatalf("deploy 0.5.0: exit %d\n%s%s", code, out, errOut)
	}
	detach := func(version string, extra ...string) string {
		t.Helper()
		code, out, errOut := patchctl(append([]string{"deploy", "--host", "proxy-1", "--version", version, "--detach", "-o", "json"}, extra...)...)
		var ev app.OpEvent
		if code != cli.ExitOK || json.Unmarshal([]byte(out), &ev) != nil || ev.Type != app.EventAccepted || ev.Op == "" {
			t.Fatalf("deploy --detach: exit %d %+v\n%s%s", code, ev, out, errOut)
		}
		return ev.Op
	}
	id := detach("0.4.1")
	code, out, errOut := patchctl("deploy", "--host", "proxy-1", "--version", "0.4.1")
	if code != cli.ExitFailure || !strings.Contains(errOut, "host proxy-1 is busy") || !strings.Contains(errOut, id) {
		t.Errorf("deploy on a busy host: exit %d\n%s%s", code, out, errOut)
	}
	for range 2 { // live, then a replay of the finished operation
		code, out, errOut = patchctl("attach", id)
		if code != cli.ExitOK || !strings.Contains(out, id+" accepted") || !strings.Contains(out, "smoke") || !strings.Contains(out, "succeeded") {
			t.Fatalf("attach: exit %d\n%s%s", code, out, errOut)
		}
	}
	h.serving(t, c, "0.4.1")

	// A build of its own (0.5.0 with a byte more, so a slot of its own) to abort.
	data, err := os.ReadFile(testenv.Nutcracker(t, "0.5.0"))
	if err != nil {
		t.Fatal(err)
	}
	other := filepath.Join(t.TempDir(), "nutcracker")
	os.WriteFile(other, append(data, 0), 0o755)
	id = detach("0.5.0", "--binary", other)
	aborted := make(chan string, 1)
	done, err := app.AttachOp(t.Context(), cfg, id, func(ev app.OpEvent) {
		if ev.Type == app.EventStep && ev.Step == string(rollout.StepInstall) {
			go func() {
				code, out, errOut := patchctl("abort", id)
				aborted <- fmt.Sprintf("exit %d\n%s%s", code, out, errOut)
			}()
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := <-aborted; !strings.HasPrefix(got, "exit 0") || !strings.Contains(got, "abort requested") {
		t.Fatalf("abort: %s", got)
	}
	if done.State != app.OpAborted && done.State != app.OpRolledBack {
		t.Fatalf("aborted deploy ended %s: %+v", done.State, done)
	}
	if code, out, _ := patchctl("attach", id); code != cli.ExitFailure || !strings.Contains(out, "abort requested (by uid") {
		t.Fatalf("attach to the aborted deploy: exit %d\n%s", code, out)
	}
	h.serving(t, c, "0.4.1")
	code, out, _ = patchctl("ops")
	if code != cli.ExitOK || strings.Count(out, "proxy-1") != 3 || !strings.Contains(out, "aborted") {
		t.Fatalf("ops:\n%s", out)
	}
}
