package lint

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/url"
	"path/filepath"
	"strings"

	"github.com/hashicorp/go-version"

	"github.com/patchctl/patchctl/nutconf"
)

// Report collects the findings of several files for one target version and writes them
// out. A CLI builds one, calls AddFile per argument and picks a writer:
//
//	r := lint.NewReport(target)
//	for _, f := range files { if err := r.AddFile(f); err != nil { … } }
//	if err := r.Write(os.Stdout, format); err != nil { … } // text, json or sarif
//	if r.HasErrors() { exit 1 }
type Report struct {
	Target   *version.Version
	Findings []Finding
}

// NewReport starts a report for the target version (nil = Newest).
func NewReport(target *version.Version) *Report {
	if target == nil {
		target = Newest()
	}
	return &Report{Target: target}
}

// Add lints data under the given file name.
func (r *Report) Add(filename string, data []byte) {
	r.Findings = append(r.Findings, Check(filename, data, r.Target)...)
}

// AddFile reads and lints a file. A file that cannot be read is an error finding (rule
// "read") and the returned error, so that the other files' findings are still reported.
func (r *Report) AddFile(path string) error {
	data, err := nutconf.ReadFile(path)
	if err != nil {
		msg := err.Error()
		var pe *fs.PathError
		if errors.As(err, &pe) {
			msg = pe.Err.Error()
		}
		r.Findings = append(r.Findings, Finding{File: path, Line: 1, Column: 1, Severity: SeverityError, Rule: RuleRead, Message: "cannot read the file: " + msg})
		return err
	}
	r.Add(path, data)
	return nil
}

// HasErrors reports whether nutcracker would refuse any of the files.
func (r *Report) HasErrors() bool { return HasErrors(r.Findings) }

// Counts returns the number of errors and warnings.
func (r *Report) Counts() (errs, warns int) {
	for _, f := range r.Findings {
		if f.Severity == SeverityError {
			errs++
		} else {
			warns++
		}
	}
	return errs, warns
}

// Formats are the output formats Write knows, the first the default.
var Formats = []string{"text", "json", "sarif"}

// ErrUnknownFormat is returned by Write for a format outside Formats.
var ErrUnknownFormat = errors.New("unknown output format")

// Write writes the report in the named format ("" = text).
func (r *Report) Write(w io.Writer, format string) error {
	switch format {
	case "", "text":
		return r.WriteText(w)
	case "json":
		return r.WriteJSON(w)
	case "sarif":
		return r.WriteSARIF(w)
	}
	return fmt.Errorf("%w %q (want %s)", ErrUnknownFormat, format, strings.Join(Formats, ", "))
}

// WriteText writes one "file:line:col: severity: rule: message" line per finding.
func (r *Report) WriteText(w io.Writer) error {
	for _, f := range r.Findings {
		if _, err := fmt.Fprintln(w, f.String()); err != nil {
			return fmt.Errorf("write findings: %w", err)
		}
	}
	return nil
}

type jsonReport struct {
	Target   string    `json:"target"`
	Errors   int       `json:"errors"`
	Warnings int       `json:"warnings"`
	Findings []Finding `json:"findings"`
}

// WriteJSON writes the findings as one JSON object.
func (r *Report) WriteJSON(w io.Writer) error {
	errs, warns := r.Counts()
	out := jsonReport{Target: r.Target.String(), Errors: errs, Warnings: warns, Findings: r.Findings}
	if out.Findings == nil {
		out.Findings = []Finding{}
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(out); err != nil {
		return fmt.Errorf("write json findings: %w", err)
	}
	return nil
}

// SARIF 2.1.0, the subset code-scanning tools read.
type (
	sarifLog struct {
		Schema  string     `json:"$schema"`
		Version string     `json:"version"`
		Runs    []sarifRun `json:"runs"`
	}
	sarifRun struct {
		Tool    sarifTool     `json:"tool"`
		Results []sarifResult `json:"results"`
	}
	sarifTool struct {
		Driver sarifDriver `json:"driver"`
	}
	sarifDriver struct {
		Name  string      `json:"name"`
		Rules []sarifRule `json:"rules"`
	}
	sarifRule struct {
		ID                   string       `json:"id"`
		Name                 string       `json:"name"`
		ShortDescription     sarifMessage `json:"shortDescription"`
		FullDescription      sarifMessage `json:"fullDescription"`
		DefaultConfiguration struct {
			Level string `json:"level"`
		} `json:"defaultConfiguration"`
	}
	sarifMessage struct {
		Text string `json:"text"`
	}
	sarifResult struct {
		RuleID    string          `json:"ruleId"`
		RuleIndex int             `json:"ruleIndex"`
		Level     string          `json:"level"`
		Message   sarifMessage    `json:"message"`
		Locations []sarifLocation `json:"locations"`
	}
	sarifLocation struct {
		PhysicalLocation struct {
			ArtifactLocation struct {
				URI string `json:"uri"`
			} `json:"artifactLocation"`
			Region struct {
				StartLine   int `json:"startLine"`
				StartColumn int `json:"startColumn"`
			} `json:"region"`
		} `json:"physicalLocation"`
	}
)

const sarifSchema = "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json"

// sarifURI turns a file name into a URI reference: relative names stay relative (code
// scanning resolves them against the repository root), absolute ones become file URIs.
func sarifURI(name string) string {
	u := url.URL{Path: filepath.ToSlash(name)}
	if filepath.IsAbs(name) {
		u.Scheme = "file"
		if !strings.HasPrefix(u.Path, "/") {
			u.Path = "/" + u.Path // Windows drive letters
		}
	}
	return u.String()
}

// WriteSARIF writes a SARIF 2.1.0 log with every rule and one result per finding. File
// names are written as URIs with forward slashes, as code scanning expects.
func (r *Report) WriteSARIF(w io.Writer) error {
	driver := sarifDriver{Name: "patchctl-lint"}
	index := map[string]int{}
	for i, rule := range rules {
		sr := sarifRule{ID: rule.ID, Name: rule.ID, ShortDescription: sarifMessage{rule.Description},
			FullDescription: sarifMessage{rule.Description}}
		sr.DefaultConfiguration.Level = string(rule.Severity)
		driver.Rules = append(driver.Rules, sr)
		index[rule.ID] = i
	}
	results := make([]sarifResult, 0, len(r.Findings))
	for _, f := range r.Findings {
		res := sarifResult{RuleID: f.Rule, RuleIndex: index[f.Rule], Level: string(f.Severity),
			Message: sarifMessage{fmt.Sprintf("%s (nutcracker %s)", f.Message, r.Target)}}
		var loc sarifLocation
		loc.PhysicalLocation.ArtifactLocation.URI = sarifURI(f.File)
		loc.PhysicalLocation.Region.StartLine = f.Line
		loc.PhysicalLocation.Region.StartColumn = f.Column
		res.Locations = []sarifLocation{loc}
		results = append(results, res)
	}
	log := sarifLog{Schema: sarifSchema, Version: "2.1.0", Runs: []sarifRun{{Tool: sarifTool{Driver: driver}, Results: results}}}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(log); err != nil {
		return fmt.Errorf("write sarif: %w", err)
	}
	return nil
}
