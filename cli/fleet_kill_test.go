package cli_test

import (
	"context"
	"encoding/json"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/patchctl/patchctl/internal/testenv"
	"github.com/patchctl/patchctl/rollout"
	"github.com/patchctl/patchctl/store"
	"github.com/patchctl/patchctl/transport"
	"github.com/patchctl/patchctl/waves"
)

// daemonProc is a patchctl daemon in its own process, so it can be killed for real.
type daemonProc struct {
	t   *testing.T
	cfg string
	log string
	cmd *exec.Cmd
}

func (d *daemonProc) start() {
	d.t.Helper()
	argv, _ := json.Marshal([]string{"--config", d.cfg, "daemon"})
	logf, err := os.OpenFile(d.log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		d.t.Fatal(err)
	}
	defer logf.Close()
	d.cmd = exec.Command(os.Args[0])
	d.cmd.Env = append(os.Environ(), cliEnv+"="+string(argv))
	d.cmd.Stdout, d.cmd.Stderr = logf, logf
	if err := d.cmd.Start(); err != nil {
		d.t.Fatal(err)
	}
	for start := time.Now(); ; time.Sleep(50 * time.Millisecond) {
		if _, out, _ := run(d.t, nil, "--config", d.cfg, "status", "-o", "json"); strings.Contains(out, `"daemon": true`) {
			return
		}
		if time.Since(start) > time.Minute {
			d.t.Fatalf("daemon did not start; log:\n%s", d.tail())
		}
	}
}

func (d *daemonProc) signal(sig syscall.Signal) {
	d.t.Helper()
	if d.cmd == nil {
		return
	}
	_ = d.cmd.Process.Signal(sig)
	done := make(chan struct{})
	go func() { d.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(time.Minute):
		d.cmd.Process.Kill()
		<-done
	}
	d.cmd = nil
}

func (d *daemonProc) tail() string {
	b, _ := os.ReadFile(d.log)
	if len(b) > 6000 {
		b = b[len(b)-6000:]
	}
	return string(b)
}

// procFleet is a fleet of local hosts on 0.4.1 driven by a daemon in its own process.
type procFleet struct {
	t     *testing.T
	hosts []*testenv.FleetProxy
	cfg   string
	d     *daemonProc
}

// newProcFleet lays out the hosts, writes patchctl.yml (daemonConfig with extra), starts
// the daemon and deploys 0.4.1 to every host.
func newProcFleet(t *testing.T, extra string, hosts ...testenv.FleetHost) *procFleet {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Fatal("deploys run nutcracker as the unprivileged nutcracker user: run as root (CI does)")
	}
	f := &procFleet{t: t, hosts: testenv.Fleet(t, hosts...)}
	inv := writeFile(t, "inventory.yml", testenv.FleetInventory(f.hosts, ""))
	f.cfg = daemonConfig(t, inv, extra)
	f.d = &daemonProc{t: t, cfg: f.cfg, log: filepath.Join(t.TempDir(), "daemon.log")}
	t.Cleanup(func() { f.d.signal(syscall.SIGTERM) })
	f.d.start()
	for _, h := range f.hosts {
		if code, out, errOut := f.cmd("deploy", "--host", h.Name, "--version", "0.4.1"); code != 0 {
			t.Fatalf("deploy 0.4.1 to %s: exit %d\n%s%s", h.Name, code, out, errOut)
		}
	}
	return f
}

// cmd runs the CLI against the fleet's daemon.
func (f *procFleet) cmd(args ...string) (int, string, string) {
	return run(f.t, nil, append([]string{"--config", f.cfg}, args...)...)
}

// status reads a rollout as `rollout status -o json` shows it.
func (f *procFleet) status(id string) waves.View {
	f.t.Helper()
	var v waves.View
	code, out, errOut := f.cmd("rollout", "status", id, "-o", "json")
	if code > 1 || json.Unmarshal([]byte(out), &v) != nil {
		f.t.Fatalf("status: exit %d\n%s%s\ndaemon log:\n%s", code, out, errOut, f.d.tail())
	}
	return v
}

// waitFor polls a rollout until cond holds. A rollout that settled elsewhere (finished, or
// paused with nothing in flight) fails at once: it would not move again by itself.
func (f *procFleet) waitFor(id, what string, cond func(waves.View) bool) waves.View {
	f.t.Helper()
	for start := time.Now(); ; time.Sleep(100 * time.Millisecond) {
		v := f.status(id)
		if cond(v) {
			return v
		}
		if v.Settled() {
			f.t.Fatalf("rollout %s: %s: not reached; it settled %s (%s)\ndaemon log:\n%s", id, what, v.State, v.Reason, f.d.tail())
		}
		if time.Since(start) > 5*time.Minute {
			f.t.Fatalf("rollout %s: %s: not reached; state %s (%s)\ndaemon log:\n%s", id, what, v.State, v.Reason, f.d.tail())
		}
	}
}

// TestRolloutSurvivesSIGKILL kills the daemon with SIGKILL at a random point of a real
// rollout (some trials abort it first, so kills also land in the abort) and starts it
// again. Every trial must end with the rollout finished, or paused with a reason; every
// host on the candidate or the previous version and serving; no operation left
// unfinished in the store; no host deployed twice, but for a deploy the kill undid before
// it was judged. PATCHCTL_KILL_TRIALS sets the number of trials (default 3; the campaign
// in docs/benchmarks.md ran 20).
func TestRolloutSurvivesSIGKILL(t *testing.T) {
	trials := 3
	if s := os.Getenv("PATCHCTL_KILL_TRIALS"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > 500 {
			t.Fatalf("PATCHCTL_KILL_TRIALS=%q: want a number from 1 to 500", s)
		}
		trials = n
	}
	f := newProcFleet(t, `rollouts:
  default_policy: kill
  soak_interval: 200ms
  policies:
    - name: kill
      waves:
        - name: staging
          environments: [staging]
          soak: 1s
        - name: production
          environments: [production]
          max_parallel: 2
          soak: 1s
`,
		testenv.FleetHost{Name: "stage-1", Environment: "staging"},
		testenv.FleetHost{Name: "prod-1", Environment: "production"},
		testenv.FleetHost{Name: "prod-2", Environment: "production"},
		testenv.FleetHost{Name: "prod-3", Environment: "production"})

	from, to := "0.4.1", "0.5.0"
	estimate := 10 * time.Second // of a rollout's length without the kill, learnt from the trials
	killedIn := map[string]int{}
	outcomes := map[string]int{}
	for trial := range trials {
		code, out, errOut := f.cmd("rollout", "start", "--version", to, "-o", "json")
		var v waves.View
		if code != 0 || json.Unmarshal([]byte(out), &v) != nil {
			t.Fatalf("trial %d: start: exit %d\n%s%s", trial, code, out, errOut)
		}
		delay := time.Duration(rand.Int64N(int64(estimate)))
		if trial%4 == 3 {
			// Abort first, so the kill lands in the roll back.
			time.Sleep(delay / 2)
			f.cmd("rollout", "abort", v.ID, "--reason", "kill campaign")
			delay /= 2
		}
		time.Sleep(delay)
		at := f.status(v.ID)
		killed := time.Now()
		f.d.signal(syscall.SIGKILL)
		phase := at.State
		for _, w := range at.Waves {
			if w.State != waves.WavePending && w.State != waves.WavePassed {
				phase += " / wave " + w.Name + " " + w.State
			}
		}
		killedIn[phase]++
		f.d.start()
		down := time.Since(killed)
		v = f.waitFor(v.ID, "finished or paused", func(v waves.View) bool { return waves.Terminal(v.State) || v.State == waves.StatePaused })
		if !waves.Terminal(v.State) {
			if v.Reason == "" {
				t.Errorf("trial %d: paused without a reason", trial)
			}
			outcomes["paused: "+v.Reason]++
			f.cmd("rollout", "abort", v.ID)
			v = f.waitFor(v.ID, "aborted", func(v waves.View) bool { return waves.Terminal(v.State) })
		}
		outcomes[v.State]++
		if v.State == waves.StateSucceeded && !at.Finished.IsZero() {
			// Killed after the end: the rollout took less than the estimate.
			estimate = (estimate + at.Finished.Sub(v.Started)) / 2
		} else if v.State == waves.StateSucceeded {
			estimate = (estimate + v.Finished.Sub(v.Started) - down) / 2
		}
		want := from
		if v.State == waves.StateSucceeded {
			want = to
		} else if v.State != waves.StateAborted {
			t.Fatalf("trial %d: rollout ended %s: %s\ndaemon log:\n%s", trial, v.State, v.Reason, f.d.tail())
		}
		for _, h := range f.hosts {
			if err := h.WaitServing(t.Context(), want, 30*time.Second); err != nil {
				t.Fatalf("trial %d (killed in %s, ended %s): %s: %v", trial, phase, v.State, h.Name, err)
			}
		}
		f.d.signal(syscall.SIGTERM)
		checkStore(t, f.cfg, f.hosts, v, to)
		t.Logf("trial %d: killed in %q, ended %s", trial, phase, v.State)
		if v.State == waves.StateSucceeded {
			from, to = to, from
		}
		f.d.start()
	}
	// fmt prints a map's keys in order.
	t.Logf("%d trials; killed in: %v; outcomes: %v", trials, killedIn, outcomes)
}

// checkStore opens the store of a stopped daemon: the file is consistent, no host has an
// unfinished operation, no lease outlives the rollout, and no host was deployed to the
// candidate more than once by it.
func checkStore(t *testing.T, cfgPath string, hosts []*testenv.FleetProxy, v waves.View, candidate string) {
	t.Helper()
	ctx := context.Background()
	st, err := store.Open(ctx, filepath.Join(filepath.Dir(cfgPath), "patchctl.db"), store.Options{Timeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if err := st.Check(ctx); err != nil {
		t.Fatalf("store: %v", err)
	}
	err = st.View(ctx, func(tx *store.Tx) error {
		leases, err := tx.Leases()
		if len(leases) > 0 {
			t.Errorf("leases held after rollout %s ended: %v", v.ID, leases)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	r := rollout.New(st, rollout.Options{})
	for _, h := range hosts {
		spec := rollout.HostSpec{Name: h.Name, Transport: &transport.Local{}, Root: filepath.Join(h.Root, "nc"), Config: h.Config,
			StatsAddr: h.Stats, Process: rollout.Process{Mode: rollout.ModePidfile, User: "nutcracker"}}
		if res, unfinished, err := r.Recover(ctx, spec); err != nil || unfinished {
			t.Errorf("%s: operation left unfinished: %+v %v", h.Name, res.Operation, err)
		}
		ops, err := r.History(ctx, h.Name)
		if err != nil {
			t.Fatal(err)
		}
		// A deploy the kill undid before anything judged the build runs again; any other
		// runs once.
		n := 0
		for _, op := range ops {
			if op.Kind == rollout.KindDeploy && op.ToVersion == candidate && !op.Started.Before(v.Started) && op.State != rollout.OpAborted && !op.Interrupted {
				n++
			}
		}
		if n > 1 {
			t.Errorf("%s: deployed %d times by rollout %s", h.Name, n, v.ID)
		}
	}
}
