package inventory_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/patchctl/patchctl/internal/testenv"
	"github.com/patchctl/patchctl/inventory"
)

func TestDeploySettings(t *testing.T) {
	in := `defaults:
  environment: e
  config: /etc/n.yml
  transport: {type: ssh, address: h, identity_file: ~/.ssh/id, known_hosts: "~/kh"}
  deploy: {root: /opt/nc, restart: pidfile, keep: 3, smoke_timeout: 20s, stats_interval: 100ms, stop_timeout: 2s}
hosts:
  - {name: a, stats: "127.0.0.1:22222"}
`
	inv, err := inventory.Parse([]byte(in), "inv.yml")
	if err != nil {
		t.Fatal(err)
	}
	home, err := os.UserHomeDir()
	if err != nil {
		t.Fatal(err)
	}
	h := inv.Hosts[0]
	if h.Transport.IdentityFile != filepath.Join(home, ".ssh/id") || h.Transport.KnownHosts != filepath.Join(home, "kh") {
		t.Errorf("~ not expanded: %+v", h.Transport)
	}
	d := h.Deploy
	if d.Keep != 3 || d.SmokeTimeout != 20*time.Second || d.StatsInterval != 100*time.Millisecond || d.StopTimeout != 2*time.Second {
		t.Errorf("deploy = %+v", d)
	}

	const ok = "    environment: e\n    stats: 127.0.0.1:22222\n    config: /etc/n.yml\n    transport: {type: local}\n"
	for _, tc := range []struct{ deploy, want string }{
		{"{root: /opt/nc, restart: pidfile, keep: -1}", "inv.yml:2: host a: deploy: keep: -1 is not 0 (the default) to 100"},
		{"{root: /opt/nc, restart: pidfile, smoke_timeout: -1s}", "deploy: smoke_timeout: -1s is not 0"},
		{"{root: /opt/nc, restart: pidfile, stats_interval: 1ms}", "deploy: stats_interval: 1ms is not 10ms to 1h0m0s"},
		{"{root: /opt/nc, restart: pidfile, stop_timeout: 1h}", "deploy: stop_timeout: 1h0m0s is not 0"},
		{"{root: /opt/nc, restart: systemd, unit: nc, stats_interval: 1s}", "deploy: stats_interval: only for restart pidfile"},
		{"{root: /opt/nc, restart: systemd, unit: nc, stop_timeout: 1s}", "deploy: stop_timeout: only for restart pidfile"},
	} {
		_, err := inventory.Parse([]byte("hosts:\n  - name: a\n"+ok+"    deploy: "+tc.deploy+"\n"), "inv.yml")
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("deploy %s: %v, want %q", tc.deploy, err, tc.want)
		}
	}
}

// A managed host's -V fallback runs the build patchctl installed, not the binary key (or
// whatever nutcracker is on PATH).
func TestDiscoverManagedHostRunsCurrent(t *testing.T) {
	root := t.TempDir()
	slot := filepath.Join(root, "slots", "0.5.0-000000000000")
	if err := os.MkdirAll(slot, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(testenv.Nutcracker(t, "0.5.0"), filepath.Join(slot, "nutcracker")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("slots/0.5.0-000000000000/nutcracker", filepath.Join(root, "current")); err != nil {
		t.Fatal(err)
	}
	h := host("managed", "production", testenv.Addr(testenv.FreePort(t)), testenv.Nutcracker(t, "0.4.1"))
	h.Deploy = &inventory.Deploy{Root: root, Restart: "pidfile"}
	d := &inventory.Discoverer{Dial: dialLocal, StatsTimeout: time.Second, ProbeTimeout: 10 * time.Second}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	o := d.Discover(ctx, []inventory.Host{h})[0]
	if o.Version != "0.5.0" || o.Source != inventory.SourceBinary {
		t.Fatalf("managed host: %+v, want 0.5.0 from <root>/current", o)
	}
}
