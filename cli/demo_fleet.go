package cli

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/patchctl/patchctl/app"
	"github.com/patchctl/patchctl/internal/loopport"
	"github.com/patchctl/patchctl/internal/prockill"
	"github.com/patchctl/patchctl/patching"
	"github.com/patchctl/patchctl/rollout"
	"github.com/patchctl/patchctl/waves"
)

// The demo's second act runs the product's main job on local hosts: real nutcracker 0.4.1
// processes in front of real redis and memcached, patched to 0.5.0 by the daemon itself in
// its patch windows, with a demo clock that jumps to each window.

// demoHosts are the demo's fleet; prod-3's redis breaks before production.
var demoHosts = []struct{ name, env string }{
	{"stage-1", "staging"}, {"prod-1", "production"}, {"prod-2", "production"}, {"prod-3", "production"},
}

// demoPrereqs says what the fleet act needs and what is missing.
type demoPrereqs struct {
	bin               string // directory with nutcracker-V and nutcracker_V.deb
	redis, memcached  string
	missing           []string
	installer         string // scripts/test-deps.sh, when found
	root, userPresent bool
}

func findDemoPrereqs(getenv func(string) string) demoPrereqs {
	p := demoPrereqs{root: os.Geteuid() == 0}
	_, err := user.Lookup("nutcracker")
	p.userPresent = err == nil
	p.bin = getenv("PATCHCTL_TESTBIN")
	if p.bin == "" {
		p.bin = ".testbin"
	}
	if _, err := os.Stat(filepath.Join("scripts", "test-deps.sh")); err == nil {
		p.installer = filepath.Join("scripts", "test-deps.sh")
	}
	p.check()
	return p
}

func (p *demoPrereqs) check() {
	p.missing = nil
	if !p.root {
		p.missing = append(p.missing, "root (deploys run nutcracker as the unprivileged nutcracker user)")
	}
	if !p.userPresent {
		p.missing = append(p.missing, "the nutcracker user (the Debian nutcracker package creates it)")
	}
	for _, v := range []string{"0.4.1", "0.5.0"} {
		if _, err := os.Stat(filepath.Join(p.bin, "nutcracker_"+v+".deb")); err != nil {
			p.missing = append(p.missing, fmt.Sprintf("nutcracker %s (%s)", v, filepath.Join(p.bin, "nutcracker_"+v+".deb")))
		}
	}
	var err error
	if p.redis, err = exec.LookPath("redis-server"); err != nil {
		p.missing = append(p.missing, "redis-server")
	}
	if p.memcached, err = exec.LookPath("memcached"); err != nil {
		p.missing = append(p.missing, "memcached")
	}
}

// demoHost is one local host: its backends, its nutcracker.yml, its deploy root.
type demoHost struct {
	name, env               string
	root, conf, stats       string
	redisAddr, memcacheAddr string
	redis, memcache         *exec.Cmd
	redisArgs               []string
}

// startRedis starts the host's redis (again) on its port.
func (d *demoHost) startRedis(ctx context.Context) error {
	d.redis = exec.Command(d.redisArgs[0], d.redisArgs[1:]...)
	if err := d.redis.Start(); err != nil {
		return fmt.Errorf("%s: start redis: %w", d.name, err)
	}
	return waitListen(ctx, d.redisAddr)
}

// demoFleet lays out the hosts and starts their backends under dir.
type demoFleet struct {
	hosts []*demoHost
	p     demoPrereqs
}

func freeAddr() (string, error) {
	port, err := loopport.Free()
	if err != nil {
		return "", err
	}
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), nil
}

func waitListen(ctx context.Context, addr string) error {
	deadline := time.Now().Add(30 * time.Second)
	for {
		c, err := (&net.Dialer{Timeout: time.Second}).DialContext(ctx, "tcp", addr)
		if err == nil {
			c.Close()
			return nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("nothing listens on %s: %w", addr, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (f *demoFleet) start(ctx context.Context, dir string) error {
	for _, h := range demoHosts {
		d := &demoHost{name: h.name, env: h.env, root: filepath.Join(dir, "hosts", h.name)}
		// The unprivileged nutcracker user must reach the binaries under the root.
		if err := os.MkdirAll(d.root, 0o755); err != nil {
			return err
		}
		if err := os.Chmod(filepath.Dir(d.root), 0o755); err != nil {
			return err
		}
		addrs := make([]string, 5)
		for i := range addrs {
			a, err := freeAddr()
			if err != nil {
				return err
			}
			addrs[i] = a
		}
		d.stats, d.redisAddr, d.memcacheAddr = addrs[0], addrs[1], addrs[2]
		d.conf = filepath.Join(d.root, "nutcracker.yml")
		conf := fmt.Sprintf("r:\n  listen: %s\n  redis: true\n  timeout: 3000\n  server_retry_timeout: 200\n  servers:\n   - %s:1\n"+
			"m:\n  listen: %s\n  timeout: 3000\n  server_retry_timeout: 200\n  servers:\n   - %s:1\n", addrs[3], d.redisAddr, addrs[4], d.memcacheAddr)
		if err := os.WriteFile(d.conf, []byte(conf), 0o644); err != nil {
			return err
		}
		_, rport, _ := net.SplitHostPort(d.redisAddr)
		_, mport, _ := net.SplitHostPort(d.memcacheAddr)
		d.redisArgs = []string{f.p.redis, "--port", rport, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", d.root}
		d.memcache = exec.Command(f.p.memcached, "-l", "127.0.0.1", "-p", mport, "-U", "0", "-u", "nobody")
		f.hosts = append(f.hosts, d)
		if err := d.memcache.Start(); err != nil {
			return fmt.Errorf("%s: start memcached: %w", h.name, err)
		}
		if err := waitListen(ctx, d.memcacheAddr); err != nil {
			return fmt.Errorf("%s: %w", h.name, err)
		}
		if err := d.startRedis(ctx); err != nil {
			return err
		}
	}
	return nil
}

// stop ends every process the demo started: backends, and the proxies deployed under the
// hosts' roots.
func (f *demoFleet) stop(dir string) {
	for _, h := range f.hosts {
		for _, c := range []*exec.Cmd{h.redis, h.memcache} {
			if c != nil && c.Process != nil {
				c.Process.Kill()
				c.Wait()
			}
		}
	}
	prockill.Under(filepath.Join(dir, "hosts"))
}

func (f *demoFleet) inventory() string {
	var b strings.Builder
	b.WriteString("hosts:\n")
	for _, h := range f.hosts {
		fmt.Fprintf(&b, "  - name: %s\n    environment: %s\n    stats: %s\n    config: %s\n    transport: {type: local}\n"+
			"    deploy:\n      root: %s\n      restart: pidfile\n      user: nutcracker\n", h.name, h.env, h.stats, h.conf, filepath.Join(h.root, "nc"))
	}
	return b.String()
}

// demoDownloads serves the .deb files as the release assets of the mirror, with SHA256SUMS.
func demoDownloads(bin string) (http.Handler, error) {
	var sums strings.Builder
	files := map[string]string{}
	for _, v := range []string{"0.4.1", "0.5.0"} {
		name := "nutcracker_" + v + ".deb"
		data, err := os.ReadFile(filepath.Join(bin, name))
		if err != nil {
			return nil, err
		}
		sum := sha256.Sum256(data)
		fmt.Fprintf(&sums, "%s  %s\n", hex.EncodeToString(sum[:]), name)
		files["/download/"+name] = filepath.Join(bin, name)
	}
	list := sums.String()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/download/SHA256SUMS" {
			w.Write([]byte(list))
			return
		}
		if p, ok := files[r.URL.Path]; ok {
			http.ServeFile(w, r, p)
			return
		}
		http.NotFound(w, r)
	}), nil
}

// demoFleetConfig is the configuration of the second act: the fleet, the artifacts from the
// mirror's release assets, the rollout policy, and the patch windows.
func demoFleetConfig(inventory, mirror string) string {
	return fmt.Sprintf(`inventory:
  file: %s
artifacts:
  sources:
    - kind: deb
      url: %sdownload/nutcracker_{{.Version}}.deb
      sha256sums: %sdownload/SHA256SUMS
rollouts:
  default_policy: demo
  soak_interval: 200ms
  policies:
    - name: demo
      waves:
        - name: staging
          environments: [staging]
          soak: 3s
        - name: production
          environments: [production]
          max_parallel: 1
          max_failures: 1
          soak: 2s
patching:
  reminder: 0s
  policies:
    - name: monthly
      min_release_age: 72h
      require_approval: true
      security:
        min_severity: critical
  windows:
    - name: staging
      recurrence: second tuesday at 02:00
      time_zone: Europe/Berlin
      duration: 4h
      cutoff: 1h
      kind: staging
    - name: production
      recurrence: second tuesday at 02:00
      offset_days: 2
      time_zone: Europe/Berlin
      duration: 4h
      cutoff: 1h
      kind: production
`, inventory, mirror, mirror)
}

// installFleet puts 0.4.1 on every host, the way an operator would, one host after the
// other.
func (c *demoCmd) installFleet(ctx context.Context, fleet *demoFleet) error {
	fmt.Fprintf(c.env.Out, "\nsetting up %d local hosts, each a real nutcracker 0.4.1 in front of its own redis and memcached\n", len(fleet.hosts))
	for _, h := range fleet.hosts {
		var rep app.OpReply
		err := c.env.call(ctx, "deploy", app.DeployArgs{Host: h.name, Version: "0.4.1"}, &rep)
		if err == nil && rep.Error != "" {
			err = errors.New(rep.Error)
		}
		if err != nil {
			return fmt.Errorf("install 0.4.1 on %s: %w", h.name, err)
		}
	}
	return nil
}

// fleetAct runs the main job: hosts on 0.4.1 shown exposed, the staging window (demo clock),
// approval, production in waves with one host failing its smoke test and rolling back, then
// the whole rollout undone.
func (c *demoCmd) fleetAct(ctx context.Context, fleet *demoFleet, clock *patching.JumpClock, step func(string, Command) error) error {
	out := c.env.Out
	if err := step("inventory --poll", &inventoryCmd{env: c.env, poll: true}); err != nil {
		return err
	}
	if err := step("windows", newWindowsCmd(c.env, flag.NewFlagSet("windows", flag.ContinueOnError))); err != nil {
		return err
	}
	var rep app.WindowsReport
	if err := c.env.call(ctx, "windows", app.WindowsArgs{Next: 10}, &rep); err != nil {
		return err
	}
	var staging, production time.Time
	for _, e := range rep.Windows {
		switch {
		case e.Name == "staging" && staging.IsZero():
			staging = e.OpensUTC
		case e.Name == "production" && production.IsZero() && !staging.IsZero():
			production = e.OpensUTC
		}
	}
	tick := func() error { return c.env.call(ctx, "patching.tick", nil, nil) }
	fmt.Fprintf(out, "\ndemo clock: jumping to %s, when the staging window opens (the daemon's clock; nothing else is faked)\n", staging.Format(time.RFC3339))
	clock.Set(staging)
	if err := tick(); err != nil {
		return err
	}
	id, err := c.scheduledRollout(ctx)
	if err != nil {
		return err
	}
	v, err := c.awaitRollout(ctx, id, "staging patched, smoke-tested and soaked", func(v waves.View) bool {
		return v.AwaitingPromote || waves.Terminal(v.State)
	})
	if err != nil {
		return err
	}
	if err := step("rollout status "+id, &rolloutStatusCmd{env: c.env, id: id, every: time.Second}); err != nil && !errors.Is(err, errFailed) {
		return err
	}
	if v.State != waves.StatePaused {
		return fmt.Errorf("rollout %s is %s (%s) after staging", id, v.State, v.Reason)
	}
	if err := step("windows", newWindowsCmd(c.env, flag.NewFlagSet("windows", flag.ContinueOnError))); err != nil {
		return err
	}
	approve := newApproveCmd(c.env, nil).(*argCall[app.PatchRollout])
	approve.arg = id
	if err := step("rollout approve "+id, approve); err != nil {
		return err
	}
	broken := fleet.hosts[len(fleet.hosts)-1]
	fmt.Fprintf(out, "\n%s's redis goes down: its smoke test will fail\n", broken.name)
	broken.redis.Process.Kill()
	broken.redis.Wait()
	// The operator repairs the backend once the new build failed its smoke test, so the
	// build that ran before proves itself again when the host rolls back.
	repaired := make(chan error, 1)
	go func() { repaired <- c.repairAfterSmoke(ctx, broken) }()
	fmt.Fprintf(out, "demo clock: jumping to %s, when the production window opens\n", production.Format(time.RFC3339))
	clock.Set(production)
	if err := tick(); err != nil {
		return err
	}
	if _, err := c.awaitRollout(ctx, id, "production waves", func(v waves.View) bool { return waves.Terminal(v.State) || v.State == waves.StatePaused }); err != nil {
		return err
	}
	if err := <-repaired; err != nil {
		return err
	}
	if err := step("rollout status "+id, &rolloutStatusCmd{env: c.env, id: id, every: time.Second}); err != nil && !errors.Is(err, errFailed) {
		return err
	}
	if err := step("history --host "+broken.name, &query[app.HostArgs, []rollout.Operation]{env: c.env, method: "history",
		args: app.HostArgs{Host: broken.name}, table: historyTable}); err != nil {
		return err
	}
	if err := step("rollback --rollout "+id, &rolloutControlCmd{env: c.env, method: "rollout.rollback", args: app.RolloutArgs{ID: id}}); err != nil {
		return err
	}
	if _, err := c.awaitRollout(ctx, id, "every host back on 0.4.1", func(v waves.View) bool { return v.State == waves.StateRolledBack || v.State == waves.StateFailed }); err != nil {
		return err
	}
	return step("inventory --poll", &inventoryCmd{env: c.env, poll: true})
}

// repairAfterSmoke watches the host's deploy of 0.5.0 and restarts its redis as soon as the
// smoke test has failed.
func (c *demoCmd) repairAfterSmoke(ctx context.Context, h *demoHost) error {
	deadline := time.Now().Add(5 * time.Minute)
	for {
		var ops []rollout.Operation
		if err := c.env.call(ctx, "history", app.HostArgs{Host: h.name}, &ops); err != nil {
			return err
		}
		for _, op := range ops {
			if op.ToVersion != "0.5.0" {
				continue
			}
			for _, st := range op.Steps {
				if st.Step == rollout.StepSmoke && st.Error != "" {
					fmt.Fprintf(c.env.Out, "  %s: smoke test of 0.5.0 failed; repairing its redis so the rollback can prove 0.4.1 again\n", h.name)
					return h.startRedis(ctx)
				}
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s: its deploy of 0.5.0 never failed its smoke test", h.name)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// scheduledRollout waits for the rollout the scheduler started.
func (c *demoCmd) scheduledRollout(ctx context.Context) (string, error) {
	deadline := time.Now().Add(time.Minute)
	for {
		var rep app.WindowsReport
		if err := c.env.call(ctx, "windows", app.WindowsArgs{Next: 1}, &rep); err != nil {
			return "", err
		}
		if len(rep.Rollouts) > 0 {
			fmt.Fprintf(c.env.Out, "the daemon started rollout %s of %s in the staging window\n", rep.Rollouts[0].Rollout, rep.Rollouts[0].Version)
			return rep.Rollouts[0].Rollout, nil
		}
		if time.Now().After(deadline) {
			return "", errors.New("the scheduler started no rollout in the staging window")
		}
		select {
		case <-ctx.Done():
			return "", ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// awaitRollout polls a rollout until done says so, printing its progress line as it changes.
func (c *demoCmd) awaitRollout(ctx context.Context, id, what string, done func(waves.View) bool) (waves.View, error) {
	fmt.Fprintf(c.env.Out, "waiting: %s\n", what)
	deadline := time.Now().Add(5 * time.Minute)
	last := ""
	for {
		var v waves.View
		if err := c.env.call(ctx, "rollout.status", app.RolloutArgs{ID: id}, &v); err != nil {
			return v, err
		}
		if line := progressLine(v); line != last {
			fmt.Fprintf(c.env.Out, "  %s\n", line)
			last = line
		}
		if done(v) {
			return v, nil
		}
		if v.Settled() { // nothing will change without someone acting: say so now
			return v, fmt.Errorf("rollout %s: %s: it stopped %s instead (%s)", id, what, v.State, v.Reason)
		}
		if time.Now().After(deadline) {
			return v, fmt.Errorf("rollout %s: %s: not reached in 5 minutes (%s: %s)", id, what, v.State, v.Reason)
		}
		select {
		case <-ctx.Done():
			return v, ctx.Err()
		case <-time.After(300 * time.Millisecond):
		}
	}
}
