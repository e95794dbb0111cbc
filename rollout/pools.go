package rollout

import (
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// pool is what a smoke test needs to know about one pool of nutcracker.yml.
type pool struct {
	Name      string
	Listen    string // host:port or a unix socket path
	Redis     bool
	RedisAuth string
}

// port returns the TCP port the pool listens on, 0 for a unix socket.
func (p pool) port() int {
	if strings.HasPrefix(p.Listen, "/") {
		return 0
	}
	_, port, err := net.SplitHostPort(p.Listen)
	if err != nil {
		return 0
	}
	n, _ := strconv.Atoi(port)
	return n
}

// parsePools reads the pools of a nutcracker.yml. Validation is nutcracker -t's and the
// linter's job; this only extracts what smoke tests use.
func parsePools(filename string, data []byte) ([]pool, error) {
	var doc map[string]struct {
		Listen    string `yaml:"listen"`
		Redis     bool   `yaml:"redis"`
		RedisAuth string `yaml:"redis_auth"`
	}
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("%s: %w", filename, err)
	}
	var out []pool
	for name, p := range doc {
		listen, _, _ := strings.Cut(strings.TrimSpace(p.Listen), " ") // drop a socket's permissions
		if listen == "" {
			return nil, fmt.Errorf("%s: pool %s: listen: missing", filename, name)
		}
		out = append(out, pool{Name: name, Listen: listen, Redis: p.Redis, RedisAuth: p.RedisAuth})
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s: no pools", filename)
	}
	slices.SortFunc(out, func(a, b pool) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}
