package nutconf

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// libyamlTree is the tree the YAML library builds, or nil when it finds anything but
// exactly one document.
func libyamlTree(data []byte) *yaml.Node {
	docs, err := yamlDocs(data)
	if err != nil || len(docs) != 1 {
		return nil
	}
	return docs[0]
}

// diffTree reports the first difference in what nutconf reads of a node: kind, style,
// value and the positions of scalars and sequences (those are what errors point at).
func diffTree(path string, fast, lib *yaml.Node) string {
	switch {
	case fast.Kind != lib.Kind:
		return fmt.Sprintf("%s: kind %v, library %v", path, fast.Kind, lib.Kind)
	case fast.Style != lib.Style:
		return fmt.Sprintf("%s: style %v, library %v", path, fast.Style, lib.Style)
	case fast.Value != lib.Value:
		return fmt.Sprintf("%s: value %q, library %q", path, fast.Value, lib.Value)
	case fast.Anchor != lib.Anchor || fast.Alias != nil || lib.Alias != nil:
		return path + ": anchor or alias"
	case (fast.Kind == yaml.ScalarNode || fast.Kind == yaml.SequenceNode) && (fast.Line != lib.Line || fast.Column != lib.Column):
		return fmt.Sprintf("%s: at %d:%d, library %d:%d", path, fast.Line, fast.Column, lib.Line, lib.Column)
	case len(fast.Content) != len(lib.Content):
		return fmt.Sprintf("%s: %d children, library %d", path, len(fast.Content), len(lib.Content))
	}
	for i := range fast.Content {
		if d := diffTree(fmt.Sprintf("%s/%d", path, i), fast.Content[i], lib.Content[i]); d != "" {
			return d
		}
	}
	return ""
}

// checkFastTree fails when the fast path accepts a file and builds other pools than the
// YAML library, or accepts one the library refuses.
func checkFastTree(t *testing.T, data []byte) bool {
	t.Helper()
	lib := libyamlTree(data)
	var diffs []string
	i := 0
	ok := fastPools(data, func(name, pool *yaml.Node) {
		// Compared as they come: the fast path reuses their memory for the next pool.
		switch {
		case lib == nil || len(lib.Content) != 1 || 2*i+1 >= len(lib.Content[0].Content):
			diffs = append(diffs, fmt.Sprintf("pool %d: not in the library's tree", i))
		default:
			root := lib.Content[0]
			diffs = append(diffs, diffTree(fmt.Sprintf("pool %d name", i), name, root.Content[2*i]),
				diffTree(fmt.Sprintf("pool %d", i), pool, root.Content[2*i+1]))
		}
		i++
	})
	if !ok {
		return false
	}
	if lib == nil {
		t.Fatalf("fast path accepts what the YAML library refuses:\n%s", data)
	}
	if len(lib.Content) != 1 || lib.Content[0].Kind != yaml.MappingNode || 2*i != len(lib.Content[0].Content) {
		t.Fatalf("fast path read %d pools, the library another tree:\n%s", i, data)
	}
	for _, d := range diffs {
		if d != "" {
			t.Fatalf("fast path differs from the YAML library: %s\n%s", d, data)
		}
	}
	return true
}

func TestFastTree(t *testing.T) {
	cases := []struct {
		conf string
		fast bool // whether the fast path must take it
	}{
		{"a:\n  listen: 127.0.0.1:22121\n  servers:\n   - 127.0.0.1:6379:1 one\n   - 127.0.0.1:6380:1\n", true},
		{"# top\na:\n  listen: /tmp/a.sock 0666   \n\n  # why\n  hash_tag: \"{}\"\n  servers:\n  - '127.0.0.1:6379:1 '\n  - \"h:1:1 \"\nb:\n    timeout: -1\n    servers:\n        - x:1:1\n", true},
		{"a:\n  servers:\n   - 127.0.0.1:6379:1\n  redis: true\n", true},
		{"a:\n  servers:\n   - a\n  other:\n    - b\n", true},
		{"a:\n  servers:\n  - a\n  redis: true\nb:\n  servers:\n  - b\n", true},
		{"a:\n  " + strings.Repeat("k", 1100) + ": v\n  servers:\n   - a\n", false},
		{"a:\n  k: v\n  k: w\n  servers:\n   - a\n", true},                       // duplicates are nutconf's to report
		{"a:\n  listen: 127.0.0.1:22121 # comment\n  servers:\n   - a\n", false}, // trailing comment
		{"a:\n  listen: x\n   y\n  servers:\n   - a\n", false},                   // multi-line plain scalar
		{"a:\n  listen:\n  servers:\n   - a\n", false},                           // empty value
		{"a:\n\tlisten: x\n", false},
		{"a:\n  servers: [a, b]\n", false},
		{"a: &x\n  servers:\n   - a\n", false},
		{"---\na:\n  servers:\n   - a\n", false},
		{"a:\n  servers:\n   - a\n...\n", false},
		{"a:\n  k: \"x\\ty\"\n  servers:\n   - a\n", false},
		{"a:\n  k: 'it''s'\n  servers:\n   - a\n", false},
		{"a:\n  k: !!str x\n  servers:\n   - a\n", false},
		{"a:\n  servers:\n   -\n", false},
		{"a:\n  servers:\n   - a\n  - b\n", false},
		{"a:\n", false},
		{"", false},
		{"a:\n  k: x: y\n", false},
		{"a:\n  k: \u00e9\n", false},
	}
	for _, c := range cases {
		if got := checkFastTree(t, []byte(c.conf)); got != c.fast {
			t.Errorf("fast path taken = %v, want %v for\n%s", got, c.fast, c.conf)
		}
	}
}

// TestFastTreeFiles: the repository's own example configurations and a generated large one
// take the fast path and give the YAML library's tree.
func TestFastTreeFiles(t *testing.T) {
	var b strings.Builder
	for p := range 50 {
		fmt.Fprintf(&b, "pool%d:\n  listen: 127.0.0.1:%d\n  redis: true\n  servers:\n", p, 20000+p)
		for s := range 20 {
			fmt.Fprintf(&b, "   - 127.0.0.%d:%d:1 p%d-s%d\n", p+1, 6379+s, p, s)
		}
	}
	if !checkFastTree(t, []byte(b.String())) {
		t.Error("the generated configuration does not take the fast path")
	}
	data, err := os.ReadFile(filepath.Join("testdata", "full.yml"))
	if err != nil {
		t.Fatal(err)
	}
	checkFastTree(t, data)
}

func FuzzFastTree(f *testing.F) {
	addSeeds(f)
	f.Fuzz(func(t *testing.T, data []byte) { checkFastTree(t, data) })
}

// TestFastPathGivesUpLate: a file that leaves the plain form after some pools were read is
// read again, whole, by the YAML library: nothing is counted twice.
func TestFastPathGivesUpLate(t *testing.T) {
	conf := "a:\n  servers:\n   - h:1:1\nb:\n  servers:\n   - h:2:1\n  other:\n   - x\nc:\n  listen: y # a comment\n  servers:\n   - h:3:1\n"
	if fastPools([]byte(conf), func(_, _ *yaml.Node) {}) {
		t.Fatal("the fast path took a trailing comment")
	}
	cfg, err := Parse("late.yml", []byte(conf))
	var errs Errors
	if !errors.As(err, &errs) || len(errs) != 1 || errs[0].Pos != (Pos{8, 4}) {
		t.Errorf("errors = %v, want one: the second sequence of b at 8:4", err)
	}
	var names []string
	for _, p := range cfg.Pools {
		names = append(names, p.Name)
	}
	if strings.Join(names, ",") != "a,b,c" {
		t.Errorf("pools = %v", names)
	}
}

// TestWalk: Walk hands over the pools Parse keeps, in order, with the same error, also when
// the fast path gives up after some pools (restart voids them) and for the YAML library's
// files; and it reuses one pool's memory.
func TestWalk(t *testing.T) {
	tests := []struct {
		name     string
		conf     string
		restarts int
	}{
		{"plain", "a:\n  listen: l:1\n  servers:\n   - h:1:1\n   - h:2:1 n\nb:\n  hash: md5\n  servers:\n   - /s:1\n", 0},
		{"gives up late", "a:\n  servers:\n   - h:1:1\nb:\n  servers:\n   - h:2:1\n  other:\n   - x\nc:\n  listen: y # a comment\n  servers:\n   - h:3:1\n", 1},
		{"library from the start", "a: {listen: l:1, servers: [h:1:1]}\n", 0},
		{"syntax error", "a:\n  servers:\n   - h:1:1\nb: [\n", 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if restarts := checkWalk(t, []byte(tt.conf)); restarts != tt.restarts {
				t.Errorf("%d restarts, want %d", restarts, tt.restarts)
			}
		})
	}
}

func FuzzWalk(f *testing.F) {
	addSeeds(f)
	f.Fuzz(func(t *testing.T, data []byte) { checkWalk(t, data) })
}

// checkWalk fails unless Walk hands over what Parse keeps, reusing one pool; it returns
// how many times Walk restarted.
func checkWalk(t *testing.T, data []byte) (restarts int) {
	t.Helper()
	want, wantErr := Parse("w.yml", data)
	var got []string
	var first *Pool
	err := Walk("w.yml", data, func(p *Pool) {
		got = append(got, describePool(p)) // now: the next pool overwrites it
		if first == nil {
			first = p
		} else if p != first {
			t.Error("Walk allocated a second pool instead of reusing the first")
		}
	}, func() {
		restarts++
		got = nil
	})
	var wantPools []string
	for _, p := range want.Pools {
		wantPools = append(wantPools, describePool(p))
	}
	if fmt.Sprint(err) != fmt.Sprint(wantErr) {
		t.Errorf("error %v, Parse's %v", err, wantErr)
	}
	if strings.Join(got, "\n") != strings.Join(wantPools, "\n") {
		t.Errorf("pools:\n%s\nParse's:\n%s", strings.Join(got, "\n"), strings.Join(wantPools, "\n"))
	}
	return restarts
}

// describePool renders everything a pool holds, its keys' contents included.
func describePool(p *Pool) string {
	s := fmt.Sprintf("%s@%v servers %+v keys", p.Name, p.Pos, p.Servers)
	for _, k := range p.Keys {
		s += fmt.Sprintf(" %+v", *k)
	}
	return s
}
