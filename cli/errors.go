package cli

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"syscall"
)

// message is the text a person reads for a command's error: no segment said twice
// ("lint: lint: x"), and the errors with an obvious remedy say what to do.
func (e *Env) message(command string, err error) string {
	if errors.Is(err, os.ErrPermission) || errors.Is(err, syscall.EACCES) {
		if e.cfg != nil && strings.Contains(err.Error(), e.cfg.Socket) {
			return e.socketPermission()
		}
	}
	return dedupe(command, err.Error())
}

// socketPermission names the socket and what grants access to it.
func (e *Env) socketPermission() string {
	msg := fmt.Sprintf("permission denied on the daemon's socket %s", e.cfg.Socket)
	if g := e.cfg.SocketGroup; g != "" {
		return msg + fmt.Sprintf(": join group %s (socket_group in %s) or run as the daemon's user", g, e.cfg.File)
	}
	return msg + fmt.Sprintf(": run as the daemon's user, or set socket_group in %s and join that group", e.cfg.File)
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
