package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"
)

// emit writes v as indented JSON with -o json, or as the table the command draws.
func (e *Env) emit(v any, table func(w io.Writer)) error {
	if e.Output == "json" {
		enc := json.NewEncoder(e.Out)
		enc.SetIndent("", "  ")
		return enc.Encode(v)
	}
	tw := tabwriter.NewWriter(e.Out, 0, 4, 2, ' ', 0)
	table(tw)
	return tw.Flush()
}

// row writes one tab-separated table row.
func row(w io.Writer, cells ...any) {
	parts := make([]string, len(cells))
	for i, c := range cells {
		parts[i] = cell(c)
	}
	fmt.Fprintln(w, strings.Join(parts, "\t"))
}

func cell(c any) string {
	switch v := c.(type) {
	case time.Time:
		if v.IsZero() {
			return "-"
		}
		return v.UTC().Format("2006-01-02 15:04")
	case bool:
		if v {
			return "yes"
		}
		return "no"
	case string:
		if v == "" {
			return "-"
		}
		return v
	}
	return fmt.Sprint(c)
}
