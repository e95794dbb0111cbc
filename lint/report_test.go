package lint

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func testReport(t *testing.T) *Report {
	t.Helper()
	r := NewReport(nil)
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.yml")
	if err := os.WriteFile(bad, []byte(pool("  redis: True\n  client_connections: 3\n")), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := r.AddFile(bad); err != nil {
		t.Fatal(err)
	}
	r.Add("configs/good.yml", []byte(pool("")))
	if err := r.AddFile(filepath.Join(dir, "missing.yml")); err == nil {
		t.Fatal("AddFile of a missing file succeeded")
	}
	return r
}

func TestReportText(t *testing.T) {
	r := testReport(t)
	var b bytes.Buffer
	if err := r.WriteText(&b); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(b.String()), "\n")
	if len(lines) != 3 || !strings.HasSuffix(lines[0], `:4:10: error: invalid-bool: redis: "True" is not "true" or "false" (lowercase, exactly)`) ||
		!strings.Contains(lines[1], ":5:3: warning: client-connections-ignored: ") ||
		!strings.HasSuffix(lines[2], "missing.yml:1:1: error: read: cannot read the file: no such file or directory") {
		t.Errorf("text output:\n%s", b.String())
	}
	if !r.HasErrors() {
		t.Error("HasErrors = false")
	}
	if e, w := r.Counts(); e != 2 || w != 1 {
		t.Errorf("Counts = %d, %d", e, w)
	}
}

func TestReportJSON(t *testing.T) {
	r := testReport(t)
	var b bytes.Buffer
	if err := r.WriteJSON(&b); err != nil {
		t.Fatal(err)
	}
	var got struct {
		Target           string
		Errors, Warnings int
		Findings         []Finding
	}
	if err := json.Unmarshal(b.Bytes(), &got); err != nil {
		t.Fatalf("%v\n%s", err, b.String())
	}
	if got.Target != "0.5.0" || got.Errors != 2 || got.Warnings != 1 || len(got.Findings) != 3 ||
		got.Findings[0].Rule != RuleInvalidBool || got.Findings[0].Line != 4 || got.Findings[0].Column != 10 {
		t.Errorf("json report: %+v", got)
	}

	b.Reset()
	if err := NewReport(nil).WriteJSON(&b); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.String(), `"findings": []`) {
		t.Errorf("empty report must have an empty findings array:\n%s", b.String())
	}
}

// TestReportSARIF checks the fields code-scanning tools require of a SARIF 2.1.0 log.
func TestReportSARIF(t *testing.T) {
	for in, want := range map[string]string{
		"configs/nutcracker.yml":  "configs/nutcracker.yml",
		"/etc/nutcracker/a b.yml": "file:///etc/nutcracker/a%20b.yml",
		"dir/a#1.yml":             "dir/a%231.yml",
	} {
		if got := sarifURI(in); got != want {
			t.Errorf("sarifURI(%q) = %q, want %q", in, got, want)
		}
	}
	for _, r := range []*Report{testReport(t), NewReport(nil)} {
		var b bytes.Buffer
		if err := r.WriteSARIF(&b); err != nil {
			t.Fatal(err)
		}
		var log struct {
			Schema  string `json:"$schema"`
			Version string
			Runs    []struct {
				Tool struct {
					Driver struct {
						Name  string
						Rules []struct {
							ID                   string
							ShortDescription     struct{ Text string }
							DefaultConfiguration struct{ Level string }
						}
					}
				}
				Results []struct {
					RuleID    string
					RuleIndex int
					Level     string
					Message   struct{ Text string }
					Locations []struct {
						PhysicalLocation struct {
							ArtifactLocation struct{ URI string }
							Region           struct{ StartLine, StartColumn int }
						}
					}
				}
			}
		}
		if err := json.Unmarshal(b.Bytes(), &log); err != nil {
			t.Fatalf("%v\n%s", err, b.String())
		}
		if log.Version != "2.1.0" || !strings.Contains(log.Schema, "sarif-schema-2.1.0") || len(log.Runs) != 1 {
			t.Fatalf("sarif header: %+v", log)
		}
		run := log.Runs[0]
		if run.Tool.Driver.Name == "" || len(run.Tool.Driver.Rules) != len(Rules()) {
			t.Fatalf("driver: %+v", run.Tool.Driver)
		}
		for _, rule := range run.Tool.Driver.Rules {
			if rule.ID == "" || rule.ShortDescription.Text == "" || (rule.DefaultConfiguration.Level != "error" && rule.DefaultConfiguration.Level != "warning") {
				t.Errorf("rule %+v", rule)
			}
		}
		if !strings.Contains(b.String(), `"results": [`) {
			t.Error("results must be an array, even when empty")
		}
		if len(run.Results) != len(r.Findings) {
			t.Fatalf("%d results for %d findings", len(run.Results), len(r.Findings))
		}
		for i, res := range run.Results {
			f := r.Findings[i]
			loc := res.Locations[0].PhysicalLocation
			if res.RuleID != f.Rule || run.Tool.Driver.Rules[res.RuleIndex].ID != f.Rule || res.Level != string(f.Severity) ||
				res.Message.Text == "" || loc.ArtifactLocation.URI != "file://"+filepath.ToSlash(f.File) ||
				loc.Region.StartLine != f.Line || loc.Region.StartColumn != f.Column {
				t.Errorf("result %+v for finding %s", res, f)
			}
		}
	}
}

func TestReportWriteFormat(t *testing.T) {
	r := testReport(t)
	for _, format := range append([]string{""}, Formats...) {
		var got, want bytes.Buffer
		if err := r.Write(&got, format); err != nil {
			t.Fatal(err)
		}
		switch format {
		case "", "text":
			_ = r.WriteText(&want)
		case "json":
			_ = r.WriteJSON(&want)
		case "sarif":
			_ = r.WriteSARIF(&want)
		}
		if got.String() != want.String() || got.Len() == 0 {
			t.Errorf("Write(%q) differs from its writer", format)
		}
	}
	if err := r.Write(&bytes.Buffer{}, "xml"); !errors.Is(err, ErrUnknownFormat) {
		t.Errorf("Write(xml) = %v", err)
	}
}
