// Package testenv starts the real programs patchctl works with (nutcracker, redis-server,
// memcached) on free loopback ports for tests, and stops them when the test ends.
// Missing binaries fail the test: scripts/test-deps.sh installs them.
package testenv

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/patchctl/patchctl/internal/loopport"
)

// Versions lists the nutcracker builds the suite runs against.
var Versions = []string{"0.4.1", "0.5.0"}

// BinDir is where scripts/test-deps.sh unpacks the nutcracker builds.
func BinDir() string {
	if d := os.Getenv("PATCHCTL_TESTBIN"); d != "" {
		return d
	}
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", ".testbin")
}

// Nutcracker returns the path of the nutcracker binary of the given version.
func Nutcracker(t testing.TB, version string) string {
	t.Helper()
	p := filepath.Join(BinDir(), "nutcracker-"+version)
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("nutcracker %s not found at %s: run scripts/test-deps.sh (as root)", version, p)
	}
	return p
}

// Deb returns the path of the Debian package nutcracker <version> came from.
func Deb(t testing.TB, version string) string {
	t.Helper()
	p := filepath.Join(BinDir(), "nutcracker_"+version+".deb")
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("%s not found: run scripts/test-deps.sh (as root)", p)
	}
	return p
}

// LookPath finds a system binary (redis-server, memcached, sshd) or fails the test.
func LookPath(t testing.TB, name string) string {
	t.Helper()
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	for _, dir := range []string{"/usr/sbin", "/usr/bin", "/sbin"} {
		p := filepath.Join(dir, name)
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	t.Fatalf("%s not found: run scripts/test-deps.sh (as root)", name)
	return ""
}

// FreePort returns a loopback TCP port that was free a moment ago and that no other test
// (in this or another test process) has been handed, so parallel tests do not collide.
func FreePort(t testing.TB) int {
	t.Helper()
	port, err := loopport.Free()
	if err != nil {
		t.Fatalf("free port: %v", err)
	}
	return port
}

// Addr formats a loopback address.
func Addr(port int) string { return "127.0.0.1:" + strconv.Itoa(port) }

// Process is a program started for a test.
type Process struct {
	Cmd  *exec.Cmd
	Addr string // main address, host:port
	out  *lockedBuffer
	done chan struct{}
	err  error
}

// Output returns what the process wrote to stdout and stderr so far.
func (p *Process) Output() string { return p.out.String() }

// Exited reports whether the process has ended.
func (p *Process) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// Stop kills the process and waits for it (idempotent).
func (p *Process) Stop() {
	if p.Cmd.Process != nil && !p.Exited() {
		_ = p.Cmd.Process.Kill()
	}
	<-p.done
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// Start runs a program for the life of the test and waits until addr accepts TCP
// connections (addr "" = do not wait).
func Start(t testing.TB, addr string, name string, args ...string) *Process {
	t.Helper()
	cmd := exec.Command(name, args...)
	out := &lockedBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	p := &Process{Cmd: cmd, Addr: addr, out: out, done: make(chan struct{})}
	go func() { p.err = cmd.Wait(); close(p.done) }()
	t.Cleanup(p.Stop)
	if addr != "" {
		if err := WaitTCP(addr, WaitTimeout, p.done); err != nil {
			t.Fatalf("%s %s: %v\noutput:\n%s", filepath.Base(name), strings.Join(args, " "), err, p.Output())
		}
	}
	return p
}

// WaitTimeout bounds how long a test waits for an event it needs: generous, because CI
// machines are shared and busy; a correct test returns as soon as the event happens.
const WaitTimeout = 60 * time.Second

// Eventually polls cond until it holds, failing the test with what was awaited if it does
// not within WaitTimeout.
func Eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(WaitTimeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up after %s waiting for %s", WaitTimeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// WaitTCP waits until addr accepts a connection, the deadline passes, or died is closed.
func WaitTCP(addr string, timeout time.Duration, died <-chan struct{}) error {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err == nil {
			c.Close()
			return nil
		}
		select {
		case <-died:
			return fmt.Errorf("process exited before %s accepted connections", addr)
		case <-time.After(20 * time.Millisecond):
		}
	}
	return fmt.Errorf("%s did not accept connections within %s", addr, timeout)
}

// Redis starts redis-server on a free loopback port; extra are "--key value" arguments.
func Redis(t testing.TB, extra ...string) *Process {
	t.Helper()
	port := FreePort(t)
	args := append([]string{"--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--save", "",
		"--appendonly", "no", "--dir", t.TempDir(), "--daemonize", "no"}, extra...)
	return Start(t, Addr(port), LookPath(t, "redis-server"), args...)
}

// Memcached starts memcached on a free loopback port.
func Memcached(t testing.TB) *Process {
	t.Helper()
	port := FreePort(t)
	args := []string{"-l", "127.0.0.1", "-p", strconv.Itoa(port), "-U", "0", "-m", "16"}
	if os.Geteuid() == 0 {
		args = append(args, "-u", "nobody")
	}
	return Start(t, Addr(port), LookPath(t, "memcached"), args...)
}

// Proxy is a running nutcracker.
type Proxy struct {
	*Process
	Stats   string // stats address
	Config  string // path of nutcracker.yml
	Version string
}

// StartNutcracker starts nutcracker <version> with the given configuration on a free stats
// port (stats interval 100 ms) and waits for its stats port and for every listen address.
func StartNutcracker(t testing.TB, version, conf string, listen ...string) *Proxy {
	t.Helper()
	dir := t.TempDir()
	path := filepath.Join(dir, "nutcracker.yml")
	if err := os.WriteFile(path, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	stats := FreePort(t)
	p := Start(t, Addr(stats), Nutcracker(t, version), "-c", path, "-s", strconv.Itoa(stats),
		"-a", "127.0.0.1", "-i", "100", "-o", filepath.Join(dir, "nutcracker.log"))
	for _, l := range listen {
		if err := WaitTCP(l, WaitTimeout, p.done); err != nil {
			log, _ := os.ReadFile(filepath.Join(dir, "nutcracker.log"))
			t.Fatalf("nutcracker %s: listen %s: %v\nlog:\n%s", version, l, err, log)
		}
	}
	return &Proxy{Process: p, Stats: Addr(stats), Config: path, Version: version}
}

// Log returns nutcracker's log file.
func (p *Proxy) Log() string {
	b, _ := os.ReadFile(filepath.Join(filepath.Dir(p.Config), "nutcracker.log"))
	return string(b)
}

// CheckConfig runs `nutcracker -t` of the given version on a file and reports whether it passed,
// with what nutcracker printed.
func CheckConfig(ctx context.Context, bin, path string) (ok bool, output string, err error) {
	cmd := exec.CommandContext(ctx, bin, "-t", "-c", path)
	out, err := cmd.CombinedOutput()
	if err != nil {
		if _, isExit := err.(*exec.ExitError); !isExit {
			return false, string(out), err
		}
	}
	return cmd.ProcessState.ExitCode() == 0, string(out), nil
}

// FirstLine returns the first line of s without its line ending.
func FirstLine(s string) string {
	line, _, _ := bufio.NewReader(strings.NewReader(s)).ReadLine()
	return strings.TrimRight(string(line), "\r")
}

// ServeTCP accepts connections on a free loopback port until the test ends and hands each
// to handle on its own goroutine; it returns the address. Tests use it to play a stats port
// that answers garbage, never answers, or answers like nutcracker.
func ServeTCP(t testing.TB, handle func(net.Conn)) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() { defer c.Close(); handle(c) }()
		}
	}()
	return l.Addr().String()
}
