package audit

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"

	"github.com/patchctl/patchctl/internal/testenv"
)

// startAs runs nutcracker 0.5.0 with conf under uid/gid (0 = as the test) and waits for it.
func startAs(t *testing.T, dir string, conf string, mode os.FileMode, uid, gid int) (*exec.Cmd, string) {
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
	if err := testenv.WaitTCP(testenv.Addr(stats), testenv.WaitTimeout, nil); err != nil {
		t.Fatal(err)
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
	pool := func() string {
		return fmt.Sprintf("alpha:\n  listen: 127.0.0.1:%d\n  redis: true\n  servers:\n   - 127.0.0.1:6379:1\n", testenv.FreePort(t))
	}
	rootCmd, rootConf := startAs(t, dir, pool(), 0o666, 0, 0)
	goodCmd, goodConf := startAs(t, dir, pool(), 0o644, ncUID, ncGID)
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
