package rollout

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/patchctl/patchctl/notify"
	"github.com/patchctl/patchctl/store"
)

// check asserts what runs on the host: exactly one proxy, of version want, and a slot
// table whose current slot is that version and matches the symlink.
func check(t *testing.T, r *Rollout, e hostEnv, want string) HostState {
	t.Helper()
	ctx := ctxT(t)
	if pids := running(e.Root); len(pids) != 1 {
		t.Fatalf("%d proxies running (%v), want 1", len(pids), pids)
	}
	s, err := fetchStats(ctx, e.Stats)
	if err != nil {
		t.Fatal(err)
	}
	if s.Version != want {
		t.Fatalf("stats version = %s, want %s", s.Version, want)
	}
	hs, err := r.Slots(ctx, "proxy-1")
	if err != nil {
		t.Fatal(err)
	}
	link, err := os.Readlink(filepath.Join(e.Root, "current"))
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join("slots", hs.Current, "nutcracker"); link != want {
		t.Fatalf("current -> %s, slot table says %s", link, want)
	}
	if cur := hs.slot(hs.Current); cur == nil || cur.Version != want || cur.State != SlotGood {
		t.Fatalf("current slot %+v, want a good %s", cur, want)
	}
	return hs
}

func TestUpgradeAndRollBack(t *testing.T) {
	b := startBackends(t)
	e := newHost(t, b, "")
	r := New(openStore(t, e.Store), Options{})
	h := e.spec()
	ctx := ctxT(t)

	if _, err := r.Rollback(ctx, h, ""); !errors.Is(err, ErrNothingToRollBack) {
		t.Fatalf("rollback on a fresh host: %v, want ErrNothingToRollBack", err)
	}
	res, err := r.Deploy(ctx, h, artifact(t, "0.4.1"), DeployOptions{})
	if err != nil {
		t.Fatalf("deploy 0.4.1: %v", err)
	}
	if res.Operation.State != OpSucceeded || res.Operation.From != "" {
		t.Fatalf("first deploy: %+v", res.Operation)
	}
	check(t, r, e, "0.4.1")
	if _, err := r.Rollback(ctx, h, ""); !errors.Is(err, ErrNothingToRollBack) {
		t.Fatalf("rollback with one build: %v, want ErrNothingToRollBack", err)
	}

	plan, err := r.Deploy(ctx, h, artifact(t, "0.5.0"), DeployOptions{DryRun: true})
	if err != nil || len(plan.Plan) == 0 {
		t.Fatalf("dry run: %v %v", plan, err)
	}
	hs := check(t, r, e, "0.4.1")
	if len(hs.Slots) != 1 {
		t.Fatalf("dry run touched the slot table: %+v", hs.Slots)
	}

	res, err = r.Deploy(ctx, h, artifact(t, "0.5.0"), DeployOptions{})
	if err != nil {
		t.Fatalf("deploy 0.5.0: %v", err)
	}
	if res.Operation.FromVersion != "0.4.1" || res.Operation.ToVersion != "0.5.0" {
		t.Fatalf("upgrade: %+v", res.Operation)
	}
	check(t, r, e, "0.5.0")
	if res, err := r.Deploy(ctx, h, artifact(t, "0.5.0"), DeployOptions{}); err != nil || !res.Unchanged {
		t.Fatalf("deploying the running build again: %+v %v", res, err)
	}

	res, err = r.Rollback(ctx, h, "")
	if err != nil {
		t.Fatalf("rollback: %v", err)
	}
	if res.Operation.ToVersion != "0.4.1" || res.Operation.State != OpSucceeded {
		t.Fatalf("rollback: %+v", res.Operation)
	}
	hs = check(t, r, e, "0.4.1")
	if len(hs.Slots) != 2 {
		t.Fatalf("slots: %+v", hs.Slots)
	}
	// To a named version, and back.
	if _, err := r.Rollback(ctx, h, "0.5.0"); err != nil {
		t.Fatalf("rollback to 0.5.0: %v", err)
	}
	check(t, r, e, "0.5.0")
	if _, err := r.Rollback(ctx, h, "9.9.9"); !errors.Is(err, ErrUnknownSlot) {
		t.Fatalf("rollback to an unknown version: %v", err)
	}
	ops, err := r.History(ctx, "proxy-1")
	if err != nil {
		t.Fatal(err)
	}
	var kinds []string
	for _, op := range ops {
		kinds = append(kinds, op.Kind+":"+op.ToVersion+":"+string(op.State))
	}
	want := "deploy:0.4.1:succeeded deploy:0.5.0:succeeded rollback:0.4.1:succeeded rollback:0.5.0:succeeded"
	if got := strings.Join(kinds, " "); got != want {
		t.Fatalf("history = %s\nwant      %s", got, want)
	}
}

func TestSmokeFailureRollsBack(t *testing.T) {
	b := startBackends(t)
	e := newHost(t, b, "")
	st := openStore(t, e.Store)
	r := New(st, Options{})
	h := e.spec()
	ctx := ctxT(t)
	if _, err := r.Deploy(ctx, h, artifact(t, "0.4.1"), DeployOptions{}); err != nil {
		t.Fatal(err)
	}
	broken, err := filepath.Abs(filepath.Join("testdata", "crash-at-start.sh"))
	if err != nil {
		t.Fatal(err)
	}
	res, err := r.Deploy(ctx, h, Artifact{Path: broken, Version: "0.5.0"}, DeployOptions{SmokeTimeout: 3 * time.Second})
	if !errors.Is(err, ErrRolledBack) {
		t.Fatalf("deploy of a build that dies at start: %v, want ErrRolledBack", err)
	}
	if res.Operation.State != OpRolledBack {
		t.Fatalf("operation: %+v", res.Operation)
	}
	hs := check(t, r, e, "0.4.1")
	if s := hs.slot(res.Operation.To); s == nil || s.State != SlotFailed {
		t.Fatalf("broken slot: %+v", s)
	}
	if _, err := os.Stat(filepath.Join(e.Root, "slots", res.Operation.To, "nutcracker")); err != nil {
		t.Fatalf("failed slot not kept for forensics: %v", err)
	}

	var steps []string
	var alerts []store.OutboxItem
	if err := st.View(ctx, func(tx *store.Tx) error {
		evs, err := tx.Events(store.EventFilter{Kind: "deploy.", Subject: "proxy-1"})
		for _, ev := range evs {
			if ev.Fields["op"] == res.Operation.ID {
				steps = append(steps, ev.Fields["step"])
			}
		}
		if err != nil {
			return err
		}
		alerts, err = tx.Outbox(true)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	// The restart returns once nutcracker is started; its exit at start is the smoke test's
	// finding, quoting what it wrote to its stderr.
	want := "install preflight switch restart smoke rollback-switch rollback-restart rollback-smoke done"
	if got := strings.Join(steps, " "); got != want {
		t.Fatalf("recorded steps = %s\nwant             %s", got, want)
	}
	if len(alerts) != 1 || alerts[0].Key != "deploy:proxy-1:"+res.Operation.ID {
		t.Fatalf("alerts: %+v", alerts)
	}
	// The alert renders, naming the host, both versions, the step that failed and why.
	var payload notify.Envelope
	if err := json.Unmarshal(alerts[0].Payload, &payload); err != nil {
		t.Fatal(err)
	}
	msg, err := notify.Render(alerts[0].Payload)
	if err != nil {
		t.Fatalf("render alert: %v", err)
	}
	text := notify.Format(msg)
	if payload.Kind != notify.OutboxDeployRolledBack || payload.Step != string(StepSmoke) {
		t.Fatalf("alert payload: %s", alerts[0].Payload)
	}
	for _, w := range []string{"proxy-1", "0.4.1", "0.5.0", "failed at smoke", "simulated crash"} {
		if !strings.Contains(text, w) {
			t.Errorf("alert does not say %q:\n%s", w, text)
		}
	}
}

func TestPreflightRefusals(t *testing.T) {
	b := startBackends(t)
	for _, tc := range []struct {
		name    string
		extra   string // appended to every pool
		running string // deployed first
		art     func(t *testing.T) Artifact
		want    error
	}{
		{"tcpkeepalive on 0.4.1", "  tcpkeepalive: true\n", "0.5.0",
			func(t *testing.T) Artifact { return artifact(t, "0.4.1") }, ErrPreflight},
		{"wrong version", "", "0.4.1",
			func(t *testing.T) Artifact { return Artifact{Path: artifact(t, "0.5.0").Path, Version: "0.4.1"} }, ErrWrongVersion},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newHost(t, b, tc.extra)
			r := New(openStore(t, e.Store), Options{})
			h := e.spec()
			ctx := ctxT(t)
			if _, err := r.Deploy(ctx, h, artifact(t, tc.running), DeployOptions{}); err != nil {
				t.Fatal(err)
			}
			before := running(e.Root)
			res, err := r.Deploy(ctx, h, tc.art(t), DeployOptions{})
			if !errors.Is(err, tc.want) || !errors.Is(err, ErrPreflight) {
				t.Fatalf("deploy: %v, want %v", err, tc.want)
			}
			hs := check(t, r, e, tc.running)
			if after := running(e.Root); len(after) != 1 || after[0] != before[0] {
				t.Fatalf("proxy restarted: pid %v -> %v", before, after)
			}
			if s := hs.slot(res.Operation.To); s == nil || s.State != SlotRetired {
				t.Fatalf("refused slot: %+v", s)
			}
			entries, _ := os.ReadDir(filepath.Join(e.Root, "slots"))
			if len(entries) != 1 {
				t.Fatalf("slots on the host after a refusal: %d, want 1", len(entries))
			}
		})
	}
}

func TestRunAsRootRefused(t *testing.T) {
	e := newHost(t, startBackends(t), "")
	h := e.spec()
	h.Process.User = "root"
	r := New(openStore(t, e.Store), Options{})
	if _, err := r.Deploy(ctxT(t), h, artifact(t, "0.5.0"), DeployOptions{}); !errors.Is(err, ErrRunAsRoot) {
		t.Fatalf("deploy as root: %v, want ErrRunAsRoot", err)
	}
}

// The log must not be a file the restart truncates: nutcracker's output (<pid file>.out)
// or the pid file.
func TestLogFileApartFromRestartFiles(t *testing.T) {
	for _, tc := range []struct{ pid, log string }{
		{"/x/run/nc.pid", "/x/run/nc.out"},
		{"/x/run/nc", "/x/run/nc.out"},
		{"/x/run/nc.pid", "/x/run/nc.pid"},
	} {
		h := HostSpec{Name: "h", Root: "/x", StatsAddr: "127.0.0.1:22222",
			Process: Process{Mode: ModePidfile, PidFile: tc.pid, LogFile: tc.log}}
		if _, err := newPidfile(h); err == nil || !strings.Contains(err.Error(), "log_file") {
			t.Errorf("pid file %s, log file %s: %v, want a log_file error", tc.pid, tc.log, err)
		}
	}
}

func TestPrunable(t *testing.T) {
	at := func(m int) time.Time { return time.Date(2025, 1, 1, 0, m, 0, 0, time.UTC) }
	hs := HostState{Current: "e", Slots: []Slot{
		{Name: "a", State: SlotGood, Installed: at(1), LastActive: at(9)}, // previous good: kept
		{Name: "b", State: SlotFailed, Installed: at(2)},
		{Name: "c", State: SlotGood, Installed: at(3), LastActive: at(4)},
		{Name: "d", State: SlotFailed, Installed: at(4)}, // newest failed: kept
		{Name: "x", State: SlotRetired, Installed: at(0)},
		{Name: "e", State: SlotGood, Installed: at(5), LastActive: at(10)},
	}}
	for keep, want := range map[int]string{5: "", 4: "b", 3: "b c", 1: "b c"} {
		if got := strings.Join(hs.prunable(keep), " "); got != want {
			t.Errorf("keep %d: prune %q, want %q", keep, got, want)
		}
	}
}

func TestMain(m *testing.M) {
	if os.Getenv(childEnv) != "" {
		os.Exit(runChild())
	}
	os.Exit(m.Run())
}
