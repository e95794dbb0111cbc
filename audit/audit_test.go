package audit

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/patchctl/patchctl/internal/testenv"
)

// startAs runs nutcracker 0.5.0 with conf (listening on listen) under uid/gid (0 = as the
// test) and waits for both its stats port and its pool to accept connections: nutcracker
// opens the pool's listener after the stats port.
func startAs(t *testing.T, dir string, conf, listen string, mode os.FileMode, uid, gid int) (*exec.Cmd, string) {
	t.Helper()
	path := filepath.Join(dir, fmt.Sprintf("nc-%d.yml", uid))
	if err := os.WriteFile(path, []byte(conf), mode); err != nil {
		t.Fatal(err)
	}
	os.Chmod(path, mode) // umask may have removed bits
	stats := testenv.FreePort(t)
	cmd := exec.Command(testenv.Nutcracker(t, "0.5.0"), "-c", path, "-s", strconv.Itoa(stats), "-a", "127.0.0.1", "-o", "/dev/null")
	if uid != 0 {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}}
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	for _, addr := range []string{testenv.Addr(stats), listen} {
		if err := testenv.WaitTCP(addr, testenv.WaitTimeout, nil); err != nil {
			t.Fatal(err)
		}
	}
	return cmd, path
}

func TestAuditRealProcesses(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Fatal("this test starts nutcracker as root and as the nutcracker user: run it as root (CI does)")
	}
	nc, err := user.Lookup("nutcracker")
	if err != nil {
		t.Fatalf("the nutcracker user comes with the Debian package (scripts/test-deps.sh): %v", err)
	}
	ncUID, _ := strconv.Atoi(nc.Uid)
	ncGID, _ := strconv.Atoi(nc.Gid)
	dir, err := os.MkdirTemp("", "audit")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	os.Chmod(dir, 0o755)
	pool := func() (conf, listen string) {
		listen = testenv.Addr(testenv.FreePort(t))
		return "alpha:\n  listen: " + listen + "\n  redis: true\n  servers:\n   - 127.0.0.1:6379:1\n", listen
	}
	rootPool, rootListen := pool()
	rootCmd, rootConf := startAs(t, dir, rootPool, rootListen, 0o666, 0, 0)
	goodPool, goodListen := pool()
	goodCmd, goodConf := startAs(t, dir, goodPool, goodListen, 0o644, ncUID, ncGID)
	public := filepath.Join(dir, "public.yml")
	os.WriteFile(public, []byte("open:\n  listen: 0.0.0.0:22121\n  redis: true\n  servers:\n   - 127.0.0.1:6379:1\nmc:\n  listen: 0.0.0.0:22122\n  servers:\n   - 127.0.0.1:11211:1\nsecret:\n  listen: 127.0.0.1:22123\n  redis: true\n  redis_auth: hunter2\n  servers:\n   - 127.0.0.1:6379:1\n"), 0o644)

	r, err := Run(context.Background(), Options{Configs: []string{public}, SelfUID: os.Geteuid()})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]bool{}
	for _, f := range r.Findings {
		got[f.Severity+" "+f.Rule+" "+f.Subject] = true
	}
	want := []string{
		"warning patchctl-root patchctl",
		"error process-root pid " + strconv.Itoa(rootCmd.Process.Pid),
		"error config-writable " + rootConf,
		"error listen-public-noauth " + public,
		"warning listen-public-memcache " + public,
		"warning secret-readable " + public,
	}
	for _, w := range want {
		if !got[w] {
			t.Errorf("missing finding %q; got %+v", w, r.Findings)
		}
	}
	for k := range got {
		if k == "error process-root pid "+strconv.Itoa(goodCmd.Process.Pid) || k == "error config-writable "+goodConf {
			t.Errorf("false finding %q", k)
		}
	}
	// The processes were found with their real users and listening sockets.
	seen := 0
	for _, p := range r.Processes {
		if p.PID == goodCmd.Process.Pid {
			seen++
			if p.User != "nutcracker" || p.ConfigPath != goodConf || len(p.Listening) != 2 {
				t.Errorf("process = %+v", p)
			}
		}
	}
	if seen != 1 {
		t.Errorf("process %d not found", goodCmd.Process.Pid)
	}
	if !r.HasErrors() {
		t.Error("HasErrors = false")
	}
}

func TestStatsPublic(t *testing.T) {
	cases := []struct {
		p    Process
		want bool
	}{
		{Process{StatsAddr: "0.0.0.0:22222"}, true},
		{Process{StatsAddr: "127.0.0.1:22222"}, false},
		// What the process really listens on wins over its flags.
		{Process{StatsAddr: "127.0.0.1:22222", Listening: []string{"0.0.0.0:22222"}}, true},
		{Process{StatsAddr: "0.0.0.0:22222", Listening: []string{"127.0.0.1:22222"}}, false},
		{Process{StatsAddr: "[::]:22222"}, true},
	}
	for _, c := range cases {
		if got := statsPublic(c.p); got != c.want {
			t.Errorf("statsPublic(%+v) = %v", c.p, got)
		}
	}
}

func TestDecodeProcAddr(t *testing.T) {
	cases := map[string]string{
		"0100007F:1F90":                         "127.0.0.1:8080",
		"00000000:56CE":                         "0.0.0.0:22222",
		"00000000000000000000000001000000:0016": "[::1]:22",
		"00000000000000000000000000000000:0050": "[::]:80",
	}
	for in, want := range cases {
		got, err := decodeProcAddr(in)
		if err != nil || got != want {
			t.Errorf("decodeProcAddr(%s) = %s, %v; want %s", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "zz:1", "0100007F", "0100007F:XYZ", "01:0016"} {
		if _, err := decodeProcAddr(bad); err == nil {
			t.Errorf("decodeProcAddr(%q) accepted", bad)
		}
	}
}

// childEnv makes the test binary run the audit and print its report as JSON (TestMain): how
// a test sees what audit reports as another, unprivileged user.
const childEnv = "PATCHCTL_AUDIT_CHILD"

func TestMain(m *testing.M) {
	if os.Getenv(childEnv) == "1" {
		r, err := Run(context.Background(), Options{SelfUID: os.Geteuid()})
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		json.NewEncoder(os.Stdout).Encode(r)
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// TestAuditSlotProcess runs nutcracker as patchctl does, as <root>/current (a symlink into a
// slot) with a -c relative to its working directory, under the nutcracker user. Root sees
// its executable, its sockets and the config file nutcracker really opened; an unrelated
// unprivileged user still recognises it and reports what it could not read, without failing.
func TestAuditSlotProcess(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Fatal("this test starts nutcracker as the nutcracker user and audits as nobody: run it as root (CI does)")
	}
	nc, err := user.Lookup("nutcracker")
	if err != nil {
		t.Fatalf("the nutcracker user comes with the Debian package (scripts/test-deps.sh): %v", err)
	}
	nobody, err := user.Lookup("nobody")
	if err != nil {
		t.Fatal(err)
	}
	root, err := os.MkdirTemp("", "audit-slot")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(root) })
	os.Chmod(root, 0o755)
	slot := filepath.Join(root, "slots", "0.5.0-test", "nutcracker")
	if err := os.MkdirAll(filepath.Dir(slot), 0o755); err != nil {
		t.Fatal(err)
	}
	copyFile(t, testenv.Nutcracker(t, "0.5.0"), slot, 0o755)
	if err := os.Symlink(filepath.Join("slots", "0.5.0-test", "nutcracker"), filepath.Join(root, "current")); err != nil {
		t.Fatal(err)
	}
	conf := filepath.Join(root, "nutcracker.yml")
	listen := testenv.Addr(testenv.FreePort(t))
	if err := os.WriteFile(conf, []byte("alpha:\n  listen: "+listen+"\n  redis: true\n  servers:\n   - 127.0.0.1:6379:1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	stats := testenv.FreePort(t)
	cmd := exec.Command(filepath.Join(root, "current"), "-c", "nutcracker.yml", "-s", strconv.Itoa(stats), "-a", "127.0.0.1", "-o", "/dev/null")
	cmd.Dir = root
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uid(t, nc.Uid), Gid: uid(t, nc.Gid)}}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	for _, addr := range []string{testenv.Addr(stats), listen} {
		if err := testenv.WaitTCP(addr, testenv.WaitTimeout, nil); err != nil {
			t.Fatal(err)
		}
	}
	find := func(r Report) Process {
		t.Helper()
		for _, p := range r.Processes {
			if p.PID == cmd.Process.Pid {
				return p
			}
		}
		t.Fatalf("process %d (started as %s) not recognised; found %+v", cmd.Process.Pid, cmd.Path, r.Processes)
		return Process{}
	}

	r, err := Run(context.Background(), Options{SelfUID: os.Geteuid()})
	if err != nil {
		t.Fatal(err)
	}
	p := find(r)
	if p.Exe != slot || p.ConfigPath != conf || len(p.Unreadable) != 0 || len(p.Listening) != 2 {
		t.Errorf("as root: %+v; want exe %s, config %s, both sockets, nothing unreadable", p, slot, conf)
	}

	// As nobody: a copy of this test binary that nobody may run audits and prints its report.
	bin := filepath.Join(root, "audit.test")
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	copyFile(t, self, bin, 0o755)
	child := exec.Command(bin)
	child.Env = append(os.Environ(), childEnv+"=1")
	child.Dir = "/"
	child.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uid(t, nobody.Uid), Gid: uid(t, nobody.Gid)}}
	var stderr strings.Builder
	child.Stderr = &stderr
	out, err := child.Output()
	if err != nil {
		t.Fatalf("audit as nobody: %v: %s", err, stderr.String())
	}
	var asNobody Report
	if err := json.Unmarshal(out, &asNobody); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	p = find(asNobody)
	if fmt.Sprint(p.Unreadable) != "[exe cwd fd]" || p.ConfigPath != "nutcracker.yml" || p.User != "nutcracker" {
		t.Errorf("as nobody: %+v; want exe, cwd and fd unreadable and the config left relative", p)
	}
	subject := "pid " + strconv.Itoa(cmd.Process.Pid)
	var rules []string
	for _, f := range asNobody.Findings {
		if f.Subject == subject {
			rules = append(rules, f.Rule)
		}
	}
	if fmt.Sprint(rules) != "[proc-unreadable config-unresolved]" {
		t.Errorf("as nobody, findings for %s: %v; want proc-unreadable and config-unresolved", subject, asNobody.Findings)
	}
}

func uid(t *testing.T, s string) uint32 {
	t.Helper()
	n, err := strconv.ParseUint(s, 10, 32)
	if err != nil {
		t.Fatal(err)
	}
	return uint32(n)
}

func copyFile(t *testing.T, from, to string, mode os.FileMode) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(to, mode); err != nil {
		t.Fatal(err)
	}
}
