package lint

import (
	"math"
	"strings"

	"github.com/patchctl/patchctl/nutconf"
)

func (c *checker) poolWarnings(p *nutconf.Pool, listen nutconf.Value, hasListen bool) {
	if k := p.Key("client_connections"); k != nil {
		c.warnf(k.Pos, RuleClientConnections, "client_connections is parsed but never enforced by any nutcracker version; limit clients with the open-file limit")
	}
	if p.Key("timeout") == nil {
		c.warnf(p.Pos, RuleNoTimeout, "pool %q has no timeout: requests to a hung server wait forever", p.Name)
	}
	if v, ok := p.Value("server_connections"); ok && nutconf.Number(v.Text) > 1 {
		c.warnf(v.Pos, RuleServerConnMany, "server_connections: %s breaks read-your-writes ordering for pipelined clients", v.Text)
	}
	dist := p.Distribution()
	if v, ok := p.Value("auto_eject_hosts"); ok && v.Text == "true" && dist == "modula" {
		c.warnf(v.Pos, RuleAutoEjectModula, "auto_eject_hosts with modula: ejecting one server remaps almost every key")
	}
	if v, ok := p.Value("hash"); ok && v.Text == "crc32" && dist == "ketama" && len(p.Servers) > 1 {
		c.warnf(v.Pos, RuleCRC32Ketama, "crc32 returns 15-bit hashes: with ketama every key lands on the same server (use crc32a)")
	}
	if dist == "ketama" {
		c.ketamaPoints(p)
	}
	if db, ok := p.Value("redis_db"); ok && nutconf.Number(db.Text) > 0 {
		for _, s := range p.Servers {
			if s.Err == nil && s.Unix {
				c.warnf(db.Pos, RuleRedisDBUnix, "redis_db is not applied to unix-socket server %q: its keys land in db 0", s.Raw)
				break
			}
		}
		if p.RedisAuth() != "" {
			c.warnf(db.Pos, RuleRedisDBAuth, "redis_db with redis_auth: SELECT is sent before AUTH and fails, so keys land in db 0")
		}
	}
	if hasListen && p.RedisAuth() == "" {
		if l, ok := p.Listen(); ok && !l.Unix && allInterfaces(l.Host) {
			c.warnf(listen.Pos, RuleOpenListen, "listen %q accepts connections on every interface and the pool has no redis_auth", listen.Text)
		}
	}
	for _, s := range p.Servers {
		if s.Err != nil {
			continue
		}
		switch n := len(s.HashName()); {
		case c.f.shortKetamaBuf && n > 80:
			c.warnf(s.Pos, RuleLongServerName, "server name is %d bytes: nutcracker %s overruns its ketama buffer past 80 (fixed in 0.5.0)", n, c.target)
		case !c.f.shortKetamaBuf && dist == "ketama" && n > maxKetamaName:
			c.warnf(s.Pos, RuleLongServerName, "server name is %d bytes: nutcracker %s truncates \"<name>-<i>\" to 272 bytes on its ketama ring, so past %d bytes the name's points lose their index (keep names under %d bytes)",
				n, c.target, maxKetamaName, maxKetamaName+1)
		}
	}
}

// maxKetamaName is the longest name whose "<name>-<i>" strings 0.5.0 keeps whole for
// i < 10: its ketama buffer holds 272 bytes.
const maxKetamaName = 270

func allInterfaces(host string) bool {
	switch strings.ToLower(host) {
	case "0.0.0.0", "0", "::", "0:0:0:0:0:0:0:0", "::0":
		return true
	}
	return false
}

// ketamaPoints warns about servers that the continuum gives no points: nutcracker computes
// floor(w/total*40*nlive)*4 points in single precision (ketama_update).
func (c *checker) ketamaPoints(p *nutconf.Pool) {
	var total, n int
	for _, s := range p.Servers {
		if s.Err == nil {
			total += s.Weight
			n++
		}
	}
	if n < 2 {
		return
	}
	for _, s := range p.Servers {
		if s.Err == nil && KetamaPoints(s.Weight, total, n) == 0 {
			c.warnf(s.Pos, RuleNoKetamaPoints, "server %q gets no ketama points (weight %d of %d in total) and never receives keys", s.Raw, s.Weight, total)
		}
	}
}

// KetamaPoints is the number of continuum points nutcracker gives a server of the given
// weight among nlive servers weighing total, computed in float32 as the C code does.
func KetamaPoints(weight, total, nlive int) int {
	pct := float32(weight) / float32(total)
	x := float32(float32(float32(pct*160)/4) * float32(nlive))
	// The C code adds 0.0000000001 in double, then casts back to float before floorf.
	y := float32(float64(x) + 1e-10)
	return int(math.Floor(float64(y))) * 4
}

// sharedBackends warns when pool p reaches a backend of an earlier pool with a different
// hash or distribution: a key written through one pool is looked up elsewhere through the
// other.
func (c *checker) sharedBackends(p *nutconf.Pool) {
	this := int32(len(c.pools))
	c.pools = append(c.pools, poolSummary{name: p.Name, hash: p.Hash(), dist: p.Distribution()})
	for _, s := range p.Servers {
		if s.Err != nil {
			continue
		}
		addr := s.Address()
		u, ok := c.backends[addr]
		if !ok {
			c.backends[addr] = backend{pool: this, line: int32(s.Pos.Line)}
			continue
		}
		first := c.pools[u.pool]
		if u.pool == this || c.warned[[2]string{first.name, p.Name}] {
			continue
		}
		if first.hash != p.Hash() || first.dist != p.Distribution() {
			c.warned[[2]string{first.name, p.Name}] = true
			c.warnf(s.Pos, RuleSharedBackend, "backend %s is shared with pool %q (line %d) which uses %s/%s, this pool %s/%s: the same key maps to different servers",
				addr, first.name, u.line, first.hash, first.dist, p.Hash(), p.Distribution())
		}
	}
}
