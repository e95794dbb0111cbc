// Package routing computes which backend nutcracker 0.5.0 sends a key to: its 12 hash
// functions, the ketama, modula and random distributions, and hash tags. It can compare two
// pool configurations and verify its predictions against a live proxy.
package routing

import (
	"bytes"
	"cmp"
	"crypto/md5"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
)

// Distribution names, as in nutcracker.yml.
const (
	Ketama = "ketama"
	Modula = "modula"
	Random = "random"
)

// ErrUnknownDistribution is returned for a distribution nutcracker does not accept.
var ErrUnknownDistribution = errors.New("unknown distribution")

// Pool is the part of a nutcracker.yml pool that decides routing.
type Pool struct {
	Name         string // pool name, for messages only
	Hash         string // "" means fnv1a_64
	Distribution string // "" means ketama
	HashTag      string // "" or exactly 2 bytes
	Servers      []Server
}

// Server is one line of a pool's servers list.
type Server struct {
	// Name is the hash name: the explicit name from the server line, or "" to derive it from
	// Addr as nutcracker does (see HashName) unless Named is set.
	Name string
	// Named says Name is the hash name even when empty: a server line ending in a space
	// ("127.0.0.1:6379:1 ") has an explicit empty name, and nutcracker hashes "".
	Named bool
	// Addr is the address as written in the server line: "host:port" or a unix socket path.
	Addr   string
	Weight int
}

// HashName returns the name nutcracker hashes for a server line without an explicit name:
// "host:port", just "host" when the port is 11211 (libmemcached compatibility), and
// "path:" for a unix socket.
func HashName(addr string) string {
	if strings.HasPrefix(addr, "/") {
		return addr + ":"
	}
	i := strings.LastIndexByte(addr, ':')
	if i < 0 {
		return addr
	}
	if port, err := strconv.Atoi(addr[i+1:]); err == nil && port == 11211 {
		return addr[:i]
	}
	return addr
}

// hashName is the server's name in nutcracker's ring.
func (s Server) hashName() string {
	if s.Name != "" || s.Named {
		return s.Name
	}
	return HashName(s.Addr)
}

// Ring routes keys for one pool. It is immutable and safe for concurrent use.
type Ring struct {
	dist   string
	hash   HashFunc
	tag    [2]byte
	hasTag bool
	n      int

	// ketama: point values ascending, and the server index of each point.
	values  []uint32
	servers []int32
	// modula: servers in nutcracker's order and the running total of their weights. nutcracker
	// lists each server weight times and picks list[hash % len]; a binary search over the
	// running totals finds the same server without materialising the list, so a weight of
	// 50,000,000 costs nothing.
	modula  []int32
	cumul   []uint64
	weights uint32
}

// New builds the routing of a pool as nutcracker 0.5.0 does when every server is live.
func New(p Pool) (*Ring, error) {
	r := &Ring{dist: cmp.Or(p.Distribution, Ketama), n: len(p.Servers)}
	var err error
	if r.hash, err = Hash(cmp.Or(p.Hash, DefaultHash)); err != nil {
		return nil, fmt.Errorf("pool %s: hash: %w", p.Name, err)
	}
	switch len(p.HashTag) {
	case 0:
	case 2:
		r.tag, r.hasTag = [2]byte{p.HashTag[0], p.HashTag[1]}, true
	default:
		return nil, fmt.Errorf("pool %s: hash_tag %q: must be exactly 2 characters", p.Name, p.HashTag)
	}
	if len(p.Servers) == 0 {
		return nil, fmt.Errorf("pool %s: servers: none", p.Name)
	}
	seen := make(map[string]int, len(p.Servers))
	for i, s := range p.Servers {
		if s.Addr == "" {
			return nil, fmt.Errorf("pool %s: servers[%d]: empty address", p.Name, i)
		}
		if s.Weight <= 0 {
			return nil, fmt.Errorf("pool %s: servers[%d] %s: weight %d: must be positive", p.Name, i, s.Addr, s.Weight)
		}
		name := s.hashName()
		if j, dup := seen[name]; dup {
			return nil, fmt.Errorf("pool %s: servers[%d] and servers[%d] have the same name %q", p.Name, j, i, name)
		}
		seen[name] = i
	}
	switch r.dist {
	case Ketama:
		r.buildKetama(sortedServers(p.Servers), p.Servers)
	case Modula:
		var total uint64
		for _, i := range sortedServers(p.Servers) {
			total += uint64(p.Servers[i].Weight)
			if total > math.MaxUint32 {
				// nutcracker counts the list in 32 bits: beyond that it wraps.
				return nil, fmt.Errorf("pool %s: modula: total server weight exceeds %d", p.Name, uint64(math.MaxUint32))
			}
			r.modula = append(r.modula, int32(i))
			r.cumul = append(r.cumul, total)
		}
		r.weights = uint32(total)
	case Random:
	default:
		return nil, fmt.Errorf("pool %s: distribution %q: %w", p.Name, p.Distribution, ErrUnknownDistribution)
	}
	return r, nil
}

// sortedServers returns server indices in nutcracker's order: by hash name, shorter first,
// then bytewise.
func sortedServers(servers []Server) []int {
	idx := make([]int, len(servers))
	for i := range idx {
		idx[i] = i
	}
	slices.SortStableFunc(idx, func(a, b int) int {
		na, nb := servers[a].hashName(), servers[b].hashName()
		return cmp.Or(cmp.Compare(len(na), len(nb)), strings.Compare(na, nb))
	})
	return idx
}

// ketamaPoints is how many continuum points a server gets. nutcracker computes it in single
// precision; each conversion below rounds where the C code does.
func ketamaPoints(weight, total, nlive int) int {
	pct := float32(weight) / float32(total)
	x := float32(float32(float32(pct*160)/4) * float32(nlive))
	// The C code adds 1e-10 in double, then floorf converts back to float.
	return int(math.Floor(float64(float32(float64(x)+1e-10)))) * 4
}

// maxHostLen is nutcracker 0.5.0's buffer for "<name>-<i>" including the terminating NUL.
const maxHostLen = 273

func (r *Ring) buildKetama(order []int, servers []Server) {
	total := 0
	for _, s := range servers {
		total += s.Weight
	}
	type point struct {
		value  uint32
		server int32
	}
	var pts []point
	buf := make([]byte, 0, 2*maxHostLen)
	for _, i := range order {
		name := servers[i].hashName()
		for h := range ketamaPoints(servers[i].Weight, total, len(servers)) / 4 {
			buf = strconv.AppendInt(append(append(buf[:0], name...), '-'), int64(h), 10)
			if len(buf) > maxHostLen-1 {
				buf = buf[:maxHostLen-1] // snprintf truncation
			}
			d := md5.Sum(buf)
			for k := range 4 {
				pts = append(pts, point{binary.LittleEndian.Uint32(d[4*k:]), int32(i)})
			}
		}
	}
	slices.SortStableFunc(pts, func(a, b point) int { return cmp.Compare(a.value, b.value) })
	r.values = make([]uint32, len(pts))
	r.servers = make([]int32, len(pts))
	for j, p := range pts {
		r.values[j], r.servers[j] = p.value, p.server
	}
}

// Distribution returns the pool's distribution (ketama, modula or random).
func (r *Ring) Distribution() string { return r.dist }

// Deterministic reports whether Lookup always gives the same answer for a key: false for the
// random distribution with more than one server.
func (r *Ring) Deterministic() bool { return r.dist != Random || r.n == 1 }

// Lookup returns the index, in the pool's Servers as given to New, of the server nutcracker
// sends key to. With the random distribution it picks a server at random, as nutcracker does.
func (r *Ring) Lookup(key []byte) int {
	if r.n == 1 {
		return 0
	}
	if r.dist == Random {
		return rand.IntN(r.n)
	}
	h := r.HashKey(key)
	if r.modula != nil {
		// The slot's server is the first whose running total exceeds the slot.
		slot := uint64(h % r.weights)
		i, _ := slices.BinarySearch(r.cumul, slot+1)
		return int(r.modula[i])
	}
	// First point >= h, wrapping to the first point.
	lo, hi := 0, len(r.values)
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if r.values[m] < h {
			lo = m + 1
		} else {
			hi = m
		}
	}
	if lo == len(r.values) {
		lo = 0
	}
	return int(r.servers[lo])
}

// HashKey returns the value nutcracker computes for key in this pool: the hash of its hash-tag
// substring if it has one, 0 for an empty key.
func (r *Ring) HashKey(key []byte) uint32 {
	if r.hasTag {
		key = tagged(key, r.tag)
	}
	if len(key) == 0 {
		return 0
	}
	return r.hash(key)
}

// tagged returns the part of key between the first tag[0] and the next tag[1] after it, or
// the whole key when there is no such non-empty part.
func tagged(key []byte, tag [2]byte) []byte {
	start := bytes.IndexByte(key, tag[0])
	if start < 0 {
		return key
	}
	end := bytes.IndexByte(key[start+1:], tag[1])
	if end <= 0 {
		return key
	}
	return key[start+1 : start+1+end]
}
