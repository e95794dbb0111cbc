// Package nutconf parses nutcracker.yml the way nutcracker (twemproxy) does: the same
// restricted YAML (one document, block style only, no anchors, aliases or tags, two levels
// of mappings and one sequence per pool), every scalar a string, and server lines split
// from the right. Every key and value keeps its line and column so that callers can point
// at them. Version-specific validation lives in the lint package.
package nutconf

import (
	"fmt"
	"strings"

	"github.com/patchctl/patchctl/internal/readfile"
)

// Pos is a 1-based line and column in the configuration file.
type Pos struct {
	Line   int
	Column int
}

func (p Pos) String() string { return fmt.Sprintf("%d:%d", p.Line, p.Column) }

// MaxFileSize caps a nutcracker.yml patchctl reads: a thousand pools of twenty servers
// each take under 1 MiB.
const MaxFileSize = 16 << 20

// ReadFile reads the nutcracker.yml at path, refusing one larger than MaxFileSize.
func ReadFile(path string) ([]byte, error) { return readfile.Read(path, MaxFileSize) }

// Kind classifies a problem that makes nutcracker refuse the file before it looks at values.
type Kind string

const (
	// KindSyntax: libyaml cannot scan or parse the file.
	KindSyntax Kind = "yaml-syntax"
	// KindDocument: the file does not hold exactly one YAML document.
	KindDocument Kind = "yaml-document"
	// KindToken: a YAML token nutcracker disallows (directives, ---, ..., flow style,
	// anchors, aliases, tags).
	KindToken Kind = "yaml-token"
	// KindStructure: the document is not a mapping of pools, each a mapping of keys with
	// exactly one block sequence.
	KindStructure Kind = "yaml-structure"
)

// Error is one problem in a configuration file, with its position.
type Error struct {
	File string
	Pos  Pos
	Kind Kind
	Msg  string
}

func (e *Error) Error() string {
	return fmt.Sprintf("%s:%d:%d: %s", e.File, e.Pos.Line, e.Pos.Column, e.Msg)
}

// Errors is every structural problem found in one file, in file order.
type Errors []*Error

func (es Errors) Error() string {
	msgs := make([]string, len(es))
	for i, e := range es {
		msgs[i] = e.Error()
	}
	return strings.Join(msgs, "\n")
}

// Unwrap lets errors.As find each *Error.
func (es Errors) Unwrap() []error {
	out := make([]error, len(es))
	for i, e := range es {
		out[i] = e
	}
	return out
}

// Config is a parsed nutcracker.yml.
type Config struct {
	File  string
	Pools []*Pool // in file order, duplicates included
}

// Pool returns the first pool with the given name, or nil.
func (c *Config) Pool(name string) *Pool {
	for _, p := range c.Pools {
		if p.Name == name {
			return p
		}
	}
	return nil
}

// Value is one scalar as nutcracker sees it: the text after YAML unquoting.
type Value struct {
	Text string
	Pos  Pos
}

// Key is one "key: value" entry of a pool. A key whose value is a block sequence has one
// Value per item; nutcracker calls the key's handler once per item.
type Key struct {
	Name   string
	Pos    Pos
	Values []Value
	Seq    bool
}

// Pool is one top-level entry of the file.
type Pool struct {
	Name    string
	Pos     Pos
	Keys    []*Key   // in file order, duplicates included
	Servers []Server // from every value of every "servers" key, in file order
}

// Key returns the first entry with the given name, or nil.
func (p *Pool) Key(name string) *Key {
	for _, k := range p.Keys {
		if k.Name == name {
			return k
		}
	}
	return nil
}

// Value returns the first value of the first entry with the given name.
func (p *Pool) Value(name string) (Value, bool) {
	k := p.Key(name)
	if k == nil || len(k.Values) == 0 {
		return Value{}, false
	}
	return k.Values[0], true
}

func (p *Pool) text(name string) (string, bool) {
	v, ok := p.Value(name)
	return v.Text, ok
}
