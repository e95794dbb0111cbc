package transport

import (
	"strings"
)

// Limits for the stderr excerpt an ExitError carries into messages.
const (
	maxStderrLines = 5
	maxStderrBytes = 1024
)

func newExitError(argv []string, status int, stderr []byte) *ExitError {
	return &ExitError{Argv: argv, Status: status, Stderr: stderrExcerpt(stderr)}
}

// stderrExcerpt keeps the last lines of stderr, where programs usually say what went wrong.
func stderrExcerpt(b []byte) string {
	s := strings.TrimSpace(string(b))
	lines := strings.Split(s, "\n")
	if len(lines) > maxStderrLines {
		lines = lines[len(lines)-maxStderrLines:]
	}
	s = strings.Join(lines, "; ")
	if len(s) > maxStderrBytes {
		s = "..." + s[len(s)-maxStderrBytes:]
	}
	return s
}

// shellQuote renders argv as one POSIX shell command line that the remote login shell splits
// back into exactly argv: each argument is single-quoted unless it is made only of characters
// no shell treats specially.
func shellQuote(argv []string) string {
	var b strings.Builder
	for i, a := range argv {
		if i > 0 {
			b.WriteByte(' ')
		}
		if a != "" && strings.Trim(a, safeShellChars) == "" {
			b.WriteString(a)
			continue
		}
		b.WriteByte('\'')
		b.WriteString(strings.ReplaceAll(a, "'", `'\''`))
		b.WriteByte('\'')
	}
	return b.String()
}

const safeShellChars = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_./:@%+,"
