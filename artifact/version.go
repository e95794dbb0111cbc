package artifact

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"regexp"
	"syscall"
	"time"
)

// versionLine matches what `nutcracker -V` prints first; 0.4.1 ends the line with \r.
var versionLine = regexp.MustCompile(`(?m)^This is nutcracker-(\S+?)\r?$`)

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
	err := runVersion(ctx, bin, &out)
	if err != nil {
		var exit *exec.ExitError
		if errors.As(err, &exit) {
			return "", fmt.Errorf("%s -V: %w: %s", bin, err, firstLine(out.Bytes()))
		}
		return "", fmt.Errorf("%s -V: %w", bin, err)
	}
	m := versionLine.FindSubmatch(out.Bytes())
	if m == nil {
		return "", fmt.Errorf("%s -V: no \"This is nutcracker-<version>\" line in %q", bin, firstLine(out.Bytes()))
	}
	return string(m[1]), nil
}

// runVersion runs `bin -V`. A binary just written by this process can be briefly "busy"
// (ETXTBSY): a child forked meanwhile by another goroutine still holds the write
// descriptor until it execs. That passes within milliseconds, so it is retried.
func runVersion(ctx context.Context, bin string, out *bytes.Buffer) error {
	for attempt := 0; ; attempt++ {
		out.Reset()
		cmd := exec.CommandContext(ctx, bin, "-V")
		cmd.Stdout, cmd.Stderr = out, out // nutcracker prints it on stderr
		err := cmd.Run()
		if !errors.Is(err, syscall.ETXTBSY) || attempt == 20 {
			return err
		}
		select {
		case <-time.After(time.Duration(attempt+1) * 5 * time.Millisecond):
		case <-ctx.Done():
			return err
		}
	}
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
