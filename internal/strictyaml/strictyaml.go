// Package strictyaml is the one way patchctl decodes its YAML files (patchctl.yml, the
// inventory, the advisory feed): one document per file, unknown keys and wrong types are
// errors, and every problem is reported as "file:line: key.path: message" in words a person
// can act on, never in Go type names.
package strictyaml

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"go.yaml.in/yaml/v3"
)

// ErrEmpty reports a file without a YAML document.
var ErrEmpty = errors.New("empty file")

// Error lists the problems found in one file.
type Error struct {
	File     string
	Problems []Problem
}

// Problem is one error at a line (0 when unknown), about a key path (a.b[2].c) when known.
type Problem struct {
	Line  int
	Field string
	Msg   string
}

func (e *Error) Error() string {
	msgs := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		msgs[i] = Format(e.File, p)
	}
	return strings.Join(msgs, "\n")
}

// Format writes a problem in file as "file:line: key.path: message", leaving out the line
// and the key path when they are not known.
func Format(file string, p Problem) string {
	var b strings.Builder
	b.WriteString(file)
	if p.Line > 0 {
		fmt.Fprintf(&b, ":%d", p.Line)
	}
	b.WriteString(": ")
	if p.Field != "" {
		b.WriteString(p.Field + ": ")
	}
	b.WriteString(p.Msg)
	return b.String()
}

// Doc is a decoded file's node tree, to name the line of problems found after decoding.
type Doc struct {
	File string
	root *yaml.Node // the document's top node; nil for an empty file
}

// Decode decodes the single document in data into v, rejecting unknown keys.
func Decode(data []byte, file string, v any) error {
	_, err := Parse(data, file, v)
	return err
}

// Parse decodes the single document in data into v, rejecting unknown keys, wrong types and
// a second document. An empty file is ErrEmpty (wrapped), with v untouched and a usable Doc.
func Parse(data []byte, file string, v any) (*Doc, error) {
	doc := &Doc{File: file}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var root yaml.Node
	if err := dec.Decode(&root); err != nil {
		if errors.Is(err, io.EOF) {
			return doc, fmt.Errorf("%s: %w", file, ErrEmpty)
		}
		return nil, &Error{File: file, Problems: []Problem{syntaxProblem(err)}}
	}
	if len(root.Content) == 0 {
		return doc, fmt.Errorf("%s: %w", file, ErrEmpty)
	}
	doc.root = root.Content[0]
	var next yaml.Node
	switch err := dec.Decode(&next); {
	case err == nil:
		return nil, At(file, next.Line, "a second YAML document: %s must hold one document (remove the '---' line and what follows, or merge it into the first)", file)
	case !errors.Is(err, io.EOF):
		return nil, &Error{File: file, Problems: []Problem{syntaxProblem(err)}}
	}

	strict := yaml.NewDecoder(bytes.NewReader(data))
	strict.KnownFields(true)
	err := strict.Decode(v)
	if err == nil {
		return doc, nil
	}
	var te *yaml.TypeError
	if !errors.As(err, &te) {
		// An UnmarshalYAML of ours said why (and where, when it could).
		line, msg := splitLine(err.Error())
		return nil, &Error{File: file, Problems: []Problem{{Line: line, Msg: msg}}}
	}
	types := goTypes(reflect.TypeOf(v))
	e := &Error{File: file}
	for _, m := range te.Errors {
		e.Problems = append(e.Problems, doc.explain(m, types))
	}
	return nil, e
}

// lineMsg is the one place yaml.v3's message format is read: "line N: ...".
var lineMsg = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^(?:yaml: )?line (\d+): (.*)$`) })

func splitLine(msg string) (int, string) {
	m := lineMsg().FindStringSubmatch(msg)
	if m == nil {
		return 0, strings.TrimPrefix(msg, "yaml: ")
	}
	n, _ := strconv.Atoi(m[1])
	return n, m[2]
}

func syntaxProblem(err error) Problem {
	line, msg := splitLine(err.Error())
	return Problem{Line: line, Msg: "not valid YAML: " + msg}
}

// explain turns one of yaml.v3's type errors into a problem naming the key and what it wants.
func (d *Doc) explain(raw string, types map[string]reflect.Type) Problem {
	line, msg := splitLine(raw)
	if rest, ok := strings.CutPrefix(msg, "field "); ok {
		if key, _, ok := strings.Cut(rest, " not found in type "); ok {
			parent, _ := d.pathAt(line, key, true)
			return Problem{Line: line, Field: parent, Msg: fmt.Sprintf("unknown key %q", key)}
		}
	}
	if rest, ok := strings.CutPrefix(msg, "cannot unmarshal "); ok {
		// "!!str `fast` into time.Duration"
		tag, rest, _ := strings.Cut(rest, " ")
		value, goType := "", rest
		if v, after, ok := strings.Cut(strings.TrimPrefix(rest, "`"), "` into "); ok {
			value, goType = v, after
		} else {
			goType = strings.TrimPrefix(rest, "into ")
		}
		field, _ := d.pathAt(line, value, false)
		got := fmt.Sprintf("%q", value)
		if value == "" {
			got = describeTag(tag)
		}
		return Problem{Line: line, Field: field, Msg: fmt.Sprintf("want %s, not %s", describe(types[goType], goType), got)}
	}
	if rest, ok := strings.CutPrefix(msg, "mapping key "); ok {
		key, first, _ := strings.Cut(rest, " already defined at line ")
		return Problem{Line: line, Msg: fmt.Sprintf("key %s appears twice (first on line %s)", key, first)}
	}
	return Problem{Line: line, Msg: msg}
}

// describe says in words what a Go type accepts.
func describe(t reflect.Type, name string) string {
	if t == reflect.TypeOf(time.Duration(0)) {
		return "a duration such as 30s, 5m or 1h30m"
	}
	if t == nil {
		return "another kind of value"
	}
	switch t.Kind() {
	case reflect.Bool:
		return "true or false"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return "a whole number"
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "a whole number, 0 or more"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.String:
		return "a single value (a string)"
	case reflect.Slice, reflect.Array:
		return "a list"
	case reflect.Map, reflect.Struct:
		return "a mapping of keys to values"
	case reflect.Pointer:
		return describe(t.Elem(), name)
	}
	return "another kind of value"
}

func describeTag(tag string) string {
	switch tag {
	case "!!map":
		return "a mapping"
	case "!!seq":
		return "a list"
	case "!!null":
		return "nothing"
	}
	return strings.TrimPrefix(tag, "!!")
}

// goTypes maps the names yaml.v3 gives Go types (time.Duration, []string, config.Slack) to
// the types reachable from t, to describe them.
func goTypes(t reflect.Type) map[string]reflect.Type {
	out := map[string]reflect.Type{}
	var walk func(reflect.Type)
	walk = func(t reflect.Type) {
		if _, seen := out[t.String()]; seen {
			return
		}
		out[t.String()] = t
		switch t.Kind() {
		case reflect.Pointer, reflect.Slice, reflect.Array:
			walk(t.Elem())
		case reflect.Map:
			walk(t.Key())
			walk(t.Elem())
		case reflect.Struct:
			for i := range t.NumField() {
				if t.Field(i).IsExported() {
					walk(t.Field(i).Type)
				}
			}
		}
	}
	walk(t)
	return out
}

// pathAt finds the key path of the entry at line: with isKey, the mapping that holds key at
// that line (the path of its parent is returned); otherwise the entry whose scalar value is
// value (or any value) at that line.
func (d *Doc) pathAt(line int, s string, isKey bool) (string, bool) {
	var find func(n *yaml.Node, path string) (string, bool)
	find = func(n *yaml.Node, path string) (string, bool) {
		switch n.Kind {
		case yaml.MappingNode:
			for i := 0; i+1 < len(n.Content); i += 2 {
				k, v := n.Content[i], n.Content[i+1]
				p := join(path, k.Value)
				if isKey && k.Line == line && k.Value == s {
					return path, true
				}
				if !isKey && v.Line == line && (v.Kind == yaml.ScalarNode && v.Value == s || v.Kind != yaml.ScalarNode && s == "") {
					return p, true
				}
				if r, ok := find(v, p); ok {
					return r, true
				}
			}
		case yaml.SequenceNode:
			for i, c := range n.Content {
				p := fmt.Sprintf("%s[%d]", path, i)
				if !isKey && c.Kind == yaml.ScalarNode && c.Line == line && c.Value == s {
					return p, true
				}
				if r, ok := find(c, p); ok {
					return r, true
				}
			}
		case yaml.AliasNode:
			return "", false
		}
		return "", false
	}
	if d.root == nil {
		return "", false
	}
	return find(d.root, "")
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// Line finds the line of a key path (a.b[2].c); when the exact node is missing it returns
// the line of the deepest ancestor present, 0 for none.
func (d *Doc) Line(path string) int {
	if d == nil || d.root == nil {
		return 0
	}
	n := d.root
	line := 0
	for _, part := range strings.Split(path, ".") {
		name, idx := part, -1
		if i := strings.IndexByte(part, '['); i >= 0 && strings.HasSuffix(part, "]") {
			name = part[:i]
			idx, _ = strconv.Atoi(part[i+1 : len(part)-1])
		}
		var next *yaml.Node
		if n.Kind == yaml.MappingNode {
			for i := 0; i+1 < len(n.Content); i += 2 {
				if n.Content[i].Value == name {
					line = n.Content[i].Line
					next = n.Content[i+1]
					break
				}
			}
		}
		if next == nil {
			return line
		}
		n = next
		if idx >= 0 {
			if n.Kind != yaml.SequenceNode || idx >= len(n.Content) {
				return line
			}
			n = n.Content[idx]
			line = n.Line
		}
	}
	return line
}

// ItemLines returns the line of each item of the sequence under a top-level key, so that
// checks made after decoding can name the line of the item they reject.
func (d *Doc) ItemLines(key string) []int {
	if d == nil || d.root == nil || d.root.Kind != yaml.MappingNode {
		return nil
	}
	m := d.root
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			lines := make([]int, len(m.Content[i+1].Content))
			for j, it := range m.Content[i+1].Content {
				lines[j] = it.Line
			}
			return lines
		}
	}
	return nil
}

// At returns an error at a line of file, for checks made after decoding.
func At(file string, line int, format string, args ...any) error {
	return &Error{File: file, Problems: []Problem{{Line: line, Msg: fmt.Sprintf(format, args...)}}}
}

// LineAt returns lines[i], or 0 when i is out of range.
func LineAt(lines []int, i int) int {
	if i < len(lines) {
		return lines[i]
	}
	return 0
}
