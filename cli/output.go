package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"reflect"
	"strings"
	"text/tabwriter"
	"time"
)

// emit writes v as indented JSON with -o json, or as the table the command draws.
func (e *Env) emit(v any, table func(w io.Writer)) error {
	if e.Output == "json" {
		return e.writeJSON(v)
	}
	tw := tabwriter.NewWriter(e.Out, 0, 4, 2, ' ', 0)
	table(tw)
	return tw.Flush()
}

// writeJSON writes v as indented JSON, every nil list as [] and every nil map as {} (see
// docs/json.md): scripts iterate lists without checking for null.
func (e *Env) writeJSON(v any) error {
	enc := json.NewEncoder(e.Out)
	enc.SetIndent("", "  ")
	return enc.Encode(noNulls(v))
}

// noNulls returns v with every nil slice and map, at any depth, made empty. Values reached
// through slices, maps and pointers are changed in place: emit is a command's last use of them.
func noNulls(v any) any {
	if v == nil {
		return v
	}
	rv := reflect.ValueOf(v)
	cp := reflect.New(rv.Type()).Elem()
	cp.Set(rv)
	fillNil(cp, 0)
	return cp.Interface()
}

// fillNil replaces nil slices and maps in the settable value v; depth bounds recursive types.
func fillNil(v reflect.Value, depth int) {
	if depth > 32 {
		return
	}
	switch v.Kind() {
	case reflect.Slice:
		if v.IsNil() {
			if v.CanSet() && v.Type().Elem().Kind() != reflect.Uint8 {
				v.Set(reflect.MakeSlice(v.Type(), 0, 0))
			}
			return
		}
		for i := range v.Len() {
			fillNil(v.Index(i), depth+1)
		}
	case reflect.Map:
		if v.IsNil() {
			if v.CanSet() {
				v.Set(reflect.MakeMap(v.Type()))
			}
			return
		}
		// Map values are not addressable: copy, fill, store back.
		iter := v.MapRange()
		for iter.Next() {
			val := reflect.New(iter.Value().Type()).Elem()
			val.Set(iter.Value())
			fillNil(val, depth+1)
			v.SetMapIndex(iter.Key(), val)
		}
	case reflect.Pointer:
		if !v.IsNil() {
			fillNil(v.Elem(), depth+1)
		}
	case reflect.Interface:
		if !v.IsNil() && v.CanSet() {
			v.Set(reflect.ValueOf(noNulls(v.Elem().Interface())))
		}
	case reflect.Struct:
		t := v.Type()
		for i := range v.NumField() {
			if t.Field(i).IsExported() {
				fillNil(v.Field(i), depth+1)
			}
		}
	}
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

// shortDuration drops zero units: 4h, 1h30m, 30m, 0s.
func shortDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}
