// Package transporttest is the conformance suite every transport.Transport passes.
package transporttest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/patchctl/patchctl/internal/testenv"
	"github.com/patchctl/patchctl/transport"
)

// Run runs the suite against transports made by open, which reach a host that shares this
// machine's file system (the local machine, or an SSH server on loopback).
func Run(t *testing.T, open func(t *testing.T) transport.Transport) {
	ctx := func(t *testing.T) context.Context {
		ctx, cancel := context.WithTimeout(context.Background(), testenv.WaitTimeout)
		t.Cleanup(cancel)
		return ctx
	}

	t.Run("ArgsKeptVerbatim", func(t *testing.T) {
		args := []string{"a b", "it's", `"dq"`, "$HOME", "`id`", "$(id)", `back\slash`, "*", "", "x;y", "new\nline", "~", "-n", "a=b"}
		res, err := open(t).Run(ctx(t), append([]string{"printf", "[%s]"}, args...), nil)
		if err != nil {
			t.Fatal(err)
		}
		want := "[" + strings.Join(args, "][") + "]"
		if got := string(res.Stdout); got != want {
			t.Fatalf("stdout = %q, want %q", got, want)
		}
	})

	t.Run("StdinStreamed", func(t *testing.T) {
		in := bytes.Repeat([]byte("0123456789abcdef"), 1<<16) // 1 MiB
		res, err := open(t).Run(ctx(t), []string{"cat"}, bytes.NewReader(in))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(res.Stdout, in) {
			t.Fatalf("stdout has %d bytes, want the %d sent", len(res.Stdout), len(in))
		}
	})

	t.Run("StdoutAndStderrApart", func(t *testing.T) {
		res, err := open(t).Run(ctx(t), []string{"sh", "-c", "echo out; echo err >&2"}, nil)
		if err != nil {
			t.Fatal(err)
		}
		if string(res.Stdout) != "out\n" || string(res.Stderr) != "err\n" {
			t.Fatalf("stdout %q, stderr %q", res.Stdout, res.Stderr)
		}
	})

	t.Run("NonZeroExit", func(t *testing.T) {
		argv := []string{"sh", "-c", "echo partial; echo first >&2; echo it broke >&2; exit 3"}
		res, err := open(t).Run(ctx(t), argv, nil)
		var exit *transport.ExitError
		if !errors.As(err, &exit) {
			t.Fatalf("err = %v, want *transport.ExitError", err)
		}
		if exit.Status != 3 || exit.Stderr != "first; it broke" || exit.Argv[0] != "sh" {
			t.Fatalf("exit error = %+v", exit)
		}
		if string(res.Stdout) != "partial\n" || !strings.Contains(string(res.Stderr), "it broke") {
			t.Fatalf("result with the error: stdout %q, stderr %q", res.Stdout, res.Stderr)
		}
		if !strings.Contains(err.Error(), "status 3") {
			t.Fatalf("message %q does not give the status", err)
		}
	})

	t.Run("ChildKeepsOutputOpen", func(t *testing.T) {
		// What a daemonizing program does until it detaches: Run returns when the command
		// exits, with what it printed, whatever its children do with its output.
		res, err := open(t).Run(ctx(t), []string{"sh", "-c", "sleep 20 & echo $!"}, nil)
		if pid, perr := strconv.Atoi(strings.TrimSpace(string(res.Stdout))); perr == nil {
			defer syscall.Kill(pid, syscall.SIGKILL)
		}
		if err != nil {
			t.Fatalf("err = %v, want nil once the command exited", err)
		}
		if strings.TrimSpace(string(res.Stdout)) == "" {
			t.Fatalf("stdout %q, want the child's pid", res.Stdout)
		}
	})

	t.Run("OwnSession", func(t *testing.T) {
		// A command leads a session of its own (what sshd gives each), so a proxy it leaves
		// running is out of reach of signals sent to patchctl's process group or terminal.
		// /proc/self/stat: pid (comm) state ppid pgrp session ...
		res, err := open(t).Run(ctx(t), []string{"sh", "-c", `read -r pid _ _ _ pgrp sid _ </proc/self/stat && echo "$pid $pgrp $sid"`}, nil)
		if err != nil {
			t.Fatal(err)
		}
		f := strings.Fields(string(res.Stdout))
		if len(f) != 3 || f[1] != f[0] || f[2] != f[0] {
			t.Fatalf("pid, process group, session = %q, want all the same", res.Stdout)
		}
	})

	t.Run("MissingCommand", func(t *testing.T) {
		if _, err := open(t).Run(ctx(t), []string{"patchctl-no-such-command"}, nil); err == nil {
			t.Fatal("no error for a command that does not exist")
		}
	})

	t.Run("CancelStopsCommand", func(t *testing.T) {
		tr := open(t)
		c, cancel := context.WithCancel(ctx(t))
		defer cancel()
		pidFile := filepath.Join(t.TempDir(), "pid")
		// Cancel once the command runs (its pid is written), not after a fixed time: starting
		// a command takes seconds on a loaded machine.
		go func() {
			for c.Err() == nil {
				if _, err := readPid(pidFile); err == nil {
					cancel()
					return
				}
				time.Sleep(20 * time.Millisecond)
			}
		}()
		start := time.Now()
		_, err := tr.Run(c, []string{"sh", "-c", `echo $$ > "$1.tmp" && mv "$1.tmp" "$1"; exec sleep 300`, "sh", pidFile}, nil)
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("err = %v, want context canceled", err)
		}
		if d := time.Since(start); d > testenv.WaitTimeout {
			t.Fatalf("Run returned %s after it started: the cancel did not end it", d)
		}
		assertGone(t, pidFile)
		// The transport is still usable after a cancelled command.
		if _, err := tr.Run(ctx(t), []string{"true"}, nil); err != nil {
			t.Fatalf("run after cancel: %v", err)
		}
	})

	t.Run("PutCreatesAndOverwrites", func(t *testing.T) {
		tr := open(t)
		dir := t.TempDir()
		path := filepath.Join(dir, "nutcracker")
		for _, step := range []struct {
			content string
			mode    fs.FileMode
		}{{"first version\n", 0o640}, {"second, longer version\n", 0o755}} {
			if err := tr.Put(ctx(t), path, strings.NewReader(step.content), step.mode); err != nil {
				t.Fatal(err)
			}
			got, err := tr.ReadFile(ctx(t), path)
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != step.content {
				t.Fatalf("content = %q, want %q", got, step.content)
			}
			fi, err := os.Stat(path)
			if err != nil {
				t.Fatal(err)
			}
			if fi.Mode().Perm() != step.mode {
				t.Fatalf("mode = %v, want %v", fi.Mode().Perm(), step.mode)
			}
			assertOnly(t, dir, "nutcracker")
		}
	})

	t.Run("PutFailureKeepsOldFile", func(t *testing.T) {
		tr := open(t)
		dir := t.TempDir()
		path := filepath.Join(dir, "nutcracker.yml")
		if err := os.WriteFile(path, []byte("old\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		broken := io.MultiReader(strings.NewReader(strings.Repeat("new\n", 10000)), errReader{})
		if err := tr.Put(ctx(t), path, broken, 0o644); err == nil {
			t.Fatal("Put succeeded with a reader that failed")
		}
		got, err := os.ReadFile(path)
		if err != nil || string(got) != "old\n" {
			t.Fatalf("after a failed Put: %q, %v; want the old content", got, err)
		}
		assertOnly(t, dir, "nutcracker.yml")
	})

	t.Run("PutNeverShowsPartial", func(t *testing.T) {
		dir := t.TempDir()
		path := filepath.Join(dir, "nutcracker")
		old := strings.Repeat("old ", 1000)
		if err := os.WriteFile(path, []byte(old), 0o755); err != nil {
			t.Fatal(err)
		}
		// Between every chunk the writer sends, the target must still hold the old content.
		var chunks []io.Reader
		for range 20 {
			chunks = append(chunks, strings.NewReader(strings.Repeat("new ", 4096)))
		}
		r := &observingReader{r: io.MultiReader(chunks...), observe: func() {
			if b, err := os.ReadFile(path); err != nil || string(b) != old {
				t.Errorf("during Put the target holds %d bytes (%v), want the old %d", len(b), err, len(old))
			}
		}}
		if err := open(t).Put(ctx(t), path, r, 0o755); err != nil {
			t.Fatal(err)
		}
		if b, _ := os.ReadFile(path); len(b) != 20*4*4096 {
			t.Fatalf("after Put: %d bytes, want %d", len(b), 20*4*4096)
		}
	})

	t.Run("PutIntoMissingDir", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "no", "such", "file")
		if err := open(t).Put(ctx(t), path, strings.NewReader("x"), 0o644); err == nil {
			t.Fatal("Put into a missing directory succeeded")
		}
	})

	t.Run("ReadFileMissing", func(t *testing.T) {
		_, err := open(t).ReadFile(ctx(t), filepath.Join(t.TempDir(), "missing"))
		if !errors.Is(err, fs.ErrNotExist) {
			t.Fatalf("err = %v, want fs.ErrNotExist", err)
		}
	})

	t.Run("Readlink", func(t *testing.T) {
		for _, tc := range []struct {
			name    string
			make    func(path string) error // what is at path, in a fresh directory
			want    string
			wantErr error
		}{
			{name: "relative", make: symlinkTo("slots/0.5.0-b/nutcracker"), want: "slots/0.5.0-b/nutcracker"},
			{name: "absolute and dangling", make: symlinkTo("/no/such/nutcracker"), want: "/no/such/nutcracker"},
			{name: "verbatim", make: symlinkTo("-n a b/it's $HOME\n`id`\n"), want: "-n a b/it's $HOME\n`id`\n"},
			{name: "missing", make: noop, wantErr: fs.ErrNotExist},
			{name: "missing directory", make: func(path string) error { return os.Remove(filepath.Dir(path)) }, wantErr: fs.ErrNotExist},
			{name: "regular file", make: writeFile, wantErr: transport.ErrNotSymlink},
			{name: "directory", make: func(path string) error { return os.Mkdir(path, 0o755) }, wantErr: transport.ErrNotSymlink},
		} {
			t.Run(tc.name, func(t *testing.T) {
				path := filepath.Join(t.TempDir(), "sub", "current")
				if err := os.Mkdir(filepath.Dir(path), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := tc.make(path); err != nil {
					t.Fatal(err)
				}
				got, err := open(t).Readlink(ctx(t), path)
				if tc.wantErr != nil {
					if !errors.Is(err, tc.wantErr) {
						t.Fatalf("Readlink = %q, %v; want an error matching %v", got, err, tc.wantErr)
					}
					return
				}
				if err != nil || got != tc.want {
					t.Fatalf("Readlink = %q, %v; want %q", got, err, tc.want)
				}
			})
		}
	})

	t.Run("Symlink", func(t *testing.T) {
		for _, tc := range []struct {
			name    string
			make    func(path string) error // what is at path before, in a fresh directory
			path    string                  // path's name in that directory
			target  string
			wantErr bool
			left    []string // the directory's entries afterwards
		}{
			{name: "creates", make: noop, path: "current", target: "slots/0.5.0-b/nutcracker", left: []string{"current"}},
			{name: "replaces a link", make: symlinkTo("slots/0.4.1-a/nutcracker"), path: "current", target: "slots/0.5.0-b/nutcracker", left: []string{"current"}},
			{name: "absolute target", make: symlinkTo("slots/0.4.1-a/nutcracker"), path: "current", target: "/opt/nutcracker/slots/0.5.0-b/nutcracker", left: []string{"current"}},
			{name: "verbatim target", make: noop, path: "current", target: "-n a b/it's $HOME\n`id`", left: []string{"current"}},
			{name: "replaces a regular file", make: writeFile, path: "current", target: "slots/0.5.0-b/nutcracker", left: []string{"current"}},
			{
				// The link itself is replaced, never followed: nothing moves into the directory.
				name: "replaces a link to a directory", path: "current", target: "slots/0.5.0-b/nutcracker", left: []string{"current", "slots"},
				make: func(path string) error {
					if err := os.Mkdir(filepath.Join(filepath.Dir(path), "slots"), 0o755); err != nil {
						return err
					}
					return os.Symlink("slots", path)
				},
			},
			{
				name: "path is a directory", path: "current", target: "slots/0.5.0-b/nutcracker", wantErr: true, left: []string{"current"},
				make: func(path string) error {
					if err := os.Mkdir(path, 0o755); err != nil {
						return err
					}
					return writeFile(filepath.Join(path, "x"))
				},
			},
			{name: "missing directory", make: noop, path: "no/current", target: "slots/0.5.0-b/nutcracker", wantErr: true},
		} {
			t.Run(tc.name, func(t *testing.T) {
				dir := t.TempDir()
				path := filepath.Join(dir, tc.path)
				if err := tc.make(path); err != nil {
					t.Fatal(err)
				}
				tr := open(t)
				err := tr.Symlink(ctx(t), tc.target, path)
				if tc.wantErr != (err != nil) {
					t.Fatalf("Symlink: %v, want an error: %v", err, tc.wantErr)
				}
				if err == nil {
					if got, err := tr.Readlink(ctx(t), path); err != nil || got != tc.target {
						t.Fatalf("Readlink after Symlink = %q, %v; want %q", got, err, tc.target)
					}
					if got, err := os.Readlink(path); err != nil || got != tc.target {
						t.Fatalf("os.Readlink after Symlink = %q, %v; want %q", got, err, tc.target)
					}
				}
				assertOnly(t, dir, tc.left...)
			})
		}
	})

	t.Run("SymlinkConcurrent", func(t *testing.T) {
		// Calls on one path that overlap (a killed patchctl's switch and its recovery's) all
		// succeed, leave one of their targets, and no temp link.
		tr := open(t)
		c := ctx(t)
		dir := t.TempDir()
		path := filepath.Join(dir, "current")
		targets := []string{"slots/0.4.1-a/nutcracker", "slots/0.5.0-b/nutcracker", "slots/0.5.0-c/nutcracker"}
		for round := range 10 {
			errs := make(chan error, len(targets))
			for _, target := range targets {
				go func() { errs <- tr.Symlink(c, target, path) }()
			}
			for range targets {
				if err := <-errs; err != nil {
					t.Fatalf("round %d: %v", round, err)
				}
			}
			if got, err := tr.Readlink(c, path); err != nil || !slices.Contains(targets, got) {
				t.Fatalf("round %d: Readlink = %q, %v; want one of %q", round, got, err, targets)
			}
			assertOnly(t, dir, "current")
		}
	})

	t.Run("SymlinkCancelled", func(t *testing.T) {
		tr := open(t)
		dir := t.TempDir()
		path := filepath.Join(dir, "current")
		if err := os.Symlink("slots/0.4.1-a/nutcracker", path); err != nil {
			t.Fatal(err)
		}
		c, cancel := context.WithCancel(ctx(t))
		cancel()
		if err := tr.Symlink(c, "slots/0.5.0-b/nutcracker", path); !errors.Is(err, context.Canceled) {
			t.Fatalf("Symlink with a cancelled context: %v, want context canceled", err)
		}
		if _, err := tr.Readlink(c, path); !errors.Is(err, context.Canceled) {
			t.Fatalf("Readlink with a cancelled context: %v, want context canceled", err)
		}
		if got, err := os.Readlink(path); err != nil || got != "slots/0.4.1-a/nutcracker" {
			t.Fatalf("after a cancelled Symlink: %q, %v; want the old target", got, err)
		}
		assertOnly(t, dir, "current")
	})

	t.Run("ReadFileBinary", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "blob")
		want := []byte{0, 1, 2, 0xff, '\r', '\n', 0}
		if err := os.WriteFile(path, want, 0o600); err != nil {
			t.Fatal(err)
		}
		got, err := open(t).ReadFile(ctx(t), path)
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("ReadFile = %v, %v; want %v", got, err, want)
		}
	})
}

func noop(string) error { return nil }

func writeFile(path string) error { return os.WriteFile(path, []byte("x"), 0o644) }

func symlinkTo(target string) func(path string) error {
	return func(path string) error { return os.Symlink(target, path) }
}

// assertGone fails unless the process whose pid is in pidFile ends within the wait bound.
func assertGone(t *testing.T, pidFile string) {
	t.Helper()
	pid, err := readPid(pidFile)
	if err != nil {
		t.Fatalf("the command did not start: %v", err)
	}
	testenv.Eventually(t, fmt.Sprintf("process %d to end after its context ended", pid), func() bool {
		return errors.Is(syscall.Kill(pid, 0), syscall.ESRCH)
	})
}

func readPid(file string) (int, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return 0, err
	}
	return strconv.Atoi(strings.TrimSpace(string(b)))
}

// observingReader calls observe before every read; it may run on another goroutine.
type observingReader struct {
	r       io.Reader
	observe func()
}

func (o *observingReader) Read(p []byte) (int, error) {
	o.observe()
	return o.r.Read(p)
}

type errReader struct{}

func (errReader) Read([]byte) (int, error) { return 0, errors.New("source failed") }

// assertOnly fails unless dir holds exactly the named entries: no temp file was left behind.
func assertOnly(t *testing.T, dir string, names ...string) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var have []string
	for _, e := range entries {
		have = append(have, e.Name())
	}
	if want := slices.Sorted(slices.Values(names)); !slices.Equal(have, want) {
		t.Fatalf("%s holds %q, want only %q", dir, have, want)
	}
}
