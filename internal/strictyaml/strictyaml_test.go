package strictyaml_test

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/patchctl/patchctl/internal/strictyaml"
)

type item struct {
	N int    `yaml:"n"`
	S string `yaml:"s"`
}

type doc struct {
	Items   []item        `yaml:"items"`
	Timeout time.Duration `yaml:"timeout"`
	On      bool          `yaml:"on"`
	Tags    []string      `yaml:"tags"`
	Nested  struct {
		Port uint16 `yaml:"port"`
	} `yaml:"nested"`
}

// TestProblemsNameKeyAndLine: every problem names its line and key path in words, never a
// Go type name.
func TestProblemsNameKeyAndLine(t *testing.T) {
	cases := []struct {
		name, in string
		want     []string
	}{
		{"unknown key at the top", "colour: blue\n", []string{`f.yml:1: unknown key "colour"`}},
		{"unknown key in a list item", "items:\n  - n: 1\n  - n: 3\n    t: z\n", []string{`f.yml:4: items[1]: unknown key "t"`}},
		{"wrong scalar in a list item", "items:\n  - n: 1\n  - n: x\n", []string{`f.yml:3: items[1].n: want a whole number, not "x"`}},
		{"duration", "timeout: fast\n", []string{`f.yml:1: timeout: want a duration such as 30s, 5m or 1h30m, not "fast"`}},
		{"bool", "on: maybe\n", []string{`f.yml:1: on: want true or false, not "maybe"`}},
		{"negative port", "nested:\n  port: -1\n", []string{`f.yml:2: nested.port: want a whole number, 0 or more, not "-1"`}},
		{"list wanted", "tags: one\n", []string{`f.yml:1: tags: want a list, not "one"`}},
		{"mapping given for a scalar", "timeout:\n  a: 1\n", []string{`f.yml:2: timeout: want a duration such as 30s, 5m or 1h30m, not a mapping`}},
		{"several problems", "colour: blue\ntimeout: fast\n", []string{`f.yml:1: unknown key "colour"`, `f.yml:2: timeout: want a duration`}},
		{"duplicate key", "on: true\non: false\n", []string{`f.yml:2: key "on" appears twice (first on line 1)`}},
		{"second document", "on: true\n---\ncolour: blue\n", []string{`f.yml:2: a second YAML document`}},
		{"syntax", "items:\n  - n: [1\n", []string{`f.yml:1: not valid YAML:`}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var d doc
			err := strictyaml.Decode([]byte(c.in), "f.yml", &d)
			var se *strictyaml.Error
			if !errors.As(err, &se) {
				t.Fatalf("Decode = %v, want a *strictyaml.Error", err)
			}
			lines := strings.Split(err.Error(), "\n")
			if len(lines) != len(c.want) {
				t.Fatalf("got %d problems, want %d:\n%s", len(lines), len(c.want), err)
			}
			for i, w := range c.want {
				if !strings.HasPrefix(lines[i], w) {
					t.Errorf("problem %d = %q, want prefix %q", i, lines[i], w)
				}
				if strings.Contains(lines[i], "time.Duration") || strings.Contains(lines[i], "strictyaml_test") || strings.Contains(lines[i], "!!") {
					t.Errorf("problem %d names Go or YAML internals: %q", i, lines[i])
				}
			}
		})
	}
}

func TestParseDocLinesAndEmpty(t *testing.T) {
	in := "items:\n  - n: 1\n  - n: 2\n    s: y\n  - n: 3\nnested:\n  port: 7\n"
	var d doc
	doc, err := strictyaml.Parse([]byte(in), "f.yml", &d)
	if err != nil || len(d.Items) != 3 || d.Nested.Port != 7 {
		t.Fatalf("Parse = %v, %+v", err, d)
	}
	if got := doc.ItemLines("items"); !slices.Equal(got, []int{2, 3, 5}) {
		t.Errorf("ItemLines = %v", got)
	}
	if got := doc.ItemLines("other"); got != nil {
		t.Errorf("ItemLines(other) = %v", got)
	}
	for path, want := range map[string]int{"items[1].s": 4, "nested.port": 7, "nested.missing": 6, "absent": 0} {
		if got := doc.Line(path); got != want {
			t.Errorf("Line(%s) = %d, want %d", path, got, want)
		}
	}
	if strictyaml.LineAt([]int{4}, 0) != 4 || strictyaml.LineAt([]int{4}, 1) != 0 {
		t.Error("LineAt")
	}
	for _, empty := range []string{"", "# only a comment\n"} {
		doc, err := strictyaml.Parse([]byte(empty), "f.yml", &d)
		if !errors.Is(err, strictyaml.ErrEmpty) || err.Error() != "f.yml: empty file" || doc == nil || doc.Line("x") != 0 {
			t.Errorf("empty %q: %v", empty, err)
		}
	}
	if e := strictyaml.At("f.yml", 0, "no %s", "hosts"); e.Error() != "f.yml: no hosts" {
		t.Errorf("At = %v", e)
	}
}

// FuzzDecode: any input gives a value or a *strictyaml.Error (or ErrEmpty), never a panic.
func FuzzDecode(f *testing.F) {
	for _, s := range []string{"items:\n  - n: 1\n", "timeout: 5s\non: true\n", "a: [\n", "x: 1\n---\ny: 2\n", "nested: {port: 70000}\n"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		var d doc
		err := strictyaml.Decode([]byte(in), "f.yml", &d)
		var se *strictyaml.Error
		if err != nil && !errors.As(err, &se) && !errors.Is(err, strictyaml.ErrEmpty) {
			t.Fatalf("Decode(%q) = %T %v", in, err, err)
		}
	})
}
