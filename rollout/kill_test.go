package rollout

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// childEnv carries a hostEnv and a step to a re-executed test binary, which deploys 0.5.0
// and stops dead at that step so the parent can SIGKILL it there.
const childEnv = "ROLLOUT_TEST_CHILD"

type childSpec struct {
	Host hostEnv
	Art  Artifact
	Step Step
}

func runChild() int {
	var spec childSpec
	if err := json.Unmarshal([]byte(os.Getenv(childEnv)), &spec); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	st, err := openStoreErr(ctx, spec.Host.Store)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	r := New(st, Options{OnStep: func(op Operation) {
		if op.Step == spec.Step {
			fmt.Printf("AT %s\n", op.Step)
			time.Sleep(time.Minute) // the parent kills us here
		}
	}})
	_, err = r.Deploy(ctx, spec.Host.spec(), spec.Art, DeployOptions{})
	fmt.Fprintln(os.Stderr, "deploy ended without being killed:", err)
	return 3
}

// TestKilledMidDeploy kills patchctl with SIGKILL at each step of an upgrade and checks
// that the next run leaves the host on exactly one version, the one the slot table names.
func TestKilledMidDeploy(t *testing.T) {
	b := startBackends(t)
	for _, tc := range []struct {
		step Step
		want string // version running after recovery
	}{
		{StepInstall, "0.4.1"},
		{StepPreflight, "0.4.1"},
		{StepSwitch, "0.4.1"},
		{StepRestart, "0.4.1"},
		{StepSmoke, "0.4.1"},
	} {
		t.Run(string(tc.step), func(t *testing.T) {
			e := newHost(t, b, "")
			ctx := ctxT(t)
			st := openStore(t, e.Store)
			if _, err := New(st, Options{}).Deploy(ctx, e.spec(), artifact(t, "0.4.1"), DeployOptions{}); err != nil {
				t.Fatal(err)
			}
			st.Close() // bbolt allows one process at a time

			spec, _ := json.Marshal(childSpec{Host: e, Art: artifact(t, "0.5.0"), Step: tc.step})
			cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^$")
			cmd.Env = append(os.Environ(), childEnv+"="+string(spec))
			var stderr strings.Builder
			cmd.Stderr = &stderr
			out, err := cmd.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			line, _ := bufio.NewReader(out).ReadString('\n')
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
			if line != "AT "+string(tc.step)+"\n" {
				t.Fatalf("child did not reach step %s: %q\n%s", tc.step, line, stderr.String())
			}

			r := New(openStore(t, e.Store), Options{})
			res, ok, err := r.Recover(ctx, e.spec())
			if err != nil || !ok {
				t.Fatalf("recover: ok=%v err=%v", ok, err)
			}
			if !res.Operation.Resumed || res.Operation.State == OpRunning {
				t.Fatalf("recovered operation: %+v", res.Operation)
			}
			check(t, r, e, tc.want)
			if _, again, err := r.Recover(ctx, e.spec()); again || err != nil {
				t.Fatalf("second recover: ok=%v err=%v", again, err)
			}
			// The host is usable again: the upgrade goes through.
			if _, err := r.Deploy(ctx, e.spec(), artifact(t, "0.5.0"), DeployOptions{}); err != nil {
				t.Fatalf("deploy after recovery: %v", err)
			}
			check(t, r, e, "0.5.0")
		})
	}
}
