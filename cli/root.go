package cli

import (
	"log/slog"
	"os"
)

// warnIfRoot says loudly that patchctl should run as its own user: it only needs the store,
// its socket, and the hosts' transports.
func warnIfRoot(log *slog.Logger) {
	if os.Geteuid() == 0 {
		log.Warn("patchctl is running as root; run it as a dedicated unprivileged user (see configs/patchctl.service)")
	}
}
