package rollout

import (
	"errors"
	"fmt"
	"net"
	"strconv"

	"github.com/hashicorp/go-version"

	"github.com/patchctl/patchctl/lint"
	"github.com/patchctl/patchctl/nutconf"
)

// pool is what a smoke test needs to know about one pool of nutcracker.yml.
type pool struct {
	Name      string
	Listen    string // host:port or a unix socket path
	Port      int    // 0 for a unix socket
	Redis     bool
	RedisAuth string
}

// parsePools reads the pools of a nutcracker.yml. Judging the file is nutcracker -t's and
// the linter's job at pre-flight; this only extracts what smoke tests use.
func parsePools(filename string, data []byte) ([]pool, error) {
	cfg, err := nutconf.Parse(filename, data)
	if err != nil {
		return nil, err
	}
	var out []pool
	for _, p := range cfg.Pools {
		l, ok := p.Listen()
		if !ok {
			return nil, fmt.Errorf("%s:%s: pool %s: listen: missing or invalid", filename, p.Pos, p.Name)
		}
		np := pool{Name: p.Name, Listen: l.Host, Redis: p.Redis(), RedisAuth: p.RedisAuth()}
		if !l.Unix {
			np.Listen, np.Port = net.JoinHostPort(l.Host, strconv.Itoa(l.Port)), l.Port
		}
		out = append(out, np)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s: no pools", filename)
	}
	return out, nil
}

// Lint is the Linter patchctl uses by default: the lint package's errors for the target
// version refuse the file; warnings do not.
type Lint struct{}

var _ Linter = Lint{}

// Lint checks data for nutcracker version v.
func (Lint) Lint(filename string, data []byte, v string) error {
	target, err := lint.ParseVersion(v)
	if err != nil {
		// A build lint does not know (a fork, a newer release): judge it by its number.
		if target, err = version.NewVersion(v); err != nil {
			return fmt.Errorf("version %q: %w", v, err)
		}
	}
	var errs []error
	for _, f := range lint.Check(filename, data, target) {
		if f.Severity == lint.SeverityError {
			errs = append(errs, fmt.Errorf("%s", f))
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("%d lint error(s): %w", len(errs), errors.Join(errs...))
	}
	return nil
}
