package rollout

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/patchctl/patchctl/transport"
)

// childEnv carries a childSpec to a re-executed test binary, which runs one operation and
// announces each step on stdout ("AT step") so that the parent can SIGKILL it there.
const childEnv = "ROLLOUT_TEST_CHILD"

type childSpec struct {
	Host hostEnv
	Op   string   // KindDeploy or KindRollback
	Art  Artifact // deploy
	To   string   // rollback target ("" = the previous good build)
	Stop Step     // the child stops dead at this step, if set
}

func runChild() int {
	var spec childSpec
	if err := json.Unmarshal([]byte(os.Getenv(childEnv)), &spec); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	st, err := openStoreErr(ctx, spec.Host.Store)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	r := New(st, Options{OnStep: func(op Operation) {
		fmt.Printf("AT %s\n", op.Step)
		if op.Step == spec.Stop {
			time.Sleep(time.Minute) // the parent kills us here
		}
	}})
	if spec.Op == KindRollback {
		_, err = r.Rollback(ctx, spec.Host.spec(), spec.To)
	} else {
		_, err = r.Deploy(ctx, spec.Host.spec(), spec.Art, DeployOptions{})
	}
	fmt.Printf("END %v\n", err)
	return 0
}

// killChild runs spec in a child and SIGKILLs it when it announces step at, after delay.
// It reports whether the kill came before the operation ended.
func killChild(t *testing.T, spec childSpec, at Step, delay time.Duration) bool {
	t.Helper()
	data, _ := json.Marshal(spec)
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"="+string(data))
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	}()
	lines := bufio.NewReader(out)
	for {
		line, err := lines.ReadString('\n')
		if err != nil {
			t.Fatalf("child ended without reaching step %s: %v\n%s", at, err, stderr.String())
		}
		if strings.HasPrefix(line, "END ") {
			return false
		}
		if line == "AT "+string(at)+"\n" {
			time.Sleep(delay)
			_ = cmd.Process.Kill()
			go io.Copy(io.Discard, lines) //nolint:errcheck // drain what it wrote before dying
			return true
		}
	}
}

// TestKilledMidDeploy kills patchctl with SIGKILL at each step of an upgrade, and of a
// re-deploy of the installed previous build, and checks that the next run leaves the host
// on exactly one version, the one the slot table names, with the last good build kept.
func TestKilledMidDeploy(t *testing.T) {
	b := startBackends(t)
	for _, tc := range []struct {
		name     string
		redeploy bool // deploy 0.4.1 again on a host that runs 0.5.0 with 0.4.1 as previous good
		step     Step
		want     string // version running after recovery
	}{
		{"install", false, StepInstall, "0.4.1"},
		{"preflight", false, StepPreflight, "0.4.1"},
		{"switch", false, StepSwitch, "0.4.1"},
		{"restart", false, StepRestart, "0.4.1"},
		{"smoke", false, StepSmoke, "0.4.1"},
		{"redeploy install", true, StepInstall, "0.5.0"},
		{"redeploy preflight", true, StepPreflight, "0.5.0"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newHost(t, b, "")
			ctx := ctxT(t)
			st := openStore(t, e.Store)
			versions := []string{"0.4.1"}
			art := "0.5.0"
			if tc.redeploy {
				versions, art = []string{"0.4.1", "0.5.0"}, "0.4.1"
			}
			for _, v := range versions {
				if _, err := New(st, Options{}).Deploy(ctx, e.spec(), artifact(t, v), DeployOptions{}); err != nil {
					t.Fatal(err)
				}
			}
			st.Close() // bbolt allows one process at a time

			if !killChild(t, childSpec{Host: e, Op: KindDeploy, Art: artifact(t, art), Stop: tc.step}, tc.step, 0) {
				t.Fatal("the child finished before it was killed")
			}
			r := New(openStore(t, e.Store), Options{})
			res, ok, err := r.Recover(ctx, e.spec())
			if err != nil || !ok {
				t.Fatalf("recover: ok=%v err=%v", ok, err)
			}
			// Nothing judged the new build: the fleet layer may run the deploy again.
			if !res.Operation.Resumed || !res.Operation.Interrupted || res.Operation.State == OpRunning {
				t.Fatalf("recovered operation: %+v", res.Operation)
			}
			check(t, r, e, tc.want)
			if _, again, err := r.Recover(ctx, e.spec()); again || err != nil {
				t.Fatalf("second recover: ok=%v err=%v", again, err)
			}
			if tc.redeploy {
				lastGood(t, r, e, "0.4.1", "0.5.0")
				return
			}
			// The host is usable again: the upgrade goes through.
			if _, err := r.Deploy(ctx, e.spec(), artifact(t, "0.5.0"), DeployOptions{}); err != nil {
				t.Fatalf("deploy after recovery: %v", err)
			}
			check(t, r, e, "0.5.0")
		})
	}
}

// lastGood fails unless every version has a good slot whose binary is on the host, intact.
func lastGood(t *testing.T, r *Rollout, e hostEnv, versions ...string) {
	t.Helper()
	for _, v := range versions {
		s := slotOf(t, r, v)
		if s.State != SlotGood {
			t.Fatalf("slot of %s is %s, want good: %+v", v, s.State, s)
		}
		x := &run{r: r, h: e.spec(), fs: hostFS{e.spec()}, verified: map[string]bool{}}
		if err := x.verify(ctxT(t), s); err != nil {
			t.Fatalf("last good build %s: %v", v, err)
		}
	}
}

// killTrials is how many random trials TestKillCampaign runs: a few in the normal suite,
// ROLLOUT_KILL_TRIALS (e.g. 50) in the long mode.
func killTrials(t *testing.T) int {
	if s := os.Getenv("ROLLOUT_KILL_TRIALS"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			t.Fatalf("ROLLOUT_KILL_TRIALS=%q: want a positive number", s)
		}
		return n
	}
	return 8
}

// TestKillCampaign SIGKILLs rollbacks and deploys of installed builds at random steps and
// random moments within them, on one host, trial after trial. After each, recovery must
// leave exactly one nutcracker running and serving on the version the slot table names,
// with both builds still installed and good.
func TestKillCampaign(t *testing.T) {
	e := newHost(t, startBackends(t), "")
	ctx := ctxT(t)
	st := openStore(t, e.Store)
	for _, v := range []string{"0.4.1", "0.5.0"} {
		if _, err := New(st, Options{}).Deploy(ctx, e.spec(), artifact(t, v), DeployOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	st.Close()
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("ROLLOUT_KILL_SEED"); s != "" {
		seed, _ = strconv.ParseUint(s, 10, 64)
	}
	rng := rand.New(rand.NewPCG(seed, 0))
	t.Logf("seed %d", seed)
	steps := []Step{StepPreflight, StepSwitch, StepRestart, StepSmoke}
	counts := map[string]int{}
	n := killTrials(t)
	for i := range n {
		other := map[string]string{"0.4.1": "0.5.0", "0.5.0": "0.4.1"}[runningVersion(t, e)]
		spec := childSpec{Host: e, Op: KindRollback}
		switch rng.IntN(3) {
		case 1:
			spec.To = other
		case 2:
			spec.Op, spec.Art = KindDeploy, artifact(t, other) // an installed build
		}
		at := steps[rng.IntN(len(steps))]
		delay := time.Duration(rng.IntN(30)) * time.Millisecond
		killed := killChild(t, spec, at, delay)

		ctx := ctxT(t)
		st := openStore(t, e.Store)
		r := New(st, Options{})
		t0 := time.Now()
		res, resumed, err := r.Recover(ctx, e.spec())
		t.Logf("trial %d: %s %q, kill at %s+%s (killed %v): recovered in %s: %s", i, spec.Op, cmpOr(spec.To, spec.Art.Version), at, delay, killed, time.Since(t0).Round(time.Millisecond), res.Operation.State)
		if err != nil {
			t.Fatalf("trial %d (%s to %q, killed at %s+%s): recover: %v", i, spec.Op, cmpOr(spec.To, spec.Art.Version), at, delay, err)
		}
		v := runningVersion(t, e)
		check(t, r, e, v)
		if err := smoke(ctx, e.spec(), e.pools(t), v, "trial"+strconv.Itoa(i), 30*time.Second, func(context.Context) error { return nil }); err != nil {
			t.Fatalf("trial %d: not serving: %v", i, err)
		}
		lastGood(t, r, e, "0.4.1", "0.5.0")
		st.Close()
		key := fmt.Sprintf("%s killed at %s", spec.Op, at)
		switch {
		case !killed:
			key = spec.Op + " finished before the kill"
		case resumed:
			key += fmt.Sprintf(", recovery %s", res.Operation.State)
		default:
			key += ", nothing to recover"
		}
		counts[key]++
	}
	keys := make([]string, 0, len(counts))
	for k := range counts {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		t.Logf("%3d  %s", counts[k], k)
	}
	t.Logf("%d trials, every one ended with one nutcracker serving and both builds good", n)
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// runningVersion is the version of the slot the current symlink names.
func runningVersion(t *testing.T, e hostEnv) string {
	t.Helper()
	link, err := os.Readlink(filepath.Join(e.Root, "current"))
	if err != nil {
		t.Fatal(err)
	}
	return versionOfSlot(filepath.Base(filepath.Dir(link)))
}

// TestSwitchesOfOneOperationDoNotCollide: the switch of a killed patchctl can still run
// when the recovery of the same operation switches back. Both must complete, and current
// must end on one of the two slots.
func TestSwitchesOfOneOperationDoNotCollide(t *testing.T) {
	root := t.TempDir()
	f := hostFS{HostSpec{Name: "proxy-1", Transport: &transport.Local{}, Root: root}}
	ctx := ctxT(t)
	for round := range 20 {
		errs := make(chan error, 2)
		for _, slot := range []string{"0.4.1-a", "0.5.0-b"} {
			go func() { errs <- f.switchTo(ctx, slot) }()
		}
		for range 2 {
			if err := <-errs; err != nil {
				t.Fatalf("round %d: %v", round, err)
			}
		}
		if cur, err := f.readCurrent(ctx); err != nil || (cur != "0.4.1-a" && cur != "0.5.0-b") {
			t.Fatalf("round %d: current %q, %v", round, cur, err)
		}
	}
}
