// Package prockill ends the processes started from a directory: the proxies deployed under
// the hosts' roots of the demo and of the tests' fleets, which outlive the deploy that
// started them.
package prockill

import (
	"bytes"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
)

// Under SIGKILLs every process whose command line starts under dir.
func Under(dir string) {
	procs, _ := os.ReadDir("/proc")
	for _, e := range procs {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		cmd, _ := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if bytes.HasPrefix(cmd, []byte(dir+"/")) {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	}
}
