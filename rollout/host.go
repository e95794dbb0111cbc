package rollout

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"strings"

	"github.com/patchctl/patchctl/nutcracker"
	"github.com/patchctl/patchctl/transport"
)

// Artifact is a verified nutcracker binary on this machine, ready to install.
type Artifact struct {
	Path    string // local file
	Version string // what it must report with -V
	// SHA256, when set, is the file's digest as the caller verified it; a dry run plans
	// with it and opens nothing.
	SHA256 string
}

// digest returns the sha256 of the artifact's file in hex.
func (a Artifact) digest() (string, error) {
	if a.SHA256 != "" {
		return a.SHA256, nil
	}
	f, err := os.Open(a.Path)
	if err != nil {
		return "", fmt.Errorf("artifact: %w", err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", fmt.Errorf("artifact %s: %w", a.Path, err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// hostFS lays out slots and the current symlink under the host's root, through its
// transport.
type hostFS struct {
	h HostSpec
}

func (f hostFS) current() string            { return path.Join(f.h.Root, "current") }
func (f hostFS) slotDir(name string) string { return path.Join(f.h.Root, "slots", name) }
func (f hostFS) binary(name string) string  { return path.Join(f.slotDir(name), "nutcracker") }

func (f hostFS) run(ctx context.Context, argv ...string) (transport.Result, error) {
	return hostRun(ctx, f.h, argv...)
}

// readCurrent returns the slot the current symlink points at, "" when there is none.
func (f hostFS) readCurrent(ctx context.Context) (string, error) {
	target, err := f.h.Transport.Readlink(ctx, f.current())
	if errors.Is(err, fs.ErrNotExist) {
		return "", nil // no symlink yet
	}
	if err != nil {
		return "", fmt.Errorf("host %s: %w", f.h.Name, err)
	}
	dir, file := path.Split(target)
	name := path.Base(dir)
	if file != "nutcracker" || path.Base(path.Dir(path.Clean(dir))) != "slots" {
		return "", fmt.Errorf("host %s: %s points at %q, not a slot", f.h.Name, f.current(), target)
	}
	return name, nil
}

// remoteDigest returns the sha256 of a file on the host, "" when it does not exist.
func (f hostFS) remoteDigest(ctx context.Context, file string) (string, error) {
	res, err := f.run(ctx, "sha256sum", "--", file)
	if err != nil {
		if errors.As(err, new(*transport.ExitError)) {
			return "", nil
		}
		return "", err
	}
	sum, _, _ := strings.Cut(string(res.Stdout), " ")
	return sum, nil
}

// install uploads the artifact into its slot unless the slot already holds exactly it.
func (f hostFS) install(ctx context.Context, a Artifact, name, sha string) error {
	bin := f.binary(name)
	if have, err := f.remoteDigest(ctx, bin); err != nil {
		return err
	} else if have == sha {
		return nil
	}
	if _, err := f.run(ctx, "mkdir", "-p", "-m", "0755", "--", f.slotDir(name)); err != nil {
		return err
	}
	src, err := os.Open(a.Path)
	if err != nil {
		return fmt.Errorf("artifact: %w", err)
	}
	defer src.Close()
	if err := f.h.Transport.Put(ctx, bin, src, 0o755); err != nil {
		return fmt.Errorf("host %s: upload %s: %w", f.h.Name, bin, err)
	}
	have, err := f.remoteDigest(ctx, bin)
	if err != nil {
		return err
	}
	if have != sha {
		return fmt.Errorf("host %s: %s: sha256 %s after upload, want %s", f.h.Name, bin, have, sha)
	}
	return nil
}

// version runs bin -V and returns the version it reports (on stderr).
func (f hostFS) version(ctx context.Context, bin string) (string, error) {
	res, err := f.run(ctx, bin, "-V")
	if err != nil {
		return "", fmt.Errorf("%s -V: %w", bin, err)
	}
	v, err := nutcracker.ParseVersionOutput(res.Stderr)
	if err != nil {
		return "", fmt.Errorf("host %s: %s -V: %w", f.h.Name, bin, err)
	}
	return v, nil
}

// testConfig runs bin -t on the host's nutcracker.yml.
func (f hostFS) testConfig(ctx context.Context, bin string) error {
	if _, err := f.run(ctx, bin, "-t", "-c", f.h.Config); err != nil {
		return fmt.Errorf("%s -t -c %s: %w", bin, f.h.Config, err)
	}
	return nil
}

// switchTo points current at a slot atomically (transport.Transport.Symlink): readers see
// the old or the new target, never none, and the switch of a killed patchctl that is still
// running when the recovery of the same operation switches back cannot move the recovery's
// temp link, which has a name of its own.
func (f hostFS) switchTo(ctx context.Context, name string) error {
	if err := f.h.Transport.Symlink(ctx, path.Join("slots", name, "nutcracker"), f.current()); err != nil {
		return fmt.Errorf("host %s: switch to %s: %w", f.h.Name, name, err)
	}
	return nil
}

// removeSlot deletes a slot's directory.
func (f hostFS) removeSlot(ctx context.Context, name string) error {
	if name == "" || strings.ContainsAny(name, "/") || name == "." || name == ".." {
		return fmt.Errorf("remove slot %q: bad name", name)
	}
	_, err := f.run(ctx, "rm", "-rf", "--", f.slotDir(name))
	return err
}
