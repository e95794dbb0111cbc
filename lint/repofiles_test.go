package lint

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// TestPreCommitHook checks the hook definition at the repository root: its entry runs
// this linter and its file pattern (a Python regexp, here also valid RE2) picks
// nutcracker configurations only.
func TestPreCommitHook(t *testing.T) {
	data, err := os.ReadFile(filepath.Join("..", ".pre-commit-hooks.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var hooks []struct {
		ID, Name, Entry, Language, Files, Exclude string
	}
	if err := yaml.Unmarshal(data, &hooks); err != nil {
		t.Fatal(err)
	}
	if len(hooks) != 1 || hooks[0].ID != "patchctl-lint" || hooks[0].Entry != "patchctl lint" || hooks[0].Language != "golang" {
		t.Fatalf("hooks = %+v", hooks)
	}
	re, err := regexp.Compile(hooks[0].Files)
	if err != nil {
		t.Fatal(err)
	}
	exclude, err := regexp.Compile(hooks[0].Exclude)
	if err != nil {
		t.Fatal(err)
	}
	for path, want := range map[string]bool{
		"nutcracker.yml":                        true,
		"deploy/nutcracker.yaml":                true,
		"etc/nutcracker/nutcracker-cache.yml":   true,
		"etc/nutcracker/pools.yml":              true,
		"configs/patchctl.yml":                  false,
		"nutcracker.yml.bak":                    false,
		"docs/nutcracker.md":                    false,
		"configs/ci/nutcracker-lint-notes.txt":  false,
		".github/workflows/nutcracker-lint.yml": false,
	} {
		if got := re.MatchString(path) && !exclude.MatchString(path); got != want {
			t.Errorf("hook runs on %q: %v, want %v", path, got, want)
		}
	}
}

// TestCIWorkflow checks the example workflow lints with SARIF output and uploads it.
func TestCIWorkflow(t *testing.T) {
	data, err := os.ReadFile(filepath.Join("..", "configs", "ci", "nutcracker-lint.yml"))
	if err != nil {
		t.Fatal(err)
	}
	var wf struct {
		Permissions map[string]string
		Jobs        map[string]struct {
			Steps []struct {
				Uses string
				Run  string
				With map[string]string
			}
		}
	}
	if err := yaml.Unmarshal(data, &wf); err != nil {
		t.Fatal(err)
	}
	if wf.Permissions["security-events"] != "write" {
		t.Error("upload-sarif needs security-events: write")
	}
	var linted, uploaded bool
	for _, s := range wf.Jobs["lint"].Steps {
		if strings.Contains(s.Run, "patchctl lint") && strings.Contains(s.Run, "-o sarif") && strings.Contains(s.Run, "> nutcracker-lint.sarif") {
			linted = true
		}
		if strings.HasPrefix(s.Uses, "github/codeql-action/upload-sarif@") && s.With["sarif_file"] == "nutcracker-lint.sarif" {
			uploaded = true
		}
	}
	if !linted || !uploaded {
		t.Errorf("workflow lints to SARIF: %v, uploads it: %v", linted, uploaded)
	}
}
