package strictyaml_test

import (
	"errors"
	"slices"
	"testing"

	"github.com/patchctl/patchctl/internal/strictyaml"
)

type doc struct {
	Items []struct {
		N int    `yaml:"n"`
		S string `yaml:"s"`
	} `yaml:"items"`
}

func TestDecodeReportsEveryProblemWithItsLine(t *testing.T) {
	in := "items:\n  - n: 1\n  - n: x\n    s: y\n  - n: 3\n    t: z\n"
	var d doc
	err := strictyaml.Decode([]byte(in), "f.yml", &d)
	var se *strictyaml.Error
	if !errors.As(err, &se) || se.File != "f.yml" || len(se.Problems) != 2 ||
		se.Problems[0].Line != 3 || se.Problems[1].Line != 6 {
		t.Fatalf("Decode = %#v", err)
	}
	want := "f.yml:3: cannot unmarshal !!str `x` into int\nf.yml:6: field t not found in type struct { N int \"yaml:\\\"n\\\"\"; S string \"yaml:\\\"s\\\"\" }"
	if err.Error() != want {
		t.Errorf("Error() =\n%s\nwant\n%s", err, want)
	}
	if got := strictyaml.ItemLines([]byte(in), "items"); !slices.Equal(got, []int{2, 3, 5}) {
		t.Errorf("ItemLines = %v", got)
	}
	if got := strictyaml.ItemLines([]byte(in), "other"); got != nil {
		t.Errorf("ItemLines(other) = %v", got)
	}
	if strictyaml.LineAt([]int{4}, 0) != 4 || strictyaml.LineAt([]int{4}, 1) != 0 {
		t.Error("LineAt")
	}
}

func TestDecodeSyntaxAndEmpty(t *testing.T) {
	var d doc
	if err := strictyaml.Decode(nil, "f.yml", &d); !errors.Is(err, strictyaml.ErrEmpty) || err.Error() != "f.yml: empty file" {
		t.Errorf("empty: %v", err)
	}
	err := strictyaml.Decode([]byte("items:\n  - n: [1\n"), "f.yml", &d)
	var se *strictyaml.Error
	if !errors.As(err, &se) || se.Problems[0].Line == 0 {
		t.Errorf("syntax: %#v", err)
	}
	if e := strictyaml.At("f.yml", 0, "no %s", "hosts"); e.Error() != "f.yml: no hosts" {
		t.Errorf("At = %v", e)
	}
}
