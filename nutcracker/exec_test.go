package nutcracker_test

import (
	"bytes"
	"context"
	"os/exec"
)

// runVersion runs `<bin> -V` and returns its stderr, where nutcracker prints the banner.
func runVersion(ctx context.Context, bin string) ([]byte, error) {
	var stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, bin, "-V")
	cmd.Stderr = &stderr
	err := cmd.Run()
	return stderr.Bytes(), err
}
