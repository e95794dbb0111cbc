package config

import (
	"fmt"
	"path"
	"strconv"
	"strings"
	"time"
)

// Rollouts are the fleet rollout policies (`patchctl rollout`).
type Rollouts struct {
	// DefaultPolicy is used when a rollout names none.
	DefaultPolicy string `yaml:"default_policy" json:"default_policy"`
	// SoakInterval is how often a soaking wave's stats ports are read.
	SoakInterval time.Duration   `yaml:"soak_interval" json:"soak_interval"`
	Policies     []RolloutPolicy `yaml:"policies" json:"policies"`
}

// RolloutPolicy says how a rollout moves through the fleet.
type RolloutPolicy struct {
	Name string `yaml:"name" json:"name"`
	// OnFailure is what happens when a wave has more failed hosts than it allows, or fails
	// its soak gate: pause (default) or abort.
	OnFailure string `yaml:"on_failure" json:"on_failure"`
	// PrecheckFailure is what a host that fails the pre-checks does to the rollout:
	// refuse (the rollout does not start; default) or exclude (the host is left out).
	PrecheckFailure string         `yaml:"precheck_failure" json:"precheck_failure"`
	Hooks           Hooks          `yaml:"hooks" json:"hooks"`
	SoakThresholds  SoakThresholds `yaml:"soak_thresholds" json:"soak_thresholds"`
	Waves           []Wave         `yaml:"waves" json:"waves"`
}

// Hooks are commands run on each host, through its transport, around its deploy.
type Hooks struct {
	Before  []string      `yaml:"before" json:"before"`
	After   []string      `yaml:"after" json:"after"`
	Timeout time.Duration `yaml:"timeout" json:"timeout"`
}

// SoakThresholds are how much each error counter may rise, summed over a wave's hosts,
// between the snapshot taken before the wave and the end of its soak. Unanswered is how
// many hosts may stop answering on their stats port.
type SoakThresholds struct {
	ClientErr      int64 `yaml:"client_err" json:"client_err"`
	ServerErr      int64 `yaml:"server_err" json:"server_err"`
	ServerTimedout int64 `yaml:"server_timedout" json:"server_timedout"`
	ForwardError   int64 `yaml:"forward_error" json:"forward_error"`
	ServerEjects   int64 `yaml:"server_ejects" json:"server_ejects"`
	Unanswered     int64 `yaml:"unanswered" json:"unanswered"`
}

// Counters maps each threshold to the name of the counter it limits.
func (t SoakThresholds) Counters() map[string]int64 {
	return map[string]int64{"client_err": t.ClientErr, "server_err": t.ServerErr,
		"server_timedout": t.ServerTimedout, "forward_error": t.ForwardError, "server_ejects": t.ServerEjects}
}

// Wave is one step of a policy: which hosts, how many at once, how long to watch.
type Wave struct {
	Name string `yaml:"name" json:"name"`
	// A host belongs to the first wave whose selector matches it. A selector matches when
	// every part given matches: the environment is one of Environments, every label has
	// the value given, the name matches one of the Hosts globs.
	Environments []string          `yaml:"environments" json:"environments"`
	Labels       map[string]string `yaml:"labels" json:"labels,omitempty"`
	Hosts        []string          `yaml:"hosts" json:"hosts"`
	MaxParallel  Amount            `yaml:"max_parallel" json:"max_parallel"`
	MaxFailures  Amount            `yaml:"max_failures" json:"max_failures"`
	Soak         time.Duration     `yaml:"soak" json:"soak"`
	Promote      bool              `yaml:"promote" json:"promote"`
}

// Amount is a count ("3") or a percentage of a wave's hosts ("25%").
type Amount string

// parse returns the number and whether it is a percentage.
func (a Amount) parse() (int, bool, error) {
	s := strings.TrimSpace(string(a))
	pct := strings.HasSuffix(s, "%")
	n, err := strconv.Atoi(strings.TrimSuffix(s, "%"))
	switch {
	case err != nil:
		return 0, false, fmt.Errorf("%q is not a count or a percentage", string(a))
	case n < 0:
		return 0, false, fmt.Errorf("%q must not be negative", string(a))
	case pct && n > 100:
		return 0, false, fmt.Errorf("%q is more than 100%%", string(a))
	}
	return n, pct, nil
}

// Of resolves the amount for a wave of n hosts; a percentage rounds up when roundUp is
// set (parallelism: at least one host moves), down otherwise (failures allowed).
func (a Amount) Of(n int, roundUp bool) int {
	v, pct, err := a.parse()
	if err != nil {
		return 0
	}
	if !pct {
		return v
	}
	if roundUp {
		return (n*v + 99) / 100
	}
	return n * v / 100
}

// Selects reports whether the wave's selector matches a host.
func (w Wave) Selects(name, environment string, labels map[string]string) bool {
	if len(w.Environments) > 0 && !contains(w.Environments, environment) {
		return false
	}
	for k, v := range w.Labels {
		if labels[k] != v {
			return false
		}
	}
	if len(w.Hosts) == 0 {
		return true
	}
	for _, g := range w.Hosts {
		if ok, _ := path.Match(g, name); ok {
			return true
		}
	}
	return false
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// Policy returns a policy by name ("" = the default).
func (r Rollouts) Policy(name string) (RolloutPolicy, bool) {
	if name == "" {
		name = r.DefaultPolicy
	}
	for _, p := range r.Policies {
		if p.Name == name {
			return p, true
		}
	}
	return RolloutPolicy{}, false
}

// DefaultRolloutPolicy moves staging one host at a time and watches it for five minutes, then
// waits for a promote before production, a quarter of it at a time.
func DefaultRolloutPolicy() RolloutPolicy {
	return RolloutPolicy{
		Name: "default", OnFailure: "pause", PrecheckFailure: "refuse",
		Hooks: Hooks{Before: []string{}, After: []string{}, Timeout: 60 * time.Second},
		Waves: []Wave{
			{Name: "staging", Environments: []string{"staging"}, MaxParallel: "1", MaxFailures: "0", Soak: 5 * time.Minute, Promote: true},
			{Name: "production", Environments: []string{"production"}, MaxParallel: "25%", MaxFailures: "0", Soak: 5 * time.Minute},
		},
	}
}

func defaultRollouts() Rollouts {
	return Rollouts{DefaultPolicy: "default", SoakInterval: 5 * time.Second}
}

func (c *Config) validateRollouts(fail func(field, format string, args ...any)) {
	r := &c.Rollouts
	if len(r.Policies) == 0 {
		r.Policies = []RolloutPolicy{DefaultRolloutPolicy()}
	}
	if r.SoakInterval <= 0 {
		fail("rollouts.soak_interval", "must be positive")
	}
	names := uniqueNames{}
	for i := range r.Policies {
		p := &r.Policies[i]
		field := fmt.Sprintf("rollouts.policies[%d]", i)
		names.check(field+".name", "policy", p.Name, fail)
		if p.OnFailure == "" {
			p.OnFailure = "pause"
		}
		if p.OnFailure != "pause" && p.OnFailure != "abort" {
			fail(field+".on_failure", "must be pause or abort, not %q", p.OnFailure)
		}
		if p.PrecheckFailure == "" {
			p.PrecheckFailure = "refuse"
		}
		if p.PrecheckFailure != "refuse" && p.PrecheckFailure != "exclude" {
			fail(field+".precheck_failure", "must be refuse or exclude, not %q", p.PrecheckFailure)
		}
		if p.Hooks.Timeout == 0 {
			p.Hooks.Timeout = 60 * time.Second
		}
		if p.Hooks.Timeout < 0 {
			fail(field+".hooks.timeout", "must be positive")
		}
		for _, t := range []struct {
			name string
			v    int64
		}{{"client_err", p.SoakThresholds.ClientErr}, {"server_err", p.SoakThresholds.ServerErr},
			{"server_timedout", p.SoakThresholds.ServerTimedout}, {"forward_error", p.SoakThresholds.ForwardError},
			{"server_ejects", p.SoakThresholds.ServerEjects}, {"unanswered", p.SoakThresholds.Unanswered}} {
			if t.v < 0 {
				fail(field+".soak_thresholds."+t.name, "must not be negative")
			}
		}
		if len(p.Waves) == 0 {
			fail(field+".waves", "a policy needs at least one wave")
		}
		waves := uniqueNames{}
		for j := range p.Waves {
			w := &p.Waves[j]
			wf := fmt.Sprintf("%s.waves[%d]", field, j)
			waves.check(wf+".name", "wave", w.Name, fail)
			if w.MaxParallel == "" {
				w.MaxParallel = "1"
			}
			if w.MaxFailures == "" {
				w.MaxFailures = "0"
			}
			if n, _, err := w.MaxParallel.parse(); err != nil {
				fail(wf+".max_parallel", "%v", err)
			} else if n == 0 {
				fail(wf+".max_parallel", "must be at least 1 (or 1%%)")
			}
			if _, _, err := w.MaxFailures.parse(); err != nil {
				fail(wf+".max_failures", "%v", err)
			}
			if w.Soak < 0 {
				fail(wf+".soak", "must not be negative")
			}
			for k, g := range w.Hosts {
				if _, err := path.Match(g, ""); err != nil {
					fail(fmt.Sprintf("%s.hosts[%d]", wf, k), "bad glob %q: %v", g, err)
				}
			}
		}
	}
	if _, ok := r.Policy(""); !ok {
		fail("rollouts.default_policy", "no policy is named %q", r.DefaultPolicy)
	}
}
