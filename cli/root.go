package cli

import (
	"fmt"
	"io"
	"os"
)

// warnIfRoot says loudly that patchctl should run as its own user: the daemon and the commands
// that change hosts need the store, its socket and the hosts' transports, no privileges.
// Read-only commands (lint in a CI container, status) stay quiet.
func warnIfRoot(w io.Writer) {
	if os.Geteuid() == 0 {
		fmt.Fprintln(w, "patchctl: WARNING: running as root; run patchctl as a dedicated unprivileged user (see configs/patchctl.service)")
	}
}
