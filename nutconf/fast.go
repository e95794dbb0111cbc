package nutconf

import (
	"bytes"

	"go.yaml.in/yaml/v3"
)

// fastPools reads a file in the plain block form nutcracker configurations
// are almost always written in: pool names at column 1, "key: value" lines at one indent,
// "- item" lines under a key without a value, plain scalars of a conservative character
// set or quotes without escapes, whole-line comments. That is most of the cost of linting a
// large file, and libyaml's general scanner spends it on forms this one refuses. It calls
// emit with each pool's name and mapping, as the YAML library would build them, and reuses
// their memory afterwards: only one pool's tree is ever held. It returns false for anything
// else (tabs, trailing comments, multi-line scalars, flow style, anchors, tags, markers,
// empty values, non-ASCII…), maybe after emitting some pools; the caller then parses the
// whole file with the YAML library. The differential fuzz test holds both to the same tree
// for every file this one accepts.
func fastPools(data []byte, emit func(name, pool *yaml.Node)) bool {
	f := &fastParser{}
	var (
		name      *yaml.Node
		pool      *yaml.Node // the current pool's mapping
		pending   int        // index in pool.Content of a key's missing value: a sequence must follow
		seq       *yaml.Node // the sequence lines are being added to
		keyIndent int        // the current pool's key indent; 0 before its first key
		seqIndent int
	)
	line := 0
	for len(data) > 0 {
		line++
		var l []byte
		l, data, _ = bytes.Cut(data, []byte{'\n'})
		l = bytes.TrimRight(l, " ")
		for _, c := range l {
			if c < ' ' || c > '~' {
				return false
			}
		}
		rest := bytes.TrimLeft(l, " ")
		indent := len(l) - len(rest)
		switch {
		case len(rest) == 0 || rest[0] == '#':
			continue
		case indent == 0:
			if pending > 0 || (pool != nil && keyIndent == 0) {
				return false // an empty value
			}
			if pool != nil {
				emit(name, pool)
				f.slab = f.slab[:0]
			}
			k, v, ok := f.keyValue(rest, line, 1)
			if !ok || v != nil {
				return false
			}
			name, pool = k, f.node(yaml.MappingNode, line+1, 1) // placed at its first key, below
			keyIndent, seq = 0, nil
		case pool == nil:
			return false
		case rest[0] == '-':
			if len(rest) < 2 || rest[1] != ' ' {
				return false
			}
			switch {
			case pending > 0 && indent >= keyIndent:
				seq = f.node(yaml.SequenceNode, line, indent+1)
				pool.Content[pending] = seq
				pending, seqIndent = 0, indent
			case seq == nil || indent != seqIndent:
				return false
			}
			text := bytes.TrimLeft(rest[1:], " ")
			item, ok := f.scalar(text, line, len(l)-len(text)+1, false)
			if !ok {
				return false
			}
			seq.Content = append(seq.Content, item)
		default:
			if pending > 0 {
				return false
			}
			if keyIndent == 0 {
				keyIndent = indent
				pool.Line, pool.Column = line, indent+1
			}
			if indent != keyIndent {
				return false
			}
			k, v, ok := f.keyValue(rest, line, indent+1)
			if !ok {
				return false
			}
			pool.Content = append(pool.Content, k, v)
			if v == nil {
				pending = len(pool.Content) - 1
			}
			seq = nil
		}
	}
	if pending > 0 || pool == nil || keyIndent == 0 {
		return false
	}
	emit(name, pool)
	return true
}

// fastParser allocates nodes in blocks, reused from one pool to the next.
type fastParser struct{ slab []yaml.Node }

func (f *fastParser) node(kind yaml.Kind, line, col int) *yaml.Node {
	if len(f.slab) == cap(f.slab) {
		f.slab = make([]yaml.Node, 0, 1024)
	}
	f.slab = append(f.slab, yaml.Node{Kind: kind, Line: line, Column: col})
	return &f.slab[len(f.slab)-1]
}

// keyValue reads "key:" (v nil) or "key: value" starting at column col.
func (f *fastParser) keyValue(s []byte, line, col int) (k, v *yaml.Node, ok bool) {
	i := bytes.IndexByte(s, ':')
	if i <= 0 || i > 1000 { // libyaml refuses a key ("simple key") of over 1024 characters
		return nil, nil, false
	}
	k, ok = f.scalar(s[:i], line, col, true)
	if !ok {
		return nil, nil, false
	}
	after := s[i+1:]
	if len(after) == 0 {
		return k, nil, true
	}
	if after[0] != ' ' {
		return nil, nil, false
	}
	text := bytes.TrimLeft(after, " ")
	v, ok = f.scalar(text, line, col+len(s)-len(text), false)
	return k, v, ok
}

// scalar reads a whole scalar: plain, or quoted without escapes or quotes inside. A key
// must be plain and cannot hold ':'.
func (f *fastParser) scalar(s []byte, line, col int, key bool) (*yaml.Node, bool) {
	if len(s) == 0 {
		return nil, false
	}
	n := f.node(yaml.ScalarNode, line, col)
	switch q := s[0]; {
	case q == '"' || q == '\'':
		if key || len(s) < 2 || s[len(s)-1] != q || bytes.IndexByte(s[1:len(s)-1], q) >= 0 ||
			(q == '"' && bytes.IndexByte(s, '\\') >= 0) {
			return nil, false
		}
		n.Style = yaml.DoubleQuotedStyle
		if q == '\'' {
			n.Style = yaml.SingleQuotedStyle
		}
		n.Value = string(s[1 : len(s)-1])
		return n, true
	case !plainStart(s) || s[len(s)-1] == ' ': // the library trims a key's trailing spaces
		return nil, false
	}
	for i, c := range s {
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case c == '_', c == '.', c == '/', c == '-', c == '+', c == '~', c == '=', c == '@', c == ' ':
		case c == ':' && !key && i+1 < len(s) && s[i+1] != ' ':
		default:
			return nil, false
		}
	}
	n.Value = string(s)
	return n, true
}

// plainStart accepts a letter, digit, '_' or '/', or '-' before a digit: never a YAML
// indicator.
func plainStart(s []byte) bool {
	c := s[0]
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '_', c == '/':
		return true
	}
	return c == '-' && len(s) > 1 && '0' <= s[1] && s[1] <= '9'
}
