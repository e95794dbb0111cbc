package app

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"

	"github.com/patchctl/patchctl/advisory"
	"github.com/patchctl/patchctl/config"
	"github.com/patchctl/patchctl/internal/metrics"
	"github.com/patchctl/patchctl/inventory"
	"github.com/patchctl/patchctl/notify"
	"github.com/patchctl/patchctl/store"
	"github.com/patchctl/patchctl/transport"
)

// Per-host state kinds in the store.
const (
	hostExposure = "exposure"        // inventory.Exposure of the latest pass
	hostTrack    = "inventory-state" // inventory.State for change detection
	// HostExpectedVersion is the version a deploy is installing on a host; the inventory
	// does not report reaching it as an unexpected change.
	HostExpectedVersion = "expected-version"
)

// FleetReport is what `patchctl inventory` shows.
type FleetReport struct {
	Hosts        []inventory.Exposure           `json:"hosts"`
	Environments []inventory.EnvironmentSummary `json:"environments"`
}

type fleet struct {
	a       *App
	state   atomic.Pointer[fleetState] // replaced by a reload
	sem     chan struct{}              // one pass at a time
	hosts   *metrics.GaugeVec
	exposed *metrics.GaugeVec
	polls   *metrics.CounterVec
}

// fleetState is what a pass works from; a pass uses one state from start to end.
type fleetState struct {
	inv      *inventory.Inventory // nil without an inventory file
	feed     *advisory.Feed
	discover *inventory.Discoverer
}

// loadFleet reads the advisory feeds and the inventory file of cfg.
func (a *App) loadFleet(cfg *config.Config) (*fleetState, error) {
	ic := cfg.Inventory
	feed, err := advisory.Load(ic.Advisories...)
	if err != nil {
		return nil, fmt.Errorf("advisory feed: %w", err)
	}
	st := &fleetState{feed: feed}
	if ic.File != "" {
		if st.inv, err = inventory.Load(ic.File); err != nil {
			return nil, err
		}
	}
	st.discover = &inventory.Discoverer{
		Dial:         func(ctx context.Context, s transport.Spec) (inventory.Runner, error) { return transport.Dial(ctx, s) },
		Concurrency:  ic.Concurrency,
		StatsTimeout: ic.StatsTimeout,
		Logger:       a.log.With("component", "inventory"),
	}
	return st, nil
}

func setupInventory(_ context.Context, a *App) error {
	cfg := a.config()
	st, err := a.loadFleet(cfg)
	if err != nil {
		return err
	}
	f := &fleet{a: a, sem: make(chan struct{}, 1)}
	a.fleet = f
	f.use(st)
	f.hosts = metrics.NewGaugeVec("patchctl_hosts", "Inventoried hosts by environment and running version (\"unknown\" when unreadable).", "environment", "version")
	f.exposed = metrics.NewGaugeVec("patchctl_hosts_exposed", "Hosts affected by known advisories, by the highest severity.", "environment", "severity")
	f.polls = metrics.NewCounterVec("patchctl_inventory_polls_total", "Host version reads by outcome (answering, down).", "outcome")
	a.reg.MustRegister(f.hosts, f.exposed, f.polls)

	a.addJob(job{name: "inventory", schedule: inventorySchedule(cfg), atStart: true, run: func(ctx context.Context) error {
		_, err := f.poll(ctx)
		return err
	}})
	a.addReloader(func(_ context.Context, cfg *config.Config) (func(), error) {
		st, err := a.loadFleet(cfg)
		if err != nil {
			return nil, err
		}
		return func() {
			f.use(st)
			a.setSchedule("inventory", inventorySchedule(cfg), 0)
		}, nil
	})
	handle(a, "inventory.poll", func(ctx context.Context, _ struct{}) (any, error) {
		if f.state.Load().inv == nil {
			return nil, &Error{Kind: KindUsage, Msg: "no inventory configured (inventory.file in patchctl.yml)"}
		}
		return f.poll(ctx)
	})
	handle(a, "inventory", func(ctx context.Context, _ struct{}) (any, error) { return f.report(ctx) })
	return nil
}

// inventorySchedule is "" (no job) without an inventory file.
func inventorySchedule(cfg *config.Config) string {
	if cfg.Inventory.File == "" {
		return ""
	}
	return cfg.Inventory.Schedule
}

// use switches to a loaded state; the App's inventory follows.
func (f *fleet) use(st *fleetState) {
	f.state.Store(st)
	f.a.inv.Store(st.inv)
}

// poll reads every host, assesses it, and records changes with one alert per change.
// Passes are serialised (a scheduled and a manual one would otherwise both see, and
// alert, the same change); a caller waits for the running pass or gives up with ctx.
func (f *fleet) poll(ctx context.Context) (FleetReport, error) {
	select {
	case f.sem <- struct{}{}:
	case <-ctx.Done():
		return FleetReport{}, ctx.Err()
	}
	defer func() { <-f.sem }()
	st := f.state.Load()
	if st.inv == nil {
		return FleetReport{}, nil
	}
	obs := st.discover.Discover(ctx, st.inv.Hosts)
	if err := ctx.Err(); err != nil {
		return FleetReport{}, err
	}
	return f.record(ctx, st, obs)
}

// record assesses one pass's observations and stores the hosts' state, the changes and
// their alerts.
func (f *fleet) record(ctx context.Context, st *fleetState, obs []inventory.Observation) (FleetReport, error) {
	a := f.a
	var releases []inventory.Release
	feed := st.feed
	var prev = map[string]inventory.State{}
	expected := map[string]string{}
	err := a.store.View(ctx, func(tx *store.Tx) error {
		source := ""
		if srcs := a.config().Tracker.Sources; len(srcs) > 0 {
			source = srcs[0].Name()
		}
		rs, err := tx.Releases(source)
		if err != nil {
			return err
		}
		for _, r := range rs {
			releases = append(releases, inventory.Release{Version: r.Version, Prerelease: r.Prerelease, Published: r.PublishedAt})
		}
		stored, err := tx.Advisories(source)
		if err != nil {
			return err
		}
		var extra []advisory.Advisory
		for _, sa := range stored {
			if !sa.WithdrawnAt.IsZero() {
				continue
			}
			conv, err := advisory.FromGitHub(advisory.GitHubAdvisory{GHSAID: sa.ID, CVEID: sa.CVE, Summary: sa.Summary,
				Severity: sa.Severity, HTMLURL: sa.URL, PublishedAt: sa.PublishedAt,
				Vulnerabilities: []advisory.GitHubVulnerability{{VulnerableVersionRange: sa.VulnerableRange, PatchedVersions: sa.PatchedVersion}}})
			if err != nil {
				a.log.Warn("advisory not usable for matching", "id", sa.ID, "err", err)
				continue
			}
			extra = append(extra, conv...)
		}
		if len(extra) > 0 {
			gh, err := advisory.New(extra...)
			if err != nil {
				return err
			}
			feed = feed.Merge(gh)
		}
		for _, h := range st.inv.Hosts {
			var st inventory.State
			if ok, err := tx.Host(hostTrack, h.Name, &st); err != nil {
				return err
			} else if ok {
				prev[h.Name] = st
			}
			var v string
			if ok, err := tx.Host(HostExpectedVersion, h.Name, &v); err != nil {
				return err
			} else if ok {
				expected[h.Name] = v
			}
		}
		return nil
	})
	if err != nil {
		return FleetReport{}, err
	}
	assessor, err := inventory.NewAssessor(feed, releases)
	if err != nil {
		return FleetReport{}, err
	}
	exps := assessor.AssessAll(obs, a.now())
	next, events := inventory.Track(prev, exps, expected)

	err = a.store.Update(ctx, func(tx *store.Tx) error {
		for _, e := range exps {
			if err := tx.PutHost(hostExposure, e.Host, e); err != nil {
				return err
			}
			// A deploy's expected version is used up once the host is seen running it: a
			// later change to that version would be unexpected again.
			if v, ok := expected[e.Host]; ok && e.Version == v {
				if err := tx.DeleteHost(HostExpectedVersion, e.Host); err != nil {
					return err
				}
			}
		}
		for host, st := range next {
			if err := tx.PutHost(hostTrack, host, st); err != nil {
				return err
			}
		}
		for _, ev := range events {
			msg := inventoryMessage(ev)
			env := notify.Envelope{Kind: "inventory." + string(ev.Kind), Message: &msg}
			added, err := notify.Enqueue(tx, inventoryKey(prev[ev.Host], ev), env)
			if err != nil {
				return err
			}
			if !added {
				continue
			}
			if _, err := tx.AppendEvent(store.Event{Kind: "inventory." + string(ev.Kind), Subject: ev.Host, Message: msg.Title}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return FleetReport{}, err
	}
	f.observe(exps)
	if len(events) > 0 {
		a.wake()
	}
	return FleetReport{Hosts: exps, Environments: inventory.Summarize(exps)}, nil
}

// inventoryKey identifies one change of one host: the host, how many changes it had
// before, and the change itself. Two passes that saw the same change from the same state
// make the same key and alert once; the same change happening again later is new.
func inventoryKey(prev inventory.State, ev inventory.Event) string {
	detail := ""
	switch ev.Kind {
	case inventory.VersionChanged:
		detail = ev.From + "->" + ev.To
	case inventory.BecameExposed:
		detail = strings.Join(ev.Advisories, ",")
	}
	return fmt.Sprintf("inventory:%s:%d:%s:%s", ev.Host, prev.Changes, ev.Kind, detail)
}

func (f *fleet) observe(exps []inventory.Exposure) {
	f.hosts.Reset()
	f.exposed.Reset()
	for _, e := range exps {
		v := e.Version
		if v == "" {
			v = "unknown"
		}
		f.hosts.WithLabelValues(e.Environment, v).Inc()
		outcome := "answering"
		if !e.Answering {
			outcome = "down"
		}
		f.polls.WithLabelValues(outcome).Inc()
		if e.Exposed() {
			f.exposed.WithLabelValues(e.Environment, e.MaxSeverity.String()).Inc()
		}
	}
}

func (f *fleet) report(ctx context.Context) (FleetReport, error) {
	var rep FleetReport
	err := f.a.store.View(ctx, func(tx *store.Tx) error {
		names, err := tx.HostNames(hostExposure)
		if err != nil {
			return err
		}
		for _, n := range names {
			if inv := f.state.Load().inv; inv != nil {
				if _, ok := inv.Host(n); !ok {
					continue // removed from the inventory
				}
			}
			var e inventory.Exposure
			if _, err := tx.Host(hostExposure, n, &e); err != nil {
				return err
			}
			rep.Hosts = append(rep.Hosts, e)
		}
		return nil
	})
	rep.Environments = inventory.Summarize(rep.Hosts)
	return rep, err
}

func inventoryMessage(ev inventory.Event) notify.Message {
	m := notify.Message{Kind: notify.KindExposure, Severity: notify.SeverityWarning, Date: ev.At,
		Fields: []notify.Field{{Key: "Host", Value: ev.Host}, {Key: "Environment", Value: ev.Environment}}}
	switch ev.Kind {
	case inventory.BecameExposed:
		m.Security = true
		m.Title = fmt.Sprintf("%s is exposed to %d advisories", ev.Host, len(ev.Advisories))
		m.Summary = "Affected by: " + strings.Join(ev.Advisories, ", ") + ". Highest severity: " + ev.Severity.String() + "."
		m.AdvisorySeverity = ev.Severity.String()
		if ev.Severity >= advisory.SeverityHigh {
			m.Severity = notify.SeverityCritical
		}
	case inventory.VersionChanged:
		m.Title = fmt.Sprintf("%s changed version unexpectedly: %s → %s", ev.Host, ev.From, ev.To)
		m.Summary = "No patchctl deploy was installing this version."
		m.Version = ev.To
	case inventory.StoppedAnswering:
		m.Title = fmt.Sprintf("%s stopped answering", ev.Host)
		m.Summary = ev.Error
		m.Severity = notify.SeverityCritical
	case inventory.CameBack:
		m.Title = fmt.Sprintf("%s answers again", ev.Host)
		m.Summary = "The host's stats port or nutcracker binary answers again."
		m.Severity = notify.SeverityInfo
	default:
		m.Title = fmt.Sprintf("%s: %s", ev.Host, ev.Kind)
	}
	return m
}
