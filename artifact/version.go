package artifact

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"time"

	"github.com/patchctl/patchctl/internal/execx"
	"github.com/patchctl/patchctl/nutcracker"
)

// VersionMismatchError reports a binary that is not the version it was supposed to be.
type VersionMismatchError struct {
	Path string
	Want string
	Got  string
}

func (e *VersionMismatchError) Error() string {
	return fmt.Sprintf("%s reports nutcracker %s, want %s", e.Path, e.Got, e.Want)
}

// versionTimeout bounds `nutcracker -V` when ctx has no earlier deadline.
const versionTimeout = 10 * time.Second

// ReportedVersion runs `bin -V` and returns the version it reports.
func ReportedVersion(ctx context.Context, bin string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, versionTimeout)
	defer cancel()
	var out bytes.Buffer
	// The binary may have been written into the cache a moment ago (see execx).
	err := execx.Run(ctx, func() *exec.Cmd {
		cmd := exec.CommandContext(ctx, bin, "-V")
		cmd.Stdout, cmd.Stderr = &out, &out // nutcracker prints it on stderr
		return cmd
	})
	if err != nil {
		var exit *exec.ExitError
		if errors.As(err, &exit) {
			return "", fmt.Errorf("%s -V: %w: %s", bin, err, firstLine(out.Bytes()))
		}
		return "", fmt.Errorf("%s -V: %w", bin, err)
	}
	v, err := nutcracker.ParseVersionOutput(out.Bytes())
	if err != nil {
		return "", fmt.Errorf("%s -V: %w", bin, err)
	}
	return v, nil
}

// CheckVersion returns *VersionMismatchError unless `bin -V` reports want.
func CheckVersion(ctx context.Context, bin, want string) error {
	got, err := ReportedVersion(ctx, bin)
	if err != nil {
		return err
	}
	if got != want {
		return &VersionMismatchError{Path: bin, Want: want, Got: got}
	}
	return nil
}

func firstLine(b []byte) string {
	line, _, _ := bytes.Cut(b, []byte("\n"))
	if len(line) > 200 {
		line = line[:200]
	}
	return string(bytes.TrimRight(line, "\r"))
}
