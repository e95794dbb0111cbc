// Package lint checks a nutcracker.yml against the nutcracker version that will run it.
// Errors are exactly what that version refuses, each with the reason nutcracker -t never
// prints; warnings are settings it accepts but that do harm.
package lint

import (
	"errors"
	"fmt"
	"math"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"github.com/hashicorp/go-version"

	"github.com/patchctl/patchctl/nutconf"
)

// Finding is one problem at a position in a file.
type Finding struct {
	File     string   `json:"file"`
	Line     int      `json:"line"`
	Column   int      `json:"column"`
	Severity Severity `json:"severity"`
	Rule     string   `json:"rule"`
	Message  string   `json:"message"`
}

func (f Finding) String() string {
	return fmt.Sprintf("%s:%d:%d: %s: %s: %s", f.File, f.Line, f.Column, f.Severity, f.Rule, f.Message)
}

// HasErrors reports whether any finding is an error.
func HasErrors(fs []Finding) bool {
	return slices.ContainsFunc(fs, func(f Finding) bool { return f.Severity == SeverityError })
}

// Check lints one file for the target version (nil = Newest). Findings are in file order.
// It reads the file one pool at a time and keeps only what the checks across pools need,
// so a thousand-pool file's model never exists whole.
func Check(filename string, data []byte, target *version.Version) []Finding {
	if target == nil {
		target = Newest()
	}
	c := &checker{file: filename, f: newFeatures(target), target: target.Original()}
	c.restart()
	err := nutconf.Walk(filename, data, c.pool, c.restart)
	var perrs nutconf.Errors
	if errors.As(err, &perrs) {
		// Ahead of the pools' findings: the sort below keeps that order at equal positions.
		pools := c.out
		c.out = make([]Finding, 0, len(perrs)+len(pools))
		for _, e := range perrs {
			c.errorf(e.Pos, string(e.Kind), "%s", e.Msg)
		}
		c.out = append(c.out, pools...)
	}
	slices.SortStableFunc(c.out, func(a, b Finding) int {
		return nutconf.ComparePos(nutconf.Pos{Line: a.Line, Column: a.Column}, nutconf.Pos{Line: b.Line, Column: b.Column})
	})
	return c.out
}

type checker struct {
	file   string
	target string
	f      features
	out    []Finding

	// What the checks across pools remember of the pools read so far.
	pools    []poolSummary
	names    map[string]int    // pool name → line of its first definition
	listens  map[string]string // listen text → first pool with it
	backends map[string]backend
	warned   map[[2]string]bool // pool pairs warned about sharing a backend
}

// poolSummary is what sharedBackends compares of an earlier pool.
type poolSummary struct{ name, hash, dist string }

// backend is the first server line that reaches an address. A map entry per server of
// the file: 32-bit fields keep it at 8 bytes (a file is at most 16 MiB).
type backend struct {
	pool int32 // index in checker.pools
	line int32
}

// restart forgets every pool: the file is read again from the start.
func (c *checker) restart() {
	c.out, c.pools = c.out[:0], c.pools[:0]
	c.names, c.listens = map[string]int{}, map[string]string{}
	c.backends, c.warned = map[string]backend{}, map[[2]string]bool{}
}

func (c *checker) add(p nutconf.Pos, sev Severity, rule, format string, args ...any) {
	line, col := max(p.Line, 1), max(p.Column, 1)
	c.out = append(c.out, Finding{File: c.file, Line: line, Column: col, Severity: sev, Rule: rule, Message: fmt.Sprintf(format, args...)})
}

func (c *checker) errorf(p nutconf.Pos, rule, format string, args ...any) {
	c.add(p, SeverityError, rule, format, args...)
}

func (c *checker) warnf(p nutconf.Pos, rule, format string, args ...any) {
	c.add(p, SeverityWarning, rule, format, args...)
}

// features is what the target version accepts.
type features struct {
	keys            map[string]bool
	hashes          map[string]bool
	serverNames     bool // "host:port:weight name", 0.2.1
	unixServers     bool // "/path:weight", 0.2.4
	dupByLine       bool // ≤0.2.3 also refuse two identical "host:port:weight" strings
	zeroWeightError bool // 0.4.0
	listenPerm      bool // "/path 0666", 0.4.1
	authNeedsRedis  bool // redis_auth only with redis: true, 0.4.1
	emptyValues     bool // empty scalars refused, 0.5.0
	shortKetamaBuf  bool // ≤0.4.1: 86-byte buffer for "name-i"
}

func newFeatures(target *version.Version) features {
	g := newGate(target)
	f := features{
		keys:            map[string]bool{},
		hashes:          map[string]bool{},
		serverNames:     g.since("0.2.1"),
		unixServers:     g.since("0.2.4"),
		dupByLine:       !g.since("0.2.4"),
		zeroWeightError: g.since("0.4.0"),
		listenPerm:      g.since("0.4.1"),
		authNeedsRedis:  g.since("0.4.1"),
		emptyValues:     g.since("0.5.0"),
		shortKetamaBuf:  !g.since("0.5.0"),
	}
	for k, since := range keySince {
		f.keys[k] = g.since(since)
	}
	for h, since := range hashSince {
		f.hashes[h] = g.since(since)
	}
	return f
}

type keyKind int

const (
	kindNumber keyKind = iota
	kindBool
	kindString
	kindListen
	kindHash
	kindHashTag
	kindDistribution
	kindServers
)

var keyKinds = map[string]keyKind{
	"listen": kindListen, "hash": kindHash, "hash_tag": kindHashTag,
	"distribution": kindDistribution, "timeout": kindNumber, "backlog": kindNumber,
	"client_connections": kindNumber, "redis": kindBool, "tcpkeepalive": kindBool,
	"redis_auth": kindString, "redis_db": kindNumber, "preconnect": kindBool,
	"auto_eject_hosts": kindBool, "server_connections": kindNumber,
	"server_retry_timeout": kindNumber, "server_failure_limit": kindNumber,
	"servers": kindServers,
}

var keySince = map[string]string{
	"listen": "0.1.16", "hash": "0.1.16", "distribution": "0.1.16", "timeout": "0.1.16",
	"backlog": "0.1.16", "client_connections": "0.1.16", "preconnect": "0.1.16",
	"auto_eject_hosts": "0.1.16", "server_connections": "0.1.16",
	"server_retry_timeout": "0.1.16", "server_failure_limit": "0.1.16", "servers": "0.1.16",
	"redis": "0.1.20", "hash_tag": "0.2.3", "redis_auth": "0.4.1", "redis_db": "0.4.1",
	"tcpkeepalive": "0.5.0",
}

// elsewhere explains keys that exist outside upstream releases.
var elsewhere = map[string]string{
	"reuseport": "only on unreleased upstream master, in no release",
	"failover":  "a tagged/twemproxy fork key",
	"sentinels": "a tagged/twemproxy fork key",
	"global":    "the meitu/bitleak fork layout",
	"pools":     "the meitu/bitleak fork layout",
}

var hashSince = map[string]string{
	"one_at_a_time": "0.1.16", "md5": "0.1.16", "crc32": "0.1.16", "fnv1_64": "0.1.16",
	"fnv1a_64": "0.1.16", "fnv1_32": "0.1.16", "fnv1a_32": "0.1.16", "hsieh": "0.1.16",
	"murmur": "0.1.16", "jenkins": "0.1.16", "crc16": "0.2.4", "crc32a": "0.3.0",
}

// pool checks one pool, then it against the pools before it.
func (c *checker) pool(p *nutconf.Pool) {
	c.poolAlone(p)
	if line, ok := c.names[p.Name]; ok {
		c.errorf(p.Pos, RuleDuplicatePool, "pool %q is defined twice (first at line %d)", p.Name, line)
	} else {
		c.names[p.Name] = p.Pos.Line
	}
	// nutcracker compares the listen strings as written, so only the same text clashes.
	if l, ok := p.Value("listen"); ok {
		if _, valid := p.Listen(); valid {
			if first, ok := c.listens[l.Text]; ok {
				c.errorf(l.Pos, RuleDuplicateListen, "pools %q and %q have the same listen address %q", first, p.Name, l.Text)
			} else {
				c.listens[l.Text] = p.Name
			}
		}
	}
	c.sharedBackends(p)
}

func (c *checker) poolAlone(p *nutconf.Pool) {
	if c.f.emptyValues && p.Name == "" {
		c.errorf(p.Pos, RuleEmptyValue, "empty pool name")
	}
	set := map[string]bool{}
	for _, k := range p.Keys {
		c.key(p, k, set)
	}
	listen, hasListen := p.Value("listen")
	if !hasListen {
		c.errorf(p.Pos, RuleMissingListen, "pool %q has no listen:", p.Name)
	}
	if v, ok := p.Value("server_connections"); ok && nutconf.Number(v.Text) == 0 {
		c.errorf(v.Pos, RuleServerConnZero, "server_connections cannot be 0")
	}
	if v, ok := p.Value("redis_auth"); ok && c.f.authNeedsRedis && v.Text != "" && !p.Redis() {
		c.errorf(v.Pos, RuleRedisAuthMemcache, "redis_auth is only valid for a redis pool; pool %q has no redis: true", p.Name)
	}
	c.servers(p)
	c.poolWarnings(p, listen, hasListen)
}

func (c *checker) key(p *nutconf.Pool, k *nutconf.Key, set map[string]bool) {
	if c.f.emptyValues && k.Name == "" {
		c.errorf(k.Pos, RuleEmptyValue, "empty key")
		return
	}
	kind, known := keyKinds[k.Name]
	if !known || !c.f.keys[k.Name] {
		msg := fmt.Sprintf("key %q is unknown to nutcracker %s", k.Name, c.target)
		switch {
		case elsewhere[k.Name] != "":
			msg += " (" + elsewhere[k.Name] + ")"
		case known:
			msg += fmt.Sprintf(" (added in %s)", keySince[k.Name])
		}
		c.errorf(k.Pos, RuleUnknownKey, "%s", msg)
		return
	}
	for _, v := range k.Values {
		if c.f.emptyValues && v.Text == "" {
			c.errorf(v.Pos, RuleEmptyValue, "%s: empty value (nutcracker refuses it without saying why)", k.Name)
			continue
		}
		if kind == kindServers {
			continue // checked as a whole in servers
		}
		if set[k.Name] {
			c.errorf(v.Pos, RuleDuplicateKey, "%s is given more than once", k.Name)
			continue
		}
		set[k.Name] = true
		c.value(p, k.Name, kind, v)
	}
}

func (c *checker) value(p *nutconf.Pool, key string, kind keyKind, v nutconf.Value) {
	switch kind {
	case kindNumber:
		if nutconf.Number(v.Text) < 0 {
			if nutconf.Overflows(v.Text) {
				c.errorf(v.Pos, RuleInvalidNumber, "%s: %s wraps to a negative 32-bit int, which nutcracker reads as not a number", key, v.Text)
			} else {
				c.errorf(v.Pos, RuleInvalidNumber, "%s: %q is not a number (plain digits only: no sign, unit or hex)", key, v.Text)
			}
		} else if nutconf.Overflows(v.Text) {
			c.warnf(v.Pos, RuleNumberOverflow, "%s: %s is past 2^31-1 and wraps to %d", key, v.Text, nutconf.Number(v.Text))
		}
	case kindBool:
		if v.Text != "true" && v.Text != "false" {
			c.errorf(v.Pos, RuleInvalidBool, "%s: %q is not \"true\" or \"false\" (lowercase, exactly)", key, v.Text)
		}
	case kindHash:
		if !c.f.hashes[v.Text] {
			c.errorf(v.Pos, RuleInvalidHash, "hash: %q is not a hash of nutcracker %s (%s)", v.Text, c.target, strings.Join(c.validHashes(), ", "))
		}
	case kindDistribution:
		switch v.Text {
		case "ketama", "modula", "random":
		default:
			c.errorf(v.Pos, RuleInvalidDistribution, "distribution: %q is not ketama, modula or random", v.Text)
		}
	case kindHashTag:
		if len(v.Text) != 2 {
			c.errorf(v.Pos, RuleInvalidHashTag, "hash_tag: %q is %d bytes; it must be exactly 2, like \"{}\"", v.Text, len(v.Text))
		}
	case kindString:
		if v.Text == "" {
			c.warnf(v.Pos, RuleEmptyRedisAuth, "redis_auth is empty: no password is required, and 0.5.0 refuses the file")
		}
	case kindListen:
		c.listen(v)
	}
}

func (c *checker) validHashes() []string {
	var hs []string
	for h, ok := range c.f.hashes {
		if ok {
			hs = append(hs, h)
		}
	}
	slices.Sort(hs)
	return hs
}

// unixPathMax is sizeof(sockaddr_un.sun_path) on Linux; nutcracker refuses paths that do
// not fit with their NUL.
const unixPathMax = 108

func (c *checker) listen(v nutconf.Value) {
	l, err := nutconf.ParseListen(v.Text)
	switch {
	case errors.Is(err, nutconf.ErrListenPerm) && !c.f.listenPerm:
		err = nil // before 0.4.1 the whole text is the path; checked below
	case err != nil:
		c.errorf(v.Pos, RuleInvalidListen, "listen: %q: %v", v.Text, err)
		return
	}
	if l.Unix {
		path := l.Host
		if l.HasPerm && !c.f.listenPerm {
			path = v.Text
			c.warnf(v.Pos, RuleListenPerm, "listen: nutcracker %s has no permission suffix: the socket path is %q", c.target, path)
		} else if !l.PermIsOctal() {
			c.warnf(v.Pos, RuleListenPerm, "listen: permissions %q are not octal digits; nutcracker reads them as %#o", l.PermText, l.Perm)
		}
		if len(path) >= unixPathMax {
			c.errorf(v.Pos, RuleInvalidListen, "listen: socket path is %d bytes; the limit is %d", len(path), unixPathMax-1)
		}
		return
	}
	switch resolvable(l.Host) {
	case hostInvalid:
		c.errorf(v.Pos, RuleInvalidListen, "listen: host %q cannot be resolved (IPv6 is written bare, like ::1:22121)", l.Host)
	case hostNeedsDNS:
		c.warnf(v.Pos, RuleListenDNS, "listen: host %q is resolved by nutcracker at startup (and by -t); this check does not resolve names", l.Host)
	}
}

type hostClass int

const (
	hostLiteral hostClass = iota
	hostInvalid
	hostNeedsDNS
)

// resolvable classifies a listen host as getaddrinfo would see it without DNS: IP
// literals (including inet_aton forms such as 127.1) and localhost resolve, an empty host
// or brackets never do, anything else is a name.
func resolvable(host string) hostClass {
	switch {
	case host == "" || strings.ContainsAny(host, "[] "):
		return hostInvalid
	case host == "localhost":
		return hostLiteral
	case strings.Contains(host, ":"):
		if _, err := netip.ParseAddr(host); err == nil {
			return hostLiteral
		}
		return hostInvalid
	case inetAton(host):
		return hostLiteral
	}
	return hostNeedsDNS
}

// inetAton reports whether s is an IPv4 address in one of the forms inet_aton accepts:
// one to four parts, each decimal, octal (leading 0) or hex (0x), the last filling the
// remaining bytes.
func inetAton(s string) bool {
	parts := strings.Split(s, ".")
	if len(parts) > 4 {
		return false
	}
	for i, p := range parts {
		n, err := strconv.ParseUint(p, 0, 32)
		if err != nil || strings.ContainsAny(p, "_+-") || (len(p) > 1 && p[0] == '0' && (p[1] == 'o' || p[1] == 'O' || p[1] == 'b' || p[1] == 'B')) {
			return false
		}
		limit := uint64(255)
		if i == len(parts)-1 {
			limit = math.MaxUint32 >> (8 * (len(parts) - 1))
		}
		if n > limit {
			return false
		}
	}
	return true
}

func (c *checker) servers(p *nutconf.Pool) {
	k := p.Key("servers")
	if k == nil {
		c.errorf(p.Pos, RuleNoServers, "pool %q has no servers", p.Name)
		return
	}
	// The maps hold indexes into p.Servers: a Server is large, and a 20,000-server file
	// would copy each one into every map.
	byName := make(map[string]int, len(p.Servers))
	byAddr := make(map[string]int, len(p.Servers))
	var byLine map[string]int
	if c.f.dupByLine {
		byLine = make(map[string]int, len(p.Servers))
	}
	for i, s := range p.Servers {
		if c.f.emptyValues && s.Raw == "" {
			continue // reported as an empty value
		}
		c.server(s)
		name := s.HashName()
		if s.Err == nil {
			// nutcracker compares hash names only: one backend under two names is accepted
			// and placed twice.
			addr := s.Address()
			if j, ok := byAddr[addr]; ok && p.Servers[j].HashName() != name && !c.f.dupByLine {
				first := p.Servers[j]
				c.warnf(s.Pos, RuleDuplicateAddress, "backend %s is listed twice, as %q and %q (line %d): it gets both weights, twice its share of keys",
					addr, name, first.HashName(), first.Pos.Line)
			} else if !ok {
				byAddr[addr] = i
			}
			if c.f.serverNames && s.HasName && s.Name == "" {
				c.warnf(s.Pos, RuleEmptyServerName, "server %q ends in a space: its name is empty and nutcracker hashes it as '' instead of its address (remove the trailing space, or name it)", s.Raw)
			}
		}
		if j, ok := byName[name]; ok {
			first := p.Servers[j]
			c.errorf(s.Pos, RuleDuplicateServer, "servers %q and %q (line %d) have the same hash name %q", s.Raw, first.Raw, first.Pos.Line, name)
		} else {
			byName[name] = i
		}
		if c.f.dupByLine {
			line := s.Raw
			if s.HasName {
				line = line[:len(line)-len(s.Name)-1]
			}
			if j, ok := byLine[line]; ok && p.Servers[j].HashName() != name {
				first := p.Servers[j]
				c.errorf(s.Pos, RuleDuplicateServer, "servers %q and %q (line %d) have the same address and weight; nutcracker %s refuses that even with different names", s.Raw, first.Raw, first.Pos.Line, c.target)
			} else if !ok {
				byLine[line] = i
			}
		}
	}
	if len(p.Servers) == 0 {
		c.errorf(k.Pos, RuleNoServers, "pool %q has no servers", p.Name)
	}
}

func (c *checker) server(s nutconf.Server) {
	switch {
	case errors.Is(s.Err, nutconf.ErrServerZeroWeight):
		if c.f.zeroWeightError {
			c.errorf(s.Pos, RuleZeroWeight, "server %q has a zero weight", s.Raw)
		} else {
			c.warnf(s.Pos, RuleNoKetamaPoints, "server %q has a zero weight and never receives keys", s.Raw)
		}
	case s.Err != nil:
		c.errorf(s.Pos, RuleInvalidServer, "server %q: %v", s.Raw, s.Err)
	case s.Unix && !c.f.unixServers:
		c.errorf(s.Pos, RuleInvalidServer, "server %q: unix-socket servers need nutcracker 0.2.4", s.Raw)
	case s.HasName && !c.f.serverNames:
		c.errorf(s.Pos, RuleInvalidServer, "server %q: server names need nutcracker 0.2.1", s.Raw)
	}
}
