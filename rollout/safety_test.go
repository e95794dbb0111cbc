package rollout

import (
	"context"
	"errors"
	"io"
	"net"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/patchctl/patchctl/internal/testenv"
	"github.com/patchctl/patchctl/transport"
)

// upgraded returns a host that runs 0.5.0 with 0.4.1 as its previous good build, and the
// pid of the proxy.
func upgraded(t *testing.T, e hostEnv, r *Rollout, h HostSpec) int {
	t.Helper()
	for _, v := range []string{"0.4.1", "0.5.0"} {
		if _, err := r.Deploy(ctxT(t), h, artifact(t, v), DeployOptions{}); err != nil {
			t.Fatalf("deploy %s: %v", v, err)
		}
	}
	check(t, r, e, "0.5.0")
	return running(e.Root)[0]
}

// addToPools appends a line to every pool of the host's nutcracker.yml.
func addToPools(t *testing.T, e hostEnv, line string) {
	t.Helper()
	data, err := os.ReadFile(e.Config)
	if err != nil {
		t.Fatal(err)
	}
	out := strings.ReplaceAll(string(data), "  servers:\n", "  "+line+"\n  servers:\n")
	if err := os.WriteFile(e.Config, []byte(out), 0o644); err != nil {
		t.Fatal(err)
	}
}

// samePid fails unless exactly the proxy pid still runs.
func samePid(t *testing.T, e hostEnv, pid int) {
	t.Helper()
	if after := running(e.Root); len(after) != 1 || after[0] != pid {
		t.Fatalf("proxy touched: pid %d -> %v", pid, after)
	}
}

func slotOf(t *testing.T, r *Rollout, version string) Slot {
	t.Helper()
	hs, err := r.Slots(ctxT(t), "proxy-1")
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range hs.Slots {
		if s.Version == version && s.State != SlotRetired {
			return s
		}
	}
	t.Fatalf("no slot of %s in %+v", version, hs.Slots)
	return Slot{}
}

// Item 1: re-deploying the previous good build, refused at pre-flight, keeps it.
func TestRefusedRedeployKeepsLastGood(t *testing.T) {
	forEachTransport(t, func(t *testing.T, e hostEnv, h HostSpec) {
		r := New(openStore(t, e.Store), Options{})
		pid := upgraded(t, e, r, e.spec())     // set up locally: SSH sessions are slow here
		addToPools(t, e, "tcpkeepalive: true") // 0.4.1 refuses it
		_, err := r.Deploy(ctxOp(t), h, artifact(t, "0.4.1"), DeployOptions{})
		if !errors.Is(err, ErrPreflight) {
			t.Fatalf("deploy 0.4.1 with tcpkeepalive: %v, want ErrPreflight", err)
		}
		samePid(t, e, pid)
		old := slotOf(t, r, "0.4.1")
		if old.State != SlotGood {
			t.Fatalf("previous good slot after a refused re-deploy: %+v", old)
		}
		if _, err := os.Stat(filepath.Join(e.Root, "slots", old.Name, "nutcracker")); err != nil {
			t.Fatalf("previous good build removed: %v", err)
		}
		// Still something to roll back to, once the configuration allows it.
		e.writeConfigWithout(t, "tcpkeepalive: true")
		if _, err := r.Rollback(ctxT(t), e.spec(), ""); err != nil {
			t.Fatalf("rollback after the refused re-deploy: %v", err)
		}
		check(t, r, e, "0.4.1")
	})
}

func (e hostEnv) writeConfigWithout(t *testing.T, line string) {
	t.Helper()
	data, err := os.ReadFile(e.Config)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(e.Config, []byte(strings.ReplaceAll(string(data), "  "+line+"\n", "")), 0o644); err != nil {
		t.Fatal(err)
	}
}

// Item 2: rollback runs the pre-flight before touching the proxy.
func TestRollbackPreflight(t *testing.T) {
	forEachTransport(t, func(t *testing.T, e hostEnv, h HostSpec) {
		r := New(openStore(t, e.Store), Options{})
		pid := upgraded(t, e, r, e.spec()) // set up locally: SSH sessions are slow here
		addToPools(t, e, "tcpkeepalive: true")
		res, err := r.Rollback(ctxOp(t), h, "")
		if !errors.Is(err, ErrPreflight) {
			t.Fatalf("rollback to 0.4.1 with tcpkeepalive: %v, want ErrPreflight", err)
		}
		// Lint runs before -t and gives the reason.
		if !strings.Contains(err.Error(), "lint for 0.4.1") || !strings.Contains(err.Error(), "tcpkeepalive") || strings.Contains(err.Error(), "syntax is invalid") {
			t.Fatalf("refusal does not name lint's reason: %v", err)
		}
		if res.Operation.State != OpFailed || res.Operation.Step != StepDone {
			t.Fatalf("operation: %+v", res.Operation)
		}
		samePid(t, e, pid)
		check(t, r, e, "0.5.0")
		if s := slotOf(t, r, "0.4.1"); s.State != SlotGood {
			t.Fatalf("refused target changed state: %+v", s)
		}
	})
}

// Item 2: a target that passes pre-flight but dies at start: the running build comes back.
func TestRollbackRestoresRunningBuild(t *testing.T) {
	e := newHost(t, startBackends(t), "")
	r := New(openStore(t, e.Store), Options{})
	h := e.spec()
	ctx := ctxT(t)
	if _, err := r.Deploy(ctx, h, artifact(t, "0.4.1"), DeployOptions{}); err != nil {
		t.Fatal(err)
	}
	res, err := r.Deploy(ctx, h, Artifact{Path: crashScript(t), Version: "0.5.0"}, DeployOptions{SmokeTimeout: 3 * time.Second})
	if !errors.Is(err, ErrRolledBack) {
		t.Fatalf("deploy of a crashing build: %v", err)
	}
	broken := res.Operation.To
	res, err = r.Rollback(ctx, h, broken)
	if !errors.Is(err, ErrRolledBack) || !strings.Contains(err.Error(), "simulated crash") {
		t.Fatalf("rollback to a build that dies at start: %v, want ErrRolledBack naming the crash", err)
	}
	if res.Operation.State != OpRolledBack {
		t.Fatalf("operation: %+v", res.Operation)
	}
	check(t, r, e, "0.4.1")
}

func crashScript(t *testing.T) string {
	p, err := filepath.Abs(filepath.Join("testdata", "crash-at-start.sh"))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// Item 3: nutcracker's own log line, not a stats timeout.
func TestExitAtStartQuotesLog(t *testing.T) {
	e := newHost(t, startBackends(t), "")
	data, err := os.ReadFile(e.Config)
	if err != nil {
		t.Fatal(err)
	}
	// -t accepts a unix socket in a missing directory; binding it fails at start.
	sock := filepath.Join(e.Root, "missing", "nc.sock")
	conf := strings.Replace(string(data), "alpha:\n  listen: ", "alpha:\n  listen: "+sock+" #", 1)
	if err := os.WriteFile(e.Config, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	r := New(openStore(t, e.Store), Options{})
	_, err = r.Deploy(ctxT(t), e.spec(), artifact(t, "0.5.0"), DeployOptions{SmokeTimeout: 30 * time.Second})
	if err == nil || !strings.Contains(err.Error(), "nutcracker exited at start: bind on") || !strings.Contains(err.Error(), "No such file or directory") {
		t.Fatalf("deploy: %v, want nutcracker's bind error", err)
	}
}

// Item 3: a port held by another process is named, in decimal, with its holder.
func TestPortInUseNamesHolder(t *testing.T) {
	e := newHost(t, startBackends(t), "")
	ln, err := net.Listen("tcp", e.pools(t)[1].Listen)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	h := e.spec()
	h.Process.StopTimeout = 300 * time.Millisecond
	r := New(openStore(t, e.Store), Options{})
	_, err = r.Deploy(ctxT(t), h, artifact(t, "0.5.0"), DeployOptions{})
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	want := "port " + port + " is still in use by pid " + strconv.Itoa(os.Getpid())
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("deploy: %v\nwant it to say %q", err, want)
	}
}

func (e hostEnv) pools(t *testing.T) []pool {
	t.Helper()
	data, err := os.ReadFile(e.Config)
	if err != nil {
		t.Fatal(err)
	}
	p, err := parsePools(e.Config, data)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// Item 3: a smoke test that meets another version says so.
func TestSmokeWrongVersion(t *testing.T) {
	e := newHost(t, startBackends(t), "")
	r := New(openStore(t, e.Store), Options{})
	if _, err := r.Deploy(ctxT(t), e.spec(), artifact(t, "0.4.1"), DeployOptions{}); err != nil {
		t.Fatal(err)
	}
	err := smoke(ctxT(t), e.spec(), e.pools(t), "0.5.0", "op", 3*time.Second, func(ctx context.Context) error { return nil })
	if !errors.Is(err, ErrWrongVersion) || !strings.Contains(err.Error(), "answers version 0.4.1, want 0.5.0") {
		t.Fatalf("smoke: %v", err)
	}
}

// Item 4: deploying or rolling back to the current build while nothing serves starts it.
func TestStoppedProxyIsStarted(t *testing.T) {
	e := newHost(t, startBackends(t), "")
	r := New(openStore(t, e.Store), Options{})
	h := e.spec()
	pid := upgraded(t, e, r, h)
	for _, tc := range []struct {
		name string
		run  func() (Result, error)
	}{
		{"deploy", func() (Result, error) { return r.Deploy(ctxT(t), h, artifact(t, "0.5.0"), DeployOptions{}) }},
		{"rollback --to", func() (Result, error) { return r.Rollback(ctxT(t), h, "0.5.0") }},
	} {
		if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		waitGone(t, pid)
		res, err := tc.run()
		if err != nil || res.Unchanged || !res.Operation.ProxyDown || res.Operation.State != OpSucceeded {
			t.Fatalf("%s of the stopped current build: %+v %v", tc.name, res, err)
		}
		check(t, r, e, "0.5.0")
		pid = running(e.Root)[0]
		// Now it serves: nothing to do.
		if res, err := tc.run(); err != nil || !res.Unchanged {
			t.Fatalf("%s again: %+v %v", tc.name, res, err)
		}
	}
}

func waitGone(t *testing.T, pid int) {
	t.Helper()
	for i := 0; i < 6000; i++ {
		if _, err := os.Stat("/proc/" + strconv.Itoa(pid) + "/cmdline"); err != nil {
			return
		}
		data, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
		if strings.Contains(string(data), ") Z ") {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("pid %d did not exit within 60 s", pid)
}

// Item 7: a slot binary replaced after install is refused and the running build stays.
func TestTamperedSlotRefused(t *testing.T) {
	forEachTransport(t, func(t *testing.T, e hostEnv, h HostSpec) {
		r := New(openStore(t, e.Store), Options{})
		pid := upgraded(t, e, r, e.spec())
		old := slotOf(t, r, "0.4.1")
		bin := filepath.Join(e.Root, "slots", old.Name, "nutcracker")
		real := testenv.Nutcracker(t, "0.4.1")
		if err := os.WriteFile(bin+".new", []byte("#!/bin/sh\nexec "+real+" \"$@\"\n"), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(bin+".new", bin); err != nil {
			t.Fatal(err)
		}
		_, err := r.Rollback(ctxOp(t), h, "")
		if !errors.Is(err, ErrDigestMismatch) || !strings.Contains(err.Error(), old.SHA256) {
			t.Fatalf("rollback to a replaced binary: %v, want ErrDigestMismatch naming the recorded digest", err)
		}
		samePid(t, e, pid)
		check(t, r, e, "0.5.0")
	})
}

// loginAs is the local host reached as another login: every command runs as that user,
// as it would for an SSH login of that user (the file operations, Put, Readlink and
// Symlink, still run as the test's user).
type loginAs struct {
	transport.Local
	user, group string
}

func (a *loginAs) Run(ctx context.Context, argv []string, stdin io.Reader) (transport.Result, error) {
	return a.Local.Run(ctx, append([]string{"setpriv", "--reuid=" + a.user, "--regid=" + a.group, "--init-groups", "--"}, argv...), stdin)
}

// Item 11: a pidfile host whose transport user cannot restart nutcracker fails at
// pre-flight, before the switch, not after it.
func TestTransportUserCheckedUpFront(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Fatal("needs root to log in as another user (the suite runs as root)")
	}
	e := newHost(t, startBackends(t), "")
	r := New(openStore(t, e.Store), Options{})
	pid := upgraded(t, e, r, e.spec())
	h := e.spec()
	h.Transport = &loginAs{user: "nobody", group: "nogroup"} // neither root nor the nutcracker user
	current, _ := os.Readlink(filepath.Join(e.Root, "current"))
	_, err := r.Rollback(ctxT(t), h, "")
	if !errors.Is(err, ErrTransportUser) || !errors.Is(err, ErrPreflight) {
		t.Fatalf("rollback as nobody: %v, want ErrTransportUser at pre-flight", err)
	}
	if now, _ := os.Readlink(filepath.Join(e.Root, "current")); now != current {
		t.Fatalf("current moved from %s to %s", current, now)
	}
	samePid(t, e, pid)
	check(t, r, e, "0.5.0")
}

// Item 11: a pidfile host whose transport logs in as the nutcracker user itself: the
// restart stops and starts nutcracker as that user, without setpriv, and writes its pid.
func TestLoginAsNutcrackerUser(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Fatal("needs root to log in as the nutcracker user (the suite runs as root)")
	}
	e := newHost(t, startBackends(t), "")
	u, err := user.Lookup(e.User)
	if err != nil {
		t.Fatal(err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	if err := os.Chown(e.Root, uid, gid); err != nil { // every transport user needs write access to root
		t.Fatal(err)
	}
	r := New(openStore(t, e.Store), Options{})
	h := e.spec()
	h.Transport = &loginAs{user: e.User, group: u.Gid}
	upgraded(t, e, r, h)
	if _, err := r.Rollback(ctxT(t), h, ""); err != nil {
		t.Fatal(err)
	}
	check(t, r, e, "0.4.1")
	pid := running(e.Root)[0]
	status, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "status"))
	if err != nil {
		t.Fatal(err)
	}
	if want := "\nUid:\t" + u.Uid + "\t"; !strings.Contains(string(status), want) {
		t.Fatalf("nutcracker does not run as %s:\n%s", e.User, status)
	}
	if got, err := os.ReadFile(filepath.Join(e.Root, "run", "nutcracker.pid")); err != nil || string(got) != strconv.Itoa(pid) {
		t.Fatalf("pid file holds %q (%v), want %d", got, err, pid)
	}
}

// A restart issued before another that has already run does nothing: the restart of a
// SIGKILLed patchctl that reaches the host only after the recovery's restart must not stop
// the proxy the recovery started.
func TestStaleRestartDoesNothing(t *testing.T) {
	e := newHost(t, startBackends(t), "")
	r := New(openStore(t, e.Store), Options{})
	pid := upgraded(t, e, r, e.spec())
	later := strconv.FormatInt(time.Now().Add(time.Hour).UnixNano(), 10)
	if err := os.WriteFile(filepath.Join(e.Root, ".restart.last"), []byte(later+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := r.Rollback(ctxT(t), e.spec(), "")
	if err == nil || !strings.Contains(err.Error(), "a restart issued later has already run") {
		t.Fatalf("rollback after a later restart: %v, want it refused by the restart", err)
	}
	samePid(t, e, pid)
}
