package rollout

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/patchctl/patchctl/internal/testenv"
)

// startUnmanaged starts nutcracker as an operator would without patchctl: its own binary
// path and pid file, the host's nutcracker.yml and stats port. It returns the pid.
func startUnmanaged(t *testing.T, e hostEnv, version string) int {
	t.Helper()
	dir := filepath.Join(e.Root, "usr-sbin")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(testenv.Nutcracker(t, version))
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "nutcracker")
	if err := os.WriteFile(bin, data, 0o755); err != nil {
		t.Fatal(err)
	}
	pidFile := filepath.Join(dir, "nutcracker.pid")
	_, port, _ := strings.Cut(e.Stats, "127.0.0.1:")
	out, err := exec.Command(bin, "-d", "-c", e.Config, "-p", pidFile, "-s", port, "-a", "127.0.0.1",
		"-o", filepath.Join(dir, "nutcracker.log"), "-i", "100").CombinedOutput()
	if err != nil {
		t.Fatalf("start %s: %v %s", bin, err, out)
	}
	var pid int
	for i := 0; i < 3000 && pid == 0; i++ { // the daemon writes its pid file after start returns
		if b, err := os.ReadFile(pidFile); err == nil {
			pid, _ = strconv.Atoi(strings.TrimSpace(string(b)))
		}
		if pid == 0 {
			time.Sleep(10 * time.Millisecond)
		}
	}
	if pid == 0 {
		t.Fatal("unmanaged nutcracker wrote no pid file in 30 s")
	}
	t.Cleanup(func() { _ = exec.Command("kill", "-9", strconv.Itoa(pid)).Run() })
	if err := poll(ctxT(t), func(ctx context.Context) error { _, err := fetchStats(ctx, e.Stats); return err }); err != nil {
		t.Fatal(err)
	}
	return pid
}

func alive(pid int) bool {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	return err == nil && !strings.Contains(string(data), ") Z ")
}

// Item 9: adopt records the running proxy without restarting it; the first deploy then
// replaces it with the usual safety.
func TestAdopt(t *testing.T) {
	e := newHost(t, startBackends(t), "")
	r := New(openStore(t, e.Store), Options{})
	h := e.spec()
	ctx := ctxT(t)
	if _, err := r.Adopt(ctx, h); !errors.Is(err, ErrNotRunning) {
		t.Fatalf("adopt with nothing running: %v, want ErrNotRunning", err)
	}
	pid := startUnmanaged(t, e, "0.4.1")
	res, err := r.Adopt(ctx, h)
	if err != nil {
		t.Fatalf("adopt: %v", err)
	}
	if res.Operation.Kind != KindAdopt || res.Operation.State != OpSucceeded || res.Operation.ToVersion != "0.4.1" {
		t.Fatalf("adopt: %+v", res.Operation)
	}
	if !alive(pid) {
		t.Fatal("adopt stopped the running proxy")
	}
	hs, err := r.Slots(ctx, "proxy-1")
	if err != nil {
		t.Fatal(err)
	}
	cur := hs.slot(hs.Current)
	if cur == nil || cur.State != SlotGood || cur.Version != "0.4.1" || hs.Adopted == nil || hs.Adopted.PID != pid ||
		hs.Adopted.Exe != filepath.Join(e.Root, "usr-sbin", "nutcracker") {
		t.Fatalf("slot table after adopt: %+v", hs)
	}
	if _, err := r.Adopt(ctx, h); !errors.Is(err, ErrAlreadyManaged) {
		t.Fatalf("second adopt: %v, want ErrAlreadyManaged", err)
	}
	// Rolling back to the adopted build while it serves changes nothing.
	if res, err := r.Rollback(ctx, h, "0.4.1"); err != nil || !res.Unchanged {
		t.Fatalf("rollback to the adopted build: %+v %v", res, err)
	}

	if _, err := r.Deploy(ctx, h, artifact(t, "0.5.0"), DeployOptions{}); err != nil {
		t.Fatalf("first deploy after adopt: %v", err)
	}
	waitGone(t, pid)
	hs = check(t, r, e, "0.5.0")
	if hs.Adopted != nil {
		t.Fatalf("adopted process still recorded: %+v", hs.Adopted)
	}
	// The adopted build is the previous good one.
	if _, err := r.Rollback(ctx, h, ""); err != nil {
		t.Fatalf("rollback to the adopted build: %v", err)
	}
	check(t, r, e, "0.4.1")
}
