package cli

import (
	"fmt"
	"io"
	"os"
)

// quiet commands print nothing but what they were asked for.
var quiet = map[string]bool{"help": true, "version": true, "completion": true}

// warnIfRoot says loudly that patchctl should run as its own user: it needs the store, its
// socket and the hosts' transports, no privileges.
func warnIfRoot(w io.Writer, command string) {
	if os.Geteuid() == 0 && !quiet[command] {
		fmt.Fprintln(w, "patchctl: WARNING: running as root; run patchctl as a dedicated unprivileged user (see configs/patchctl.service)")
	}
}
