package inventory_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/patchctl/patchctl/internal/readfile"
	"github.com/patchctl/patchctl/inventory"
)

// FuzzParse: any inventory file either parses into hosts that each have a name, or is
// refused with an error; it never panics.
func FuzzParse(f *testing.F) {
	example, err := os.ReadFile(filepath.Join("..", "configs", "inventory.example.yml"))
	if err != nil {
		f.Fatal(err)
	}
	for _, s := range []string{string(example), "", "hosts:\n", "hosts:\n  - name: a\n    stats: 127.0.0.1:22222\n",
		"hosts: [\n", "hosts:\n  - name: a\n    transport:\n      type: ssh\n      address: h:99999\n      timeout: -1s\n",
		"hosts:\n  - name: a\n    transport:\n      type: ssh\n      address: h\n      timeout: 1e9h\n"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		inv, err := inventory.Parse([]byte(s), "inventory.yml")
		if (inv == nil) == (err == nil) {
			t.Fatalf("inventory %v and error %v", inv, err)
		}
		if inv == nil {
			return
		}
		for _, h := range inv.Hosts {
			if h.Name == "" {
				t.Fatalf("a host without a name was accepted: %+v", h)
			}
		}
	})
}

// TestLoadBounded: a file without end is refused at the cap, naming it.
func TestLoadBounded(t *testing.T) {
	_, err := inventory.Load("/dev/zero")
	if !errors.Is(err, readfile.ErrTooLarge) || !strings.Contains(err.Error(), "/dev/zero") {
		t.Fatalf("err = %v, want too large naming /dev/zero", err)
	}
}
