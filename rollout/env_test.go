package rollout

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/patchctl/patchctl/internal/testenv"
	"github.com/patchctl/patchctl/store"
	"github.com/patchctl/patchctl/transport"
)

// backends are the real servers behind the proxies of a test.
type backends struct {
	redis, authRedis, memcached *testenv.Process
}

func startBackends(t testing.TB) backends {
	return backends{
		redis:     testenv.Redis(t),
		authRedis: testenv.Redis(t, "--requirepass", "s3cret"),
		memcached: testenv.Memcached(t),
	}
}

// hostEnv is one simulated twemproxy host: a root directory, a nutcracker.yml, a store.
type hostEnv struct {
	Root, Config, Stats, Store, User string
	Interval                         time.Duration
}

// newHost lays out a host whose nutcracker.yml has a redis, an authenticated redis and a
// memcached pool; extra is appended to every pool.
func newHost(t testing.TB, b backends, extra string) hostEnv {
	t.Helper()
	// Not t.TempDir: the unprivileged user must be able to reach the binaries.
	root, err := os.MkdirTemp("", "rollout-")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(root, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		killOurs(root)
		os.RemoveAll(root)
	})
	conf := fmt.Sprintf(`alpha:
  listen: %s
  redis: true
  servers:
   - %s:1
%sbeta:
  listen: %s
  servers:
   - %s:1
%sgamma:
  listen: %s
  redis: true
  redis_auth: s3cret
  servers:
   - %s:1
%s`, testenv.Addr(testenv.FreePort(t)), b.redis.Addr, extra,
		testenv.Addr(testenv.FreePort(t)), b.memcached.Addr, extra,
		testenv.Addr(testenv.FreePort(t)), b.authRedis.Addr, extra)
	path := filepath.Join(root, "nutcracker.yml")
	if err := os.WriteFile(path, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	u := "nutcracker"
	if os.Geteuid() != 0 {
		cur, err := user.Current()
		if err != nil {
			t.Fatal(err)
		}
		u = cur.Username
	}
	return hostEnv{Root: root, Config: path, Stats: testenv.Addr(testenv.FreePort(t)),
		Store: filepath.Join(t.TempDir(), "patchctl.db"), User: u, Interval: 50 * time.Millisecond}
}

func (e hostEnv) spec() HostSpec {
	return HostSpec{Name: "proxy-1", Transport: &transport.Local{}, Root: e.Root, Config: e.Config,
		StatsAddr: e.Stats, Process: Process{Mode: ModePidfile, User: e.User, StatsInterval: e.Interval,
			StopTimeout: 2 * time.Second}}
}

func openStore(t testing.TB, path string) *store.Store {
	t.Helper()
	st, err := store.Open(context.Background(), path, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

func artifact(t testing.TB, version string) Artifact {
	return Artifact{Path: testenv.Nutcracker(t, version), Version: version}
}

// running lists the live processes started as <root>/current.
func running(root string) []int {
	exe := filepath.Join(root, "current")
	entries, _ := os.ReadDir("/proc")
	var out []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		cmdline, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil {
			continue
		}
		argv0, _, _ := bytes.Cut(cmdline, []byte{0})
		if string(argv0) != exe {
			continue
		}
		stat, _ := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if bytes.Contains(stat, []byte(") Z ")) {
			continue
		}
		out = append(out, pid)
	}
	return out
}

// killOurs ends the proxies a test started, found by their root directory.
func killOurs(root string) {
	for _, pid := range running(root) {
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
}

// ctxT bounds a test's operations generously: on a loaded machine one deploy takes tens of
// seconds.
func ctxT(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 3*testenv.WaitTimeout)
	t.Cleanup(cancel)
	return ctx
}

// ctxOp bounds one operation that may run over SSH, where every session starts the login
// shell, which takes seconds on a loaded machine.
func ctxOp(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

func openStoreErr(ctx context.Context, path string) (*store.Store, error) {
	return store.Open(ctx, path, store.Options{Timeout: 5 * time.Second})
}

// forEachTransport runs f on a fresh host reached through the local transport and through
// a real sshd on loopback.
func forEachTransport(t *testing.T, f func(t *testing.T, e hostEnv, h HostSpec)) {
	b := startBackends(t)
	t.Run("local", func(t *testing.T) {
		e := newHost(t, b, "")
		f(t, e, e.spec())
	})
	t.Run("ssh", func(t *testing.T) {
		e := newHost(t, b, "")
		f(t, e, e.sshSpec(t))
	})
}

// sshSpec is the host reached over SSH: a real sshd on loopback, logged in as the user
// running the tests.
func (e hostEnv) sshSpec(t testing.TB) HostSpec {
	t.Helper()
	tr := dialSSH(t, ctxT(t), testenv.SSHD(t))
	t.Cleanup(func() { tr.Close() })
	h := e.spec()
	h.Transport = tr
	return h
}
