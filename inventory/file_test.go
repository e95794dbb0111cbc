package inventory_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/patchctl/patchctl/configs"
	"github.com/patchctl/patchctl/internal/strictyaml"
	"github.com/patchctl/patchctl/inventory"
)

func TestParseExample(t *testing.T) {
	inv, err := inventory.Parse(configs.InventoryExample, "inventory.example.yml")
	if err != nil {
		t.Fatal(err)
	}
	if len(inv.Hosts) != 4 {
		t.Fatalf("%d hosts, want 4", len(inv.Hosts))
	}
	eu1, _ := inv.Host("cache-eu-1")
	if eu1.Environment != "production" || eu1.Labels["region"] != "eu-west-1" || eu1.Labels["team"] != "cache" ||
		eu1.Config != "/etc/nutcracker/nutcracker.yml" || eu1.Binary != "/usr/sbin/nutcracker" ||
		eu1.Stats != "10.0.1.11:22222" || eu1.Transport.Kind != "ssh" || eu1.Transport.Address != "10.0.1.11" {
		t.Errorf("cache-eu-1 = %+v %+v", eu1, eu1.Transport)
	}
	// Defaults fill what a host leaves out; a host's transport replaces the default one.
	eu2, _ := inv.Host("cache-eu-2")
	if eu2.Environment != "production" || eu2.Transport.Address != "10.0.1.12:2222" || eu2.Transport.Timeout != 0 {
		t.Errorf("cache-eu-2 = %+v %+v", eu2, eu2.Transport)
	}
	stg, _ := inv.Host("cache-staging-1")
	if stg.Environment != "staging" || stg.Binary != "/opt/twemproxy/bin/nutcracker" || stg.Config != "/srv/twemproxy/nutcracker.yml" {
		t.Errorf("cache-staging-1 = %+v", stg)
	}
	dev, _ := inv.Host("local-dev")
	if dev.Transport.Kind != "local" || dev.Binary != "nutcracker" {
		t.Errorf("local-dev = %+v %+v", dev, dev.Transport)
	}
	if _, ok := inv.Host("nope"); ok {
		t.Error("Host(nope) found")
	}
}

func TestParseDefaultsAndDurations(t *testing.T) {
	in := `defaults:
  transport: {type: ssh, address: bastion, timeout: 3s}
hosts:
  - {name: a, environment: e, stats: "[::1]:22222", config: /c.yml}
`
	inv, err := inventory.Parse([]byte(in), "inv.yml")
	if err != nil {
		t.Fatal(err)
	}
	h := inv.Hosts[0]
	if h.Binary != inventory.DefaultBinary || h.Transport.Timeout != 3*time.Second || h.Transport.Address != "bastion" {
		t.Errorf("host = %+v %+v", h, h.Transport)
	}
}

func TestParseErrors(t *testing.T) {
	const ok = "    environment: e\n    stats: 127.0.0.1:22222\n    config: /etc/n.yml\n    transport: {type: local}\n"
	tests := []struct {
		name, in string
		want     []string
	}{
		{"empty", "", []string{"inv.yml: empty file"}},
		{"no hosts", "hosts: []\n", []string{"inv.yml: no hosts"}},
		{"unknown key", "hosts:\n  - name: a\n" + ok + "    stat: x\n", []string{`inv.yml:7: hosts[0]: unknown key "stat"`}},
		{"unknown transport key", "hosts:\n  - name: a\n" + strings.Replace(ok, "{type: local}", "{type: local, port: 22}", 1),
			[]string{`inv.yml:6: hosts[0].transport: unknown key "port"`}},
		{"wrong type", "hosts:\n  - name: a\n" + ok + "    labels: [x]\n", []string{"inv.yml:7: hosts[0].labels: want a mapping of keys to values, not a list"}},
		{"bad duration", "hosts:\n  - name: a\n" + strings.Replace(ok, "{type: local}", "{type: local, timeout: soon}", 1),
			[]string{`inv.yml:6: hosts[0].transport.timeout: want a duration such as 30s, 5m or 1h30m, not "soon"`}},
		{"missing everything", "hosts:\n  - labels: {a: b}\n", []string{
			"inv.yml:2: host 1: name: missing", "inv.yml:2: host 1: environment: missing",
			"inv.yml:2: host 1: stats: missing", "inv.yml:2: host 1: config: missing",
			"inv.yml:2: host 1: transport: missing"}},
		{"duplicate", "hosts:\n  - name: a\n" + ok + "  - name: a\n" + ok, []string{"inv.yml:7: host a: duplicate name (first on line 2)"}},
		{"bad name", "hosts:\n  - name: a b\n" + ok, []string{`inv.yml:2: host a b: name: "a b" may only hold`}},
		{"stats without port", "hosts:\n  - name: a\n" + strings.Replace(ok, "127.0.0.1:22222", "127.0.0.1", 1),
			[]string{`inv.yml:2: host a: stats: "127.0.0.1" is not host:port`}},
		{"stats port range", "hosts:\n  - name: a\n" + strings.Replace(ok, "22222", "70000", 1),
			[]string{`host a: stats: "127.0.0.1:70000": port "70000" is not 1-65535`}},
		{"stats bad host", "hosts:\n  - name: a\n" + strings.Replace(ok, "127.0.0.1:22222", "a_b:1", 1),
			[]string{`host a: stats: "a_b:1": invalid host "a_b"`}},
		{"relative config", "hosts:\n  - name: a\n" + strings.Replace(ok, "/etc/n.yml", "n.yml", 1),
			[]string{`host a: config: "n.yml" is not an absolute path`}},
		{"relative binary", "hosts:\n  - name: a\n" + ok + "    binary: bin/nutcracker\n",
			[]string{`host a: binary: "bin/nutcracker" is neither "nutcracker" nor an absolute path`}},
		{"deploy without restart", "hosts:\n  - name: a\n" + ok + "    deploy: {root: /opt/nc}\n",
			[]string{"host a: deploy: restart: missing"}},
		{"deploy relative root", "hosts:\n  - name: a\n" + ok + "    deploy: {root: opt, restart: pidfile}\n",
			[]string{`host a: deploy: root: "opt" is not an absolute path`}},
		{"deploy relative pid file", "hosts:\n  - name: a\n" + ok + "    deploy: {root: /opt/nc, restart: pidfile, pid_file: run/nc.pid, log_file: /var/log/nc.log}\n",
			[]string{`host a: deploy: pid_file: "run/nc.pid" is not an absolute path`}},
		{"deploy relative log file", "hosts:\n  - name: a\n" + ok + "    deploy: {root: /opt/nc, restart: pidfile, log_file: nc.log}\n",
			[]string{`host a: deploy: log_file: "nc.log" is not an absolute path`}},
		{"deploy as root", "hosts:\n  - name: a\n" + ok + "    deploy: {root: /opt/nc, restart: pidfile, user: root}\n",
			[]string{"host a: deploy: user: nutcracker must not run as root"}},
		{"deploy systemd without unit", "hosts:\n  - name: a\n" + ok + "    deploy: {root: /opt/nc, restart: systemd}\n",
			[]string{"host a: deploy: unit: missing"}},
		{"deploy command without stop", "hosts:\n  - name: a\n" + ok + "    deploy: {root: /opt/nc, restart: command, start: [x]}\n",
			[]string{"host a: deploy: start and stop: both required"}},
		{"deploy unknown key", "hosts:\n  - name: a\n" + ok + "    deploy: {root: /opt/nc, restart: pidfile, users: x}\n",
			[]string{`hosts[0].deploy: unknown key "users"`}},
		{"bad transport type", "hosts:\n  - name: a\n" + strings.Replace(ok, "local", "telnet", 1),
			[]string{`host a: transport: type "telnet" is not local or ssh`}},
		{"ssh without address", "hosts:\n  - name: a\n" + strings.Replace(ok, "local", "ssh", 1),
			[]string{"host a: transport: address missing for type ssh"}},
		{"ssh bad port", "hosts:\n  - name: a\n" + strings.Replace(ok, "{type: local}", "{type: ssh, address: \"h:0\"}", 1),
			[]string{`host a: transport: address: "h:0": port "0" is not 1-65535`}},
		{"local with address", "hosts:\n  - name: a\n" + strings.Replace(ok, "{type: local}", "{type: local, address: h}", 1),
			[]string{"host a: transport: address is only for type ssh"}},
		{"syntax", "hosts:\n  - name: [a\n", []string{"inv.yml:"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			inv, err := inventory.Parse([]byte(tt.in), "inv.yml")
			if err == nil {
				t.Fatalf("Parse = %+v, want an error", inv)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error\n%v\ndoes not contain %q", err, w)
				}
			}
		})
	}
}

func TestLoad(t *testing.T) {
	p := filepath.Join(t.TempDir(), "inventory.yml")
	if err := os.WriteFile(p, configs.InventoryExample, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := inventory.Load(p); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte("hosts:\n  - nam: x\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := inventory.Load(p)
	var se *strictyaml.Error
	if !errors.As(err, &se) || se.File != p || se.Problems[0].Line != 2 {
		t.Errorf("Load = %v, want a strictyaml.Error at %s:2", err, p)
	}
	if _, err := inventory.Load(filepath.Join(t.TempDir(), "none.yml")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: %v", err)
	}
}
