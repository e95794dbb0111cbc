// Package strictyaml decodes patchctl's YAML files strictly (unknown keys and wrong types
// are errors) and reports every problem as "file:line: message".
package strictyaml

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strings"

	"go.yaml.in/yaml/v3"
)

// ErrEmpty reports a file without a YAML document.
var ErrEmpty = errors.New("empty file")

// Error lists the problems found in one file.
type Error struct {
	File     string
	Problems []Problem
}

// Problem is one error at a line (0 when unknown).
type Problem struct {
	Line int
	Msg  string
}

func (e *Error) Error() string {
	msgs := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		if p.Line > 0 {
			msgs[i] = fmt.Sprintf("%s:%d: %s", e.File, p.Line, p.Msg)
		} else {
			msgs[i] = fmt.Sprintf("%s: %s", e.File, p.Msg)
		}
	}
	return strings.Join(msgs, "\n")
}

var lineRE = regexp.MustCompile(`^(?:yaml: )?line (\d+): `)

// Decode decodes the single document in data into v, rejecting unknown keys.
func Decode(data []byte, file string, v any) error {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	err := dec.Decode(v)
	if err == nil {
		return nil
	}
	if err == io.EOF {
		return fmt.Errorf("%s: %w", file, ErrEmpty)
	}
	var msgs []string
	var te *yaml.TypeError
	if errors.As(err, &te) {
		msgs = te.Errors
	} else {
		msgs = []string{err.Error()}
	}
	e := &Error{File: file}
	for _, m := range msgs {
		p := Problem{Msg: m}
		if sm := lineRE.FindStringSubmatch(m); sm != nil {
			fmt.Sscan(sm[1], &p.Line)
			p.Msg = m[len(sm[0]):]
		}
		e.Problems = append(e.Problems, p)
	}
	return e
}

// At returns an error at a line of file, for checks made after decoding.
func At(file string, line int, format string, args ...any) error {
	return &Error{File: file, Problems: []Problem{{Line: line, Msg: fmt.Sprintf(format, args...)}}}
}

// ItemLines returns the line of each item of the sequence under a top-level key of data,
// so that checks made after decoding can name the line of the item they reject.
func ItemLines(data []byte, key string) []int {
	var doc yaml.Node
	if yaml.Unmarshal(data, &doc) != nil || len(doc.Content) == 0 {
		return nil
	}
	m := doc.Content[0]
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

// LineAt returns lines[i], or 0 when i is out of range.
func LineAt(lines []int, i int) int {
	if i < len(lines) {
		return lines[i]
	}
	return 0
}
