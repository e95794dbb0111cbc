package transport

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"

	"github.com/patchctl/patchctl/internal/execx"
)

// Local runs commands and writes files on this machine.
type Local struct{}

var _ Transport = (*Local)(nil)

// waitDelay bounds how long Run waits for a killed command's pipes to close, which matters
// when the command left children holding them.
const waitDelay = 2 * time.Second

// Run executes argv directly, without a shell.
func (*Local) Run(ctx context.Context, argv []string, stdin io.Reader) (Result, error) {
	if len(argv) == 0 {
		return Result{}, errors.New("local: run: empty command")
	}
	var stdout, stderr bytes.Buffer
	// argv[0] may be a build Put a moment ago (see execx).
	err := execx.Run(ctx, func() *exec.Cmd {
		cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
		cmd.Stdin = stdin
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		cmd.WaitDelay = waitDelay
		// A session of its own, as sshd gives each command: what it leaves running (a
		// proxy it started) is then out of reach of signals sent to patchctl's process
		// group or terminal.
		cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
		return cmd
	})
	if errors.Is(err, exec.ErrWaitDelay) {
		// The command exited 0 but a child it left running (a daemon on its way to
		// detaching) still holds its output: the command is done.
		err = nil
	}
	res := Result{Stdout: stdout.Bytes(), Stderr: stderr.Bytes()}
	if ctx.Err() != nil {
		return res, fmt.Errorf("local: run %s: %w", argv[0], context.Cause(ctx))
	}
	var exit *exec.ExitError
	if errors.As(err, &exit) && exit.ExitCode() > 0 {
		return res, fmt.Errorf("local: %w", newExitError(argv, exit.ExitCode(), res.Stderr))
	}
	if err != nil {
		return res, fmt.Errorf("local: run %s: %w", argv[0], err)
	}
	return res, nil
}

// Put writes r to path atomically and durably: temp file beside path, fsync, chmod, rename,
// fsync of the directory. The temp file is removed on any error.
func (*Local) Put(ctx context.Context, path string, r io.Reader, mode fs.FileMode) error {
	if err := writeFileAtomic(ctx, path, r, mode); err != nil {
		return fmt.Errorf("local: %w", err)
	}
	return nil
}

// ReadFile returns the contents of path; a missing file gives an error matching fs.ErrNotExist.
func (*Local) ReadFile(ctx context.Context, path string) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("local: %w", err)
	}
	return b, nil
}

// Close does nothing: there is no connection.
func (*Local) Close() error { return nil }

// writeFileAtomic writes r to path through a temp file in the same directory that is
// fsynced, chmod-ed and renamed over path; the directory is fsynced after the rename.
// Readers of path see either the old or the complete new content, never a part.
// Cancelling ctx stops the copy between reads.
func writeFileAtomic(ctx context.Context, path string, r io.Reader, mode fs.FileMode) (err error) {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	f, err := os.CreateTemp(dir, "."+base+".tmp*")
	if err != nil {
		return fmt.Errorf("put %s: %w", path, err)
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	if _, err := io.Copy(f, ctxReader{ctx, r}); err != nil {
		return fmt.Errorf("put %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("put %s: sync: %w", path, err)
	}
	if err := f.Chmod(mode); err != nil {
		return fmt.Errorf("put %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("put %s: %w", path, err)
	}
	if err := os.Rename(f.Name(), path); err != nil {
		return fmt.Errorf("put %s: %w", path, err)
	}
	return syncDir(dir)
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("sync %s: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync %s: %w", dir, err)
	}
	return nil
}

// ctxReader stops a copy once ctx is done.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, context.Cause(c.ctx)
	}
	return c.r.Read(p)
}

// Readlink returns the target of the symlink at path.
func (*Local) Readlink(ctx context.Context, path string) (string, error) {
	if err := ctx.Err(); err != nil {
		return "", context.Cause(ctx)
	}
	target, err := os.Readlink(path)
	if errors.Is(err, syscall.EINVAL) {
		return "", fmt.Errorf("local: readlink %s: %w", path, ErrNotSymlink)
	}
	if err != nil {
		return "", fmt.Errorf("local: %w", err)
	}
	return target, nil
}

// Symlink creates the temp link, renames it over path and fsyncs the directory.
func (*Local) Symlink(ctx context.Context, target, path string) error {
	if err := ctx.Err(); err != nil {
		return context.Cause(ctx)
	}
	tmp := tempPath(path)
	if err := os.Symlink(target, tmp); err != nil {
		return fmt.Errorf("local: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("local: %w", err)
	}
	if err := syncDir(filepath.Dir(path)); err != nil {
		return fmt.Errorf("local: symlink %s: %w", path, err)
	}
	return nil
}
