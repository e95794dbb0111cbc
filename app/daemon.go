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

	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/robfig/cron/v3"

	"github.com/patchctl/patchctl/config"
)

// Serve runs the daemon until ctx is cancelled: the unix-socket API, the metrics endpoint,
// the scheduled jobs and the background loops. ready, if not nil, is called with the
// addresses once everything listens (tests and the demo use it).
func (a *App) Serve(ctx context.Context, ready func(Addrs)) error {
	sock, err := listenSocket(ctx, a.cfg)
	if err != nil {
		return err
	}
	api := &http.Server{Handler: a.apiHandler(), ReadHeaderTimeout: 10 * time.Second,
		ConnContext: func(ctx context.Context, c net.Conn) context.Context { return withCaller(ctx, peerCaller(c)) }}
	var addrs = Addrs{Socket: a.cfg.Socket}

	var metrics *http.Server
	var metricsLn net.Listener
	if a.cfg.Metrics.Listen != "" {
		metricsLn, err = (&net.ListenConfig{}).Listen(ctx, "tcp", a.cfg.Metrics.Listen)
		if err != nil {
			sock.Close()
			return fmt.Errorf("metrics listen %s: %w", a.cfg.Metrics.Listen, err)
		}
		mux := http.NewServeMux()
		mux.Handle("/metrics", promhttp.HandlerFor(a.reg, promhttp.HandlerOpts{}))
		mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { w.Write([]byte("ok\n")) })
		metrics = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
		addrs.Metrics = metricsLn.Addr().String()
	}

	runCtx, cancelRuns := context.WithCancel(ctx)
	defer cancelRuns()
	sched := cron.New(cron.WithChain(cron.Recover(cronLogger{a.log}), cron.SkipIfStillRunning(cronLogger{a.log})))
	for _, j := range a.jobs {
		s, err := config.ParseSchedule(j.schedule)
		if err != nil {
			sock.Close()
			return fmt.Errorf("job %s: %w", j.name, err)
		}
		sched.Schedule(s, cron.FuncJob(a.jobFunc(runCtx, j)))
	}
	a.mu.Lock()
	a.listener = a.cfg.Socket
	a.cron = sched
	a.mu.Unlock()
	defer func() {
		a.mu.Lock()
		a.listener, a.cron = "", nil
		a.mu.Unlock()
	}()

	errc := make(chan error, 2)
	go func() { errc <- serveHTTP(api, sock) }()
	if metrics != nil {
		go func() { errc <- serveHTTP(metrics, metricsLn) }()
	}
	sched.Start()
	loopsDone := a.startLoops(runCtx)
	a.log.Info("daemon started", "socket", addrs.Socket, "metrics", addrs.Metrics, "store", a.store.Path(), "version", Version)
	if ready != nil {
		ready(addrs)
	}

	var serveErr error
	select {
	case <-ctx.Done():
	case serveErr = <-errc:
	}
	a.log.Info("daemon stopping")
	cancelRuns()
	shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), a.cfg.Shutdown)
	defer cancel()
	stopped := sched.Stop()
	// Operations end first (a deploy in its smoke test finishes or rolls back), so the
	// clients following them see their done event before the socket closes.
	a.ops.Shutdown(shutdownCtx)
	_ = api.Shutdown(shutdownCtx)
	if metrics != nil {
		_ = metrics.Shutdown(shutdownCtx)
	}
	select {
	case <-stopped.Done():
	case <-shutdownCtx.Done():
		a.log.Warn("scheduled jobs did not finish before the shutdown timeout")
	}
	select {
	case <-loopsDone:
	case <-shutdownCtx.Done():
	}
	os.Remove(a.cfg.Socket)
	return serveErr
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

// jobFunc wraps a job with jitter, a context and a log line per failure.
func (a *App) jobFunc(ctx context.Context, j job) func() {
	return func() {
		if j.jitter > 0 {
			select {
			case <-time.After(rand.N(j.jitter)):
			case <-ctx.Done():
				return
			}
		}
		if err := j.run(ctx); err != nil && ctx.Err() == nil {
			a.log.Error("scheduled job failed", "job", j.name, "err", err)
		}
	}
}

func (a *App) nextRuns() map[string]string {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.cron == nil {
		return nil
	}
	out := map[string]string{}
	for i, e := range a.cron.Entries() {
		if i < len(a.jobs) {
			out[a.jobs[i].name] = e.Next.Format(time.RFC3339)
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
