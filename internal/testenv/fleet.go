package testenv

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/patchctl/patchctl/internal/prockill"
)

// FleetHost describes one simulated twemproxy host of a fleet test.
type FleetHost struct {
	Name        string
	Environment string
	Labels      map[string]string
	// SSH, if set, makes the inventory reach the host through this server instead of
	// the local transport.
	SSH *SSHServer
}

// FleetProxy is one host of a fleet: its own deploy root and nutcracker.yml in front of
// its own redis-server and memcached. Nothing runs nutcracker until patchctl deploys it.
type FleetProxy struct {
	FleetHost
	Root, Config, Stats         string
	RedisListen, MemcacheListen string // the proxy's pools
	Redis, Memcached            *Process
	redisPort                   int
	t                           testing.TB
}

// DeployRoot makes a directory for a host's deploys, named prefix and a random part; every
// process started from it is killed, and it is removed, when the test ends. Not t.TempDir:
// the unprivileged nutcracker user must reach the binaries.
func DeployRoot(t testing.TB, prefix string) string {
	t.Helper()
	root, err := os.MkdirTemp("", prefix)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(root, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { prockill.Under(root); os.RemoveAll(root) })
	return root
}

// Fleet lays out hosts; every nutcracker a patchctl deploy starts under their roots is
// killed when the test ends.
func Fleet(t testing.TB, hosts ...FleetHost) []*FleetProxy {
	t.Helper()
	out := make([]*FleetProxy, len(hosts))
	for i, h := range hosts {
		root := DeployRoot(t, "fleet-"+h.Name+"-")
		p := &FleetProxy{FleetHost: h, Root: root, Config: filepath.Join(root, "nutcracker.yml"),
			Stats: Addr(FreePort(t)), RedisListen: Addr(FreePort(t)), MemcacheListen: Addr(FreePort(t)), t: t}
		p.Redis = Redis(t)
		p.redisPort, _ = strconv.Atoi(p.Redis.Addr[strings.LastIndexByte(p.Redis.Addr, ':')+1:])
		p.Memcached = Memcached(t)
		conf := fmt.Sprintf("r:\n  listen: %s\n  redis: true\n  timeout: 3000\n  server_retry_timeout: 200\n  servers:\n   - %s:1\n"+
			"m:\n  listen: %s\n  timeout: 3000\n  server_retry_timeout: 200\n  servers:\n   - %s:1\n",
			p.RedisListen, p.Redis.Addr, p.MemcacheListen, p.Memcached.Addr)
		if err := os.WriteFile(p.Config, []byte(conf), 0o644); err != nil {
			t.Fatal(err)
		}
		out[i] = p
	}
	return out
}

// FleetInventory is the inventory file of a fleet (deploys in pidfile mode as the
// nutcracker user); extra hosts (YAML list items) are appended as they are.
func FleetInventory(proxies []*FleetProxy, extra string) string {
	var b strings.Builder
	b.WriteString("hosts:\n")
	for _, p := range proxies {
		fmt.Fprintf(&b, "  - name: %s\n    environment: %s\n    stats: %s\n    config: %s\n", p.Name, p.Environment, p.Stats, p.Config)
		if len(p.Labels) > 0 {
			keys := make([]string, 0, len(p.Labels))
			for k := range p.Labels {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			b.WriteString("    labels:\n")
			for _, k := range keys {
				fmt.Fprintf(&b, "      %s: %s\n", k, p.Labels[k])
			}
		}
		if s := p.SSH; s != nil {
			fmt.Fprintf(&b, "    transport: {type: ssh, address: %q, user: %s, identity_file: %s, known_hosts: %s}\n", s.Addr, s.User, s.IdentityFile, s.KnownHosts)
		} else {
			b.WriteString("    transport: {type: local}\n")
		}
		fmt.Fprintf(&b, "    deploy:\n      root: %s\n      restart: pidfile\n      user: nutcracker\n", filepath.Join(p.Root, "nc"))
	}
	b.WriteString(extra)
	return b.String()
}

// StopRedis stops the host's redis backend.
func (p *FleetProxy) StopRedis() { p.Redis.Stop() }

// StartRedis starts the host's redis backend again on the same port.
func (p *FleetProxy) StartRedis() {
	p.t.Helper()
	p.Redis = Start(p.t, p.Redis.Addr, LookPath(p.t, "redis-server"), "--port", strconv.Itoa(p.redisPort),
		"--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", p.t.TempDir(), "--daemonize", "no")
}

// Version reads the version from the host's stats port.
func (p *FleetProxy) Version(ctx context.Context) (string, error) {
	d := net.Dialer{Timeout: 2 * time.Second}
	c, err := d.DialContext(ctx, "tcp", p.Stats)
	if err != nil {
		return "", err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(3 * time.Second))
	var s struct {
		Version string `json:"version"`
	}
	if err := json.NewDecoder(c).Decode(&s); err != nil {
		return "", fmt.Errorf("stats %s: %w", p.Stats, err)
	}
	return s.Version, nil
}

// Serving proves the proxy carries traffic to both backends: a redis SET and a
// memcached set through its pools.
func (p *FleetProxy) Serving(ctx context.Context) error {
	key := "serving-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	if err := exchange(ctx, p.RedisListen, fmt.Sprintf("*3\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$1\r\nx\r\n", len(key), key), "+OK"); err != nil {
		return fmt.Errorf("%s redis pool: %w", p.Name, err)
	}
	if err := exchange(ctx, p.MemcacheListen, fmt.Sprintf("set %s 0 0 1\r\nx\r\n", key), "STORED"); err != nil {
		return fmt.Errorf("%s memcache pool: %w", p.Name, err)
	}
	return nil
}

// WaitServing polls until the proxy runs version and serves through both pools, for up to
// bound (a restarted proxy may take a moment to reconnect its backends); it returns the last
// problem seen.
func (p *FleetProxy) WaitServing(ctx context.Context, version string, bound time.Duration) error {
	deadline := time.Now().Add(bound)
	for {
		err := p.serves(ctx, version)
		if err == nil || time.Now().After(deadline) {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func (p *FleetProxy) serves(ctx context.Context, version string) error {
	vctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	v, err := p.Version(vctx)
	if err != nil {
		return err
	}
	if v != version {
		return fmt.Errorf("runs %s, want %s", v, version)
	}
	sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	return p.Serving(sctx)
}

// RedisTraffic sends one GET through the host's redis pool and returns the first line
// of the answer (an error reply when the backend is down).
func (p *FleetProxy) RedisTraffic(ctx context.Context) (string, error) {
	return request(ctx, p.RedisListen, "*2\r\n$3\r\nGET\r\n$7\r\ntraffic\r\n")
}

func exchange(ctx context.Context, addr, req, want string) error {
	line, err := request(ctx, addr, req)
	if err != nil {
		return err
	}
	if line != want {
		return fmt.Errorf("answered %q, want %q", line, want)
	}
	return nil
}

func request(ctx context.Context, addr, req string) (string, error) {
	d := net.Dialer{Timeout: 2 * time.Second}
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return "", err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(3 * time.Second))
	if _, err := c.Write([]byte(req)); err != nil {
		return "", err
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return "", err
	}
	return strings.TrimRight(line, "\r\n"), nil
}
