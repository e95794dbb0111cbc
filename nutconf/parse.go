package nutconf

import (
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"io"
	"regexp"
	"slices"
	"strconv"
	"sync"

	"go.yaml.in/yaml/v3"
)

// Parse reads a nutcracker.yml. It returns the model of everything it could read and, when
// nutcracker would refuse the file on its YAML form alone, an Errors value listing each
// problem with its position. Values (hash names, numbers, booleans…) are not judged here:
// what is valid depends on the nutcracker version, see the lint package. Server lines are
// parsed, and a line nutcracker refuses in every version keeps its reason in Server.Err.
func Parse(filename string, data []byte) (*Config, error) {
	p := &parser{file: filename, cfg: &Config{File: filename}}
	return p.cfg, p.parse(data)
}

// Walk reads a nutcracker.yml as Parse does but keeps no pool: it calls each with every
// pool in file order as soon as the pool is read, then reuses the pool's memory for the
// next one, so each must copy what it keeps (strings may be kept). A large file's model
// never exists whole. When the fast reader gives up part way through the file (see
// fastPools), restart is called before the pools are read again from the start; the
// pools handed over until then are void. The error is Parse's.
func Walk(filename string, data []byte, each func(*Pool), restart func()) error {
	p := &parser{file: filename, cfg: &Config{File: filename}, each: each, restart: restart}
	return p.parse(data)
}

type parser struct {
	file string
	cfg  *Config
	errs Errors

	// Walk only: the callbacks, whether each was called, and the storage every pool reuses.
	each    func(*Pool)
	restart func()
	handed  bool
	spare   Pool
	keys    []Key
	vals    []Value
}

func (p *parser) parse(data []byte) error {
	p.scanMarkers(data)
	p.load(data)
	if len(p.errs) > 0 {
		sortErrors(p.errs)
		return p.errs
	}
	return nil
}

func (p *parser) fail(pos Pos, kind Kind, format string, args ...any) {
	p.errs = append(p.errs, &Error{File: p.file, Pos: pos, Kind: kind, Msg: fmt.Sprintf(format, args...)})
}

// scanMarkers finds the tokens the YAML tree does not show: directives and the document
// markers "---" and "...". libyaml only recognises them at column 1, where inside a pool
// nothing else can start, so a line scan is exact.
func (p *parser) scanMarkers(data []byte) {
	line := 0
	for len(data) > 0 {
		line++
		var l []byte
		l, data, _ = bytes.Cut(data, []byte{'\n'})
		switch {
		case len(l) > 0 && l[0] == '%':
			p.fail(Pos{line, 1}, KindToken, "directive %q is disallowed: nutcracker accepts plain block YAML only", string(bytes.TrimRight(l, "\r")))
		case marker(l, "---"):
			p.fail(Pos{line, 1}, KindToken, `document start token "---" is disallowed: nutcracker reads exactly one document without markers`)
		case marker(l, "..."):
			p.fail(Pos{line, 1}, KindToken, `document end token "..." is disallowed: nutcracker reads exactly one document without markers`)
		}
	}
}

func marker(l []byte, m string) bool {
	if !bytes.HasPrefix(l, []byte(m)) {
		return false
	}
	return len(l) == 3 || l[3] == ' ' || l[3] == '\t' || l[3] == '\r'
}

var yamlLine = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`line (\d+): `) })

func (p *parser) load(data []byte) {
	errs := len(p.errs)
	if fastPools(data, p.entry) {
		return // anchors, aliases, tags and flow style, checkTokens' findings, never get there
	}
	// Not in the plain form: forget what the fast path read, parse with the YAML library.
	p.cfg.Pools, p.errs = nil, p.errs[:errs]
	if p.handed {
		p.restart()
	}
	docs, err := yamlDocs(data)
	if err != nil {
		p.syntax(err)
		return
	}
	if len(docs) != 1 {
		pos := Pos{1, 1}
		if len(docs) > 1 {
			pos = Pos{docs[1].Line, docs[1].Column}
		}
		p.fail(pos, KindDocument, "must contain exactly 1 yaml document; found %d", len(docs))
	}
	if len(docs) == 0 || len(docs[0].Content) == 0 {
		return
	}
	p.checkTokens(docs[0])
	p.root(docs[0].Content[0])
}

// yamlDocs is every document the YAML library reads in data.
func yamlDocs(data []byte) ([]*yaml.Node, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var docs []*yaml.Node
	for {
		var doc yaml.Node
		err := dec.Decode(&doc)
		if errors.Is(err, io.EOF) {
			return docs, nil
		}
		if err != nil {
			return nil, err
		}
		docs = append(docs, &doc)
	}
}

func (p *parser) syntax(err error) {
	msg := err.Error()
	pos := Pos{1, 1}
	if m := yamlLine().FindStringSubmatch(msg); m != nil {
		if n, convErr := strconv.Atoi(m[1]); convErr == nil {
			pos.Line = n
		}
		msg = yamlLine().ReplaceAllString(msg, "")
	}
	p.fail(pos, KindSyntax, "%s", trimYAMLPrefix(msg))
}

func trimYAMLPrefix(s string) string {
	if len(s) > 6 && s[:6] == "yaml: " {
		return "invalid yaml: " + s[6:]
	}
	return "invalid yaml: " + s
}

func pos(n *yaml.Node) Pos { return Pos{n.Line, n.Column} }

// checkTokens reports flow collections, anchors, aliases and explicit tags anywhere.
func (p *parser) checkTokens(n *yaml.Node) {
	switch {
	case n.Kind == yaml.AliasNode:
		p.fail(pos(n), KindToken, "alias *%s is disallowed: nutcracker rejects anchors and aliases", n.Value)
	case n.Anchor != "":
		p.fail(pos(n), KindToken, "anchor &%s is disallowed: nutcracker rejects anchors and aliases", n.Anchor)
	}
	if n.Style&yaml.TaggedStyle != 0 {
		p.fail(pos(n), KindToken, "tag %s is disallowed: nutcracker rejects explicit tags", n.Tag)
	}
	if n.Style&yaml.FlowStyle != 0 {
		what := "mapping {…}"
		if n.Kind == yaml.SequenceNode {
			what = "sequence […]"
		}
		p.fail(pos(n), KindToken, "flow %s is disallowed: nutcracker accepts block style only", what)
	}
	if n.Kind == yaml.AliasNode {
		return
	}
	for _, c := range n.Content {
		p.checkTokens(c)
	}
}

func (p *parser) root(n *yaml.Node) {
	switch n.Kind {
	case yaml.MappingNode:
	case yaml.SequenceNode:
		p.fail(pos(n), KindStructure, "top level is a sequence; nutcracker wants a mapping of pool names to pools")
		return
	default:
		p.fail(pos(n), KindStructure, "top level is not a mapping of pool names to pools")
		return
	}
	if p.each == nil {
		p.cfg.Pools = make([]*Pool, 0, len(n.Content)/2)
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		p.entry(n.Content[i], n.Content[i+1])
	}
}

// entry reads one top-level entry, a pool.
func (p *parser) entry(k, v *yaml.Node) {
	if k.Kind != yaml.ScalarNode {
		p.fail(pos(k), KindStructure, "pool name is not a plain string")
		return
	}
	if v.Kind != yaml.MappingNode {
		p.fail(pos(v), KindStructure, "pool %q is not a mapping of keys", k.Value)
		return
	}
	pl := p.pool(k, v)
	if p.each == nil {
		p.cfg.Pools = append(p.cfg.Pools, pl)
		return
	}
	p.handed = true
	p.each(pl)
}

// storage returns an empty pool with room for nkeys keys and nvals values in all: new
// memory for Parse, the previous pool's for Walk. Appending within that room never moves
// the slices, so keys and values can point into them.
func (p *parser) storage(nkeys, nvals int) (*Pool, []Key, []Value) {
	if p.each == nil {
		return &Pool{Keys: make([]*Key, 0, nkeys)}, make([]Key, 0, nkeys), make([]Value, 0, nvals)
	}
	p.spare = Pool{Keys: slices.Grow(p.spare.Keys[:0], nkeys), Servers: p.spare.Servers[:0]}
	p.keys, p.vals = slices.Grow(p.keys[:0], nkeys), slices.Grow(p.vals[:0], nvals)
	return &p.spare, p.keys, p.vals
}

func (p *parser) pool(k, m *yaml.Node) *Pool {
	nvals := 0
	for i := 1; i < len(m.Content); i += 2 {
		nvals += max(1, len(m.Content[i].Content))
	}
	pl, slab, vals := p.storage(len(m.Content)/2, nvals)
	pl.Name, pl.Pos = k.Value, pos(k)
	seq := false
	for i := 0; i+1 < len(m.Content); i += 2 {
		kn, vn := m.Content[i], m.Content[i+1]
		if kn.Kind != yaml.ScalarNode {
			p.fail(pos(kn), KindStructure, "pool %q: a key is not a plain string (depth greater than 2)", pl.Name)
			continue
		}
		slab = append(slab, Key{Name: kn.Value, Pos: pos(kn)})
		key := &slab[len(slab)-1]
		switch vn.Kind {
		case yaml.ScalarNode:
			vals = append(vals, Value{Text: vn.Value, Pos: pos(vn)})
			key.Values = vals[len(vals)-1 : len(vals) : len(vals)]
		case yaml.SequenceNode:
			key.Seq = true
			if seq {
				p.fail(pos(vn), KindStructure, "pool %q has more than one sequence (only servers: is a list)", pl.Name)
			}
			seq = true
			start := len(vals)
			for _, item := range vn.Content {
				switch item.Kind {
				case yaml.ScalarNode:
					vals = append(vals, Value{Text: item.Value, Pos: pos(item)})
				case yaml.SequenceNode:
					p.fail(pos(item), KindStructure, "pool %q: %s: nested sequence (more than one sequence)", pl.Name, key.Name)
				case yaml.MappingNode:
					p.fail(pos(item), KindStructure, "pool %q: %s: mapping inside a list has a depth greater than 2", pl.Name, key.Name)
				}
			}
			key.Values = vals[start:len(vals):len(vals)]
		case yaml.MappingNode:
			p.fail(pos(vn), KindStructure, "pool %q: %s: nested mapping has a depth greater than 2", pl.Name, key.Name)
		}
		pl.Keys = append(pl.Keys, key)
		if key.Name == "servers" {
			pl.Servers = slices.Grow(pl.Servers, len(key.Values))
			for _, v := range key.Values {
				s, _ := ParseServer(v.Text)
				s.Pos = v.Pos
				pl.Servers = append(pl.Servers, s)
			}
		}
	}
	if !seq {
		p.fail(pl.Pos, KindStructure, "pool %q has no servers: list (nutcracker needs exactly one block sequence per pool)", pl.Name)
	}
	return pl
}

func sortErrors(es Errors) {
	slices.SortStableFunc(es, func(a, b *Error) int { return ComparePos(a.Pos, b.Pos) })
}

// ComparePos orders positions by line, then column.
func ComparePos(a, b Pos) int {
	if a.Line != b.Line {
		return cmp.Compare(a.Line, b.Line)
	}
	return cmp.Compare(a.Column, b.Column)
}
