package routing

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
)

// DiffReport says how many keys change backend between two configurations of a pool.
type DiffReport struct {
	Keys          int     `json:"keys"`           // keys sampled
	Moved         float64 `json:"moved"`          // keys that change backend (expected value when a pool is random)
	MovedFraction float64 `json:"moved_fraction"` // Moved / Keys
	// Random is set when either pool uses the random distribution: keys then have no fixed
	// backend, and Moved is the expected number of keys read from another backend than the
	// one they were written to.
	Random bool `json:"random"`
	// Sample says what the keys are: with a hash_tag on either side half of them carry the
	// tag, so the figure depends on how many real keys do.
	Sample string  `json:"sample"`
	Shares []Share `json:"shares"` // per backend address, in the order old's servers then new's
}

// Share is one backend's part of the key space before and after.
type Share struct {
	Addr         string  `json:"addr"`
	NameBefore   string  `json:"name_before"` // hash names; "" when absent on that side
	NameAfter    string  `json:"name_after"`
	Before       float64 `json:"before"` // fraction of sampled keys
	After        float64 `json:"after"`
	WeightBefore float64 `json:"weight_before"` // configured weight / total weight
	WeightAfter  float64 `json:"weight_after"`
}

// MaxDiffKeys bounds Diff's sample: a million keys give the moved fraction to within 0.1%
// and take a second; the sample is held in memory.
const MaxDiffKeys = 1_000_000

// ErrOutOfRange: a count is outside what the function accepts.
var ErrOutOfRange = errors.New("out of range")

// Diff routes a deterministic sample of keys through both configurations and reports how
// many change backend. Backends are identified by address, so renaming a server (which
// moves its ketama points) shows up as moved keys.
func Diff(old, new Pool, keys int) (DiffReport, error) {
	if keys < 1 || keys > MaxDiffKeys {
		return DiffReport{}, fmt.Errorf("keys: %d: %w (1 to %d)", keys, ErrOutOfRange, MaxDiffKeys)
	}
	ro, err := New(old)
	if err != nil {
		return DiffReport{}, fmt.Errorf("old: %w", err)
	}
	rn, err := New(new)
	if err != nil {
		return DiffReport{}, fmt.Errorf("new: %w", err)
	}
	rep := DiffReport{Keys: keys, Random: !ro.Deterministic() || !rn.Deterministic(), Sample: sampleDescription(keys, old.HashTag, new.HashTag)}

	// Map both pools' servers to one list of backends.
	index := map[string]int{}
	backend := func(s Server) int {
		if i, ok := index[s.Addr]; ok {
			return i
		}
		index[s.Addr] = len(rep.Shares)
		rep.Shares = append(rep.Shares, Share{Addr: s.Addr})
		return len(rep.Shares) - 1
	}
	bo, wo := backends(old, backend)
	bn, wn := backends(new, backend)
	for i, s := range old.Servers {
		rep.Shares[bo[i]].NameBefore = s.hashName()
		rep.Shares[bo[i]].WeightBefore = wo[i]
	}
	for i, s := range new.Servers {
		rep.Shares[bn[i]].NameAfter = s.hashName()
		rep.Shares[bn[i]].WeightAfter = wn[i]
	}

	before := make([]float64, len(rep.Shares))
	after := make([]float64, len(rep.Shares))
	for _, key := range SampleKeys(keys, old.HashTag, new.HashTag) {
		pb := placement(ro, bo, key, before)
		pa := placement(rn, bn, key, after)
		// Probability the key is read where it was written.
		same := 0.0
		for b, p := range pb {
			same += p * pa[b]
		}
		rep.Moved += 1 - same
	}
	for i := range rep.Shares {
		rep.Shares[i].Before = before[i] / float64(max(keys, 1))
		rep.Shares[i].After = after[i] / float64(max(keys, 1))
	}
	if keys > 0 {
		rep.MovedFraction = rep.Moved / float64(keys)
	}
	return rep, nil
}

// sampleDescription says what SampleKeys(keys, tags...) returns.
func sampleDescription(keys int, tags ...string) string {
	var used []string
	for _, t := range tags {
		if len(t) == 2 && !slices.Contains(used, t) {
			used = append(used, t)
		}
	}
	if len(used) == 0 {
		return fmt.Sprintf("%d synthetic keys", keys)
	}
	return fmt.Sprintf("%d synthetic keys, about half of them carrying the hash_tag %s; the figure for your keys depends on how many of them carry it",
		keys, strings.Join(used, " or "))
}

// backends maps a pool's servers to backend numbers and returns each server's weight share.
func backends(p Pool, backend func(Server) int) (idx []int, share []float64) {
	total := 0
	for _, s := range p.Servers {
		total += s.Weight
	}
	for _, s := range p.Servers {
		idx = append(idx, backend(s))
		share = append(share, float64(s.Weight)/float64(total))
	}
	return idx, share
}

// placement returns, per backend, the probability that key goes there, and adds it to count.
func placement(r *Ring, backends []int, key []byte, count []float64) map[int]float64 {
	if r.Deterministic() {
		b := backends[r.Lookup(key)]
		count[b]++
		return map[int]float64{b: 1}
	}
	p := map[int]float64{}
	for _, b := range backends {
		p[b] += 1 / float64(len(backends))
		count[b] += 1 / float64(len(backends))
	}
	return p
}

// SampleKeys returns n distinct keys, the same for every call: printable keys of varied
// shapes and lengths, some of them carrying each given hash tag (pairs of characters) around
// a random part, so that hash-tag changes show up in a diff.
func SampleKeys(n int, tags ...string) [][]byte {
	const alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
	prefixes := []string{"user:", "session:", "cache:", "", "item-", "q/"}
	var tagPairs []string
	for _, t := range tags {
		if len(t) == 2 && !slices.Contains(tagPairs, t) {
			tagPairs = append(tagPairs, t)
		}
	}
	rng := rand.New(rand.NewPCG(0x7061746368, 0x63746c)) // fixed seed: same sample every run
	seen := make(map[string]bool, n)
	keys := make([][]byte, 0, n)
	for len(keys) < n {
		k := []byte(prefixes[rng.IntN(len(prefixes))])
		body := make([]byte, 4+rng.IntN(20))
		for i := range body {
			body[i] = alphabet[rng.IntN(len(alphabet))]
		}
		if len(tagPairs) > 0 && rng.IntN(2) == 0 {
			t := tagPairs[rng.IntN(len(tagPairs))]
			cut := 1 + rng.IntN(len(body)-1)
			k = append(k, t[0])
			k = append(k, body[:cut]...)
			k = append(k, t[1])
			k = append(k, body[cut:]...)
		} else {
			k = append(k, body...)
		}
		if !seen[string(k)] {
			seen[string(k)] = true
			keys = append(keys, k)
		}
	}
	return keys
}
