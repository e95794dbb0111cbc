package transport

import (
	"os/exec"
	"strings"
	"testing"
)

// FuzzShellQuote checks with a real POSIX shell that quoted arguments come back unchanged.
func FuzzShellQuote(f *testing.F) {
	for _, s := range []string{"", "plain", "a b", "it's", `"`, "$HOME", "`id`", "$(id)", `\`, "*", "~", "a=b", "-", "\n", "'''", "é"} {
		f.Add(s, "x")
	}
	f.Fuzz(func(t *testing.T, a, b string) {
		if strings.ContainsRune(a, 0) || strings.ContainsRune(b, 0) {
			return // argv strings cannot hold NUL
		}
		line := `printf '%s\0' ` + shellQuote([]string{a, b})
		out, err := exec.Command("sh", "-c", line).Output()
		if err != nil {
			t.Fatalf("sh -c %q: %v", line, err)
		}
		if want := a + "\x00" + b + "\x00"; string(out) != want {
			t.Fatalf("sh -c %q printed %q, want %q", line, out, want)
		}
	})
}
