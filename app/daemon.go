package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"time"

	"github.com/robfig/cron/v3"

	"github.com/patchctl/patchctl/config"
)

// Serve runs the daemon until ctx is cancelled: the unix-socket API, the metrics endpoint,
// the scheduled jobs and the background loops. Jobs marked atStart run once at once. ready,
// if not nil, is called with the addresses once everything listens (tests and the demo use
// it). Jobs, loops and calls get a context cancelled when ctx is, so a slow poll ends
// promptly; Close waits for them before closing the store.
func (a *App) Serve(ctx context.Context, ready func(Addrs)) error {
	cfg := a.config()
	sock, err := listenSocket(ctx, cfg)
	if err != nil {
		return err
	}
	runCtx, cancelRuns := context.WithCancel(ctx)
	defer cancelRuns()
	api := &http.Server{Handler: a.apiHandler(), ReadHeaderTimeout: 10 * time.Second,
		BaseContext: func(net.Listener) context.Context { return runCtx },
		ConnContext: func(ctx context.Context, c net.Conn) context.Context { return withCaller(ctx, peerCaller(c)) }}
	var addrs = Addrs{Socket: cfg.Socket}

	var metrics *http.Server
	var metricsLn net.Listener
	if cfg.Metrics.Listen != "" {
		metricsLn, err = (&net.ListenConfig{}).Listen(ctx, "tcp", cfg.Metrics.Listen)
		if err != nil {
			sock.Close()
			return fmt.Errorf("metrics listen %s: %w", cfg.Metrics.Listen, err)
		}
		mux := http.NewServeMux()
		mux.Handle("/metrics", a.reg.Handler())
		mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { w.Write([]byte("ok\n")) })
		metrics = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
		addrs.Metrics = metricsLn.Addr().String()
	}

	sched := cron.New()
	a.mu.Lock()
	a.listener, a.cron, a.runCtx = cfg.Socket, sched, runCtx
	err = a.scheduleLocked()
	a.mu.Unlock()
	if err != nil {
		sock.Close()
		if metricsLn != nil {
			metricsLn.Close()
		}
		return err
	}
	defer func() {
		a.mu.Lock()
		a.listener, a.cron, a.entries = "", nil, nil
		a.mu.Unlock()
	}()

	errc := make(chan error, 2)
	go func() { errc <- serveHTTP(api, sock) }()
	if metrics != nil {
		go func() { errc <- serveHTTP(metrics, metricsLn) }()
	}
	sched.Start()
	a.startLoops(runCtx)
	a.runAtStart(runCtx)
	a.log.Info("daemon started", "socket", addrs.Socket, "metrics", addrs.Metrics, "store", a.store.Path(), "version", Version)
	if ready != nil {
		ready(addrs)
	}

	var serveErr error
	for done := false; !done; {
		select {
		case <-ctx.Done():
			done = true
		case serveErr = <-errc:
			done = true
		case <-a.reload:
			if res, err := a.Reload(runCtx); err != nil {
				a.log.Error("reload refused; the previous configuration stays", "err", err)
			} else {
				a.log.Info("configuration reloaded", "config", res.Config, "hosts", res.Hosts)
			}
		}
	}
	a.log.Info("daemon stopping")
	cancelRuns()
	shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), a.config().Shutdown)
	defer cancel()
	sched.Stop()
	// Operations end first (a deploy in its smoke test finishes or rolls back), so the
	// clients following them see their done event before the socket closes.
	a.ops.Shutdown(shutdownCtx)
	_ = api.Shutdown(shutdownCtx)
	if metrics != nil {
		_ = metrics.Shutdown(shutdownCtx)
	}
	if !a.running.wait(shutdownCtx) {
		a.log.Warn("jobs still running at the shutdown timeout; the store closes once they return")
	}
	os.Remove(cfg.Socket)
	return serveErr
}

// scheduleLocked (re)builds the cron entries from a.jobs; callers hold a.mu. Each job is
// wrapped once, so a run at start and a cron tick never overlap.
func (a *App) scheduleLocked() error {
	if a.cron == nil {
		return nil
	}
	for id := range a.entries {
		a.cron.Remove(id)
	}
	a.entries = map[cron.EntryID]string{}
	chain := cron.NewChain(cron.Recover(cronLogger{a.log}), cron.SkipIfStillRunning(cronLogger{a.log}))
	for i := range a.jobs {
		j := &a.jobs[i]
		if j.wrapped == nil {
			run := a.jobFunc(j)
			j.wrapped = chain.Then(cron.FuncJob(func() { run(false) }))
		}
		if j.schedule == "" {
			continue
		}
		s, err := config.ParseSchedule(j.schedule)
		if err != nil {
			return fmt.Errorf("job %s: %w", j.name, err)
		}
		a.entries[a.cron.Schedule(s, j.wrapped)] = j.name
	}
	return nil
}

// runAtStart runs the jobs marked atStart once, now: the daemon polls and takes
// inventory from its first minute rather than at the first cron tick. A tick during that
// run waits for it: every job serialises its own runs.
func (a *App) runAtStart(ctx context.Context) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for i := range a.jobs {
		if j := &a.jobs[i]; j.atStart && j.schedule != "" {
			// Counted before it starts: a stop right now still waits for it.
			done, ok := a.running.add(ctx)
			if !ok {
				return
			}
			go func() {
				defer done()
				a.jobFunc(j)(true)
			}()
		}
	}
}

// Addrs are where a running daemon listens.
type Addrs struct {
	Socket  string
	Metrics string
}

func serveHTTP(s *http.Server, l net.Listener) error {
	if err := s.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// jobFunc wraps a job with jitter (on cron ticks), the daemon's run context and a log
// line per failure. The job's settings are read at each run: a reload may change them.
func (a *App) jobFunc(j *job) func(atStart bool) {
	return func(atStart bool) {
		a.mu.Lock()
		ctx, jitter, name, run := a.runCtx, j.jitter, j.name, j.run
		a.mu.Unlock()
		if ctx == nil {
			return
		}
		done, ok := a.running.add(ctx)
		if !ok {
			return
		}
		defer done()
		if jitter > 0 && !atStart {
			select {
			case <-time.After(rand.N(jitter)):
			case <-ctx.Done():
				return
			}
		}
		if err := run(ctx); err != nil && ctx.Err() == nil {
			a.log.Error("scheduled job failed", "job", name, "err", err)
		}
	}
}

// nextRuns pairs each cron entry with its job by entry id: cron sorts its entries by
// next run time, so their order says nothing about which job they belong to.
func (a *App) nextRuns() map[string]string {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.cron == nil {
		return nil
	}
	out := map[string]string{}
	for _, e := range a.cron.Entries() {
		if name, ok := a.entries[e.ID]; ok {
			out[name] = e.Next.Format(time.RFC3339)
		}
	}
	return out
}

// listenSocket creates the API socket, readable only by its owner, or by a configured group.
// A socket file left by a crashed daemon is removed: holding the store lock proves no other
// daemon is serving it.
func listenSocket(ctx context.Context, cfg *config.Config) (net.Listener, error) {
	if err := os.MkdirAll(filepath.Dir(cfg.Socket), 0o750); err != nil {
		return nil, fmt.Errorf("socket dir: %w", err)
	}
	if err := os.Remove(cfg.Socket); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("remove stale socket: %w", err)
	}
	l, err := (&net.ListenConfig{}).Listen(ctx, "unix", cfg.Socket)
	if err != nil {
		return nil, fmt.Errorf("listen %s: %w", cfg.Socket, err)
	}
	mode := os.FileMode(0o600)
	if cfg.SocketGroup != "" {
		g, err := user.LookupGroup(cfg.SocketGroup)
		if err != nil {
			l.Close()
			return nil, fmt.Errorf("socket_group: %w", err)
		}
		gid, _ := strconv.Atoi(g.Gid)
		if err := os.Chown(cfg.Socket, -1, gid); err != nil {
			l.Close()
			return nil, fmt.Errorf("socket_group: %w", err)
		}
		mode = 0o660
	}
	if err := os.Chmod(cfg.Socket, mode); err != nil {
		l.Close()
		return nil, fmt.Errorf("socket mode: %w", err)
	}
	return l, nil
}

// cronLogger adapts slog to robfig/cron's logger.
type cronLogger struct{ log *slog.Logger }

func (c cronLogger) Info(msg string, kv ...any) { c.log.Info("cron: "+msg, kv...) }
func (c cronLogger) Error(err error, msg string, kv ...any) {
	c.log.Error("cron: "+msg, append(kv, "err", err)...)
}
