package cli

import (
	"errors"
	"os/user"
	"strings"
	"syscall"

	"github.com/patchctl/patchctl/config"
	"github.com/patchctl/patchctl/internal/strictyaml"
)

// message is the text a person reads for a command's error: no segment said twice
// ("lint: lint: x"). (Errors with an obvious remedy say it where they are made: the socket's
// permission error names the socket and the group to join.)
func (e *Env) message(command string, err error) string {
	return dedupe(command, err.Error())
}

// dedupe drops a leading "command: " and any "x: " segment that repeats the one before it.
func dedupe(command, msg string) string {
	lines := strings.Split(msg, "\n")
	for i, line := range lines {
		parts := strings.Split(line, ": ")
		out := parts[:0]
		for j, p := range parts {
			if j < len(parts)-1 && (len(out) > 0 && out[len(out)-1] == p || len(out) == 0 && p == command) {
				continue
			}
			out = append(out, p)
		}
		lines[i] = strings.Join(out, ": ")
	}
	return strings.Join(lines, "\n")
}

// isConfigError reports a problem in a file the user wrote (patchctl.yml, the inventory, the
// advisory feed) or in the settings the daemon starts with: exit 2, fix the file.
func isConfigError(err error) bool {
	var se *strictyaml.Error
	var ce *config.Error
	var ug user.UnknownGroupError
	return errors.As(err, &se) || errors.As(err, &ce) || errors.As(err, &ug) ||
		errors.Is(err, syscall.EADDRINUSE) || errors.Is(err, syscall.EADDRNOTAVAIL)
}
