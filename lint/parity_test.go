package lint

import (
	"bufio"
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/patchctl/patchctl/internal/testenv"
)

// TestParity runs every configuration of testdata/parity through the real `nutcracker -t`
// of each test version and through the linter for that version: the verdicts must agree.
// "# want <version|*>: rule…" lines name rules that must be among the findings.
func TestParity(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "parity", "*.yml"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 60 {
		t.Fatalf("parity corpus has %d files, want at least 60", len(files))
	}
	for _, v := range testenv.Versions {
		bin := testenv.Nutcracker(t, v)
		target, err := ParseVersion(v)
		if err != nil {
			t.Fatal(err)
		}
		for _, path := range files {
			t.Run(v+"/"+strings.TrimSuffix(filepath.Base(path), ".yml"), func(t *testing.T) {
				data, err := os.ReadFile(path)
				if err != nil {
					t.Fatal(err)
				}
				ctx, cancel := context.WithTimeout(context.Background(), testenv.WaitTimeout)
				defer cancel()
				ok, out, err := testenv.CheckConfig(ctx, bin, path)
				if err != nil {
					t.Fatalf("nutcracker -t: %v\n%s", err, out)
				}
				findings := Check(path, data, target)
				if ok == HasErrors(findings) {
					t.Errorf("nutcracker %s -t ok=%v (%s) but the linter found errors=%v:\n%s",
						v, ok, testenv.FirstLine(out), HasErrors(findings), render(findings))
				}
				for _, rule := range wantedRules(data, v) {
					if !hasRule(findings, rule) {
						t.Errorf("want rule %s among the findings:\n%s", rule, render(findings))
					}
				}
			})
		}
	}
}

func wantedRules(data []byte, v string) []string {
	var out []string
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		rest, ok := strings.CutPrefix(sc.Text(), "# want ")
		if !ok {
			continue
		}
		ver, rules, ok := strings.Cut(rest, ":")
		if ok && (ver == "*" || ver == v) {
			out = append(out, strings.Fields(rules)...)
		}
	}
	return out
}

func hasRule(fs []Finding, rule string) bool {
	for _, f := range fs {
		if f.Rule == rule {
			return true
		}
	}
	return false
}

func render(fs []Finding) string {
	var b strings.Builder
	for _, f := range fs {
		b.WriteString("  " + f.String() + "\n")
	}
	return b.String()
}
