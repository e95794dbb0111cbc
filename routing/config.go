package routing

import "github.com/patchctl/patchctl/nutconf"

// FromConfig describes a pool of a parsed nutcracker.yml for the router.
func FromConfig(p *nutconf.Pool) Pool {
	out := Pool{Name: p.Name, Hash: p.Hash(), Distribution: p.Distribution(), HashTag: p.HashTag()}
	for _, s := range p.Servers {
		// HashName is already nutcracker's name for the line, even when it is empty.
		out.Servers = append(out.Servers, Server{Name: s.HashName(), Named: true, Addr: s.Address(), Weight: s.Weight})
	}
	return out
}
