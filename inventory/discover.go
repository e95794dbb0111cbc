package inventory

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"path"
	"sync"
	"time"

	"github.com/patchctl/patchctl/internal/jsonfmt"
	"github.com/patchctl/patchctl/nutcracker"
	"github.com/patchctl/patchctl/transport"
)

// Runner runs a command on a host; transport.Local and transport.SSH implement it.
type Runner interface {
	Run(ctx context.Context, argv []string, stdin io.Reader) (transport.Result, error)
	Close() error
}

// DialFunc opens a Runner for a host's transport.
type DialFunc func(ctx context.Context, spec transport.Spec) (Runner, error)

// Source says where an observed version came from.
type Source string

// Sources of a version.
const (
	SourceStats  Source = "stats"  // the running process, from its stats port
	SourceBinary Source = "binary" // the installed binary, from `nutcracker -V`
)

// Observation is what one discovery pass learned about one host.
type Observation struct {
	Host        string          `json:"host"`
	Environment string          `json:"environment"`
	At          time.Time       `json:"at"`        // when the pass looked
	Answering   bool            `json:"answering"` // the stats port answered
	Version     string          `json:"version,omitempty"`
	Source      Source          `json:"source,omitempty"`
	Uptime      jsonfmt.Seconds `json:"uptime_seconds,omitempty"`
	Pools       []PoolSummary   `json:"pools,omitempty"`
	Error       string          `json:"error,omitempty"` // why the stats port or -V failed
}

// PoolSummary is the part of a pool's stats the inventory keeps.
type PoolSummary struct {
	Name              string `json:"name"`
	Servers           int    `json:"servers"`
	ClientConnections int64  `json:"client_connections"`
	ServerEjects      int64  `json:"server_ejects"`
}

// Discoverer finds the version every host runs, without an agent: it reads each stats port
// and, where that fails, runs `<binary> -V` through the host's transport.
type Discoverer struct {
	// Dial opens a host's transport for the -V fallback; nil disables the fallback.
	Dial DialFunc
	// Concurrency bounds the stats ports read at once (default 256).
	Concurrency int
	// ProbeConcurrency bounds the -V fallbacks run at once (default 8).
	ProbeConcurrency int
	// StatsTimeout bounds one stats read, connect included (default 2s).
	StatsTimeout time.Duration
	// ProbeTimeout bounds one -V fallback, dial included (default 10s).
	ProbeTimeout time.Duration
	Logger       *slog.Logger
}

func (d *Discoverer) defaults() (conc, probeConc int, statsTO, probeTO time.Duration, log *slog.Logger) {
	conc, probeConc, statsTO, probeTO, log = d.Concurrency, d.ProbeConcurrency, d.StatsTimeout, d.ProbeTimeout, d.Logger
	if conc <= 0 {
		conc = 256
	}
	if probeConc <= 0 {
		probeConc = 8
	}
	if statsTO <= 0 {
		statsTO = 2 * time.Second
	}
	if probeTO <= 0 {
		probeTO = 10 * time.Second
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return
}

// Discover observes every host and returns the observations in the order of hosts. It
// takes about StatsTimeout + ProbeTimeout when every host is slow, whatever their number,
// as long as the slow ones fit in Concurrency and ProbeConcurrency.
func (d *Discoverer) Discover(ctx context.Context, hosts []Host) []Observation {
	conc, probeConc, statsTO, probeTO, log := d.defaults()
	obs := make([]Observation, len(hosts))
	statsQ := make(chan int)
	probeQ := make(chan int, len(hosts))

	var statsWG, probeWG sync.WaitGroup
	for range min(conc, len(hosts)) {
		statsWG.Go(func() {
			for i := range statsQ {
				obs[i] = d.readStats(ctx, hosts[i], statsTO)
				if !obs[i].Answering {
					probeQ <- i
				}
			}
		})
	}
	for range min(probeConc, len(hosts)) {
		probeWG.Go(func() {
			for i := range probeQ {
				d.probe(ctx, hosts[i], &obs[i], probeTO)
			}
		})
	}
	for i := range hosts {
		statsQ <- i
	}
	close(statsQ)
	statsWG.Wait()
	close(probeQ)
	probeWG.Wait()

	for _, o := range obs {
		if o.Error != "" {
			log.Debug("discovery failed", "host", o.Host, "version", o.Version, "source", o.Source, "err", o.Error)
		}
	}
	return obs
}

func (d *Discoverer) readStats(ctx context.Context, h Host, timeout time.Duration) Observation {
	o := Observation{Host: h.Name, Environment: h.Environment, At: time.Now().UTC()}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	st, err := nutcracker.FetchStats(ctx, h.Stats)
	if err != nil {
		o.Error = err.Error()
		return o
	}
	o.Answering, o.Version, o.Source, o.Uptime = true, st.Version, SourceStats, jsonfmt.Seconds(st.UptimeDuration())
	for _, p := range st.Pools {
		o.Pools = append(o.Pools, PoolSummary{Name: p.Name, Servers: len(p.Servers),
			ClientConnections: p.ClientConnections, ServerEjects: p.ServerEjects})
	}
	return o
}

// errNoDial reports a host whose stats port failed when no transport is configured.
var errNoDial = errors.New("no transport to run -V")

// probe runs `<binary> -V` on the host and records the installed version.
func (d *Discoverer) probe(ctx context.Context, h Host, o *Observation, timeout time.Duration) {
	v, err := d.binaryVersion(ctx, h, timeout)
	if err != nil {
		o.Error += "; " + err.Error()
		return
	}
	o.Version, o.Source = v, SourceBinary
}

func (d *Discoverer) binaryVersion(ctx context.Context, h Host, timeout time.Duration) (string, error) {
	if d.Dial == nil || h.Transport == nil {
		return "", errNoDial
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	r, err := d.Dial(ctx, *h.Transport)
	if err != nil {
		return "", fmt.Errorf("dial %s transport: %w", h.Transport.Kind, err)
	}
	defer r.Close()
	bin := h.Binary
	if h.Deploy != nil {
		// A managed host runs the build its current symlink names, whatever else is on PATH.
		bin = path.Join(h.Deploy.Root, "current")
	}
	res, err := r.Run(ctx, []string{bin, "-V"}, nil)
	if err != nil {
		return "", fmt.Errorf("run %s -V: %w", bin, err)
	}
	v, err := nutcracker.ParseVersionOutput(append(res.Stderr, res.Stdout...))
	if err != nil {
		return "", fmt.Errorf("run %s -V: %w", bin, err)
	}
	return v, nil
}
