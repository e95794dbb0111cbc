// Package transport runs commands and writes files on twemproxy hosts, locally or over SSH.
package transport

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"time"
)

// Transport reaches one host. Implementations: Local and SSH.
type Transport interface {
	// Run runs argv on the host (no shell on the local side; safely quoted over SSH) with
	// stdin, and returns what it printed. A command that ran and exited non-zero returns
	// *ExitError together with its Result.
	Run(ctx context.Context, argv []string, stdin io.Reader) (Result, error)
	// Put writes r to path atomically: a temp file in the same directory, fsync, chmod
	// to mode, rename over path.
	Put(ctx context.Context, path string, r io.Reader, mode fs.FileMode) error
	// ReadFile returns the contents of path on the host. A missing file gives an error
	// matching fs.ErrNotExist.
	ReadFile(ctx context.Context, path string) ([]byte, error)
	// Readlink returns the target of the symbolic link at path, as stored. A missing path
	// gives an error matching fs.ErrNotExist, a path that is not a symlink ErrNotSymlink.
	Readlink(ctx context.Context, path string) (string, error)
	// Symlink points path at target atomically: a new symlink under a temp name unique to
	// the call, in path's directory, renamed over path, so readers see the old or the new
	// target, never none, and calls on one path that overlap do not collide (the one that
	// renames last wins). The directory is then fsynced, so the new target survives a
	// crash of the host once Symlink returned: a record that says which build runs is not
	// contradicted by the host after a power loss. The temp link is removed on any error;
	// an error from the fsync comes after the rename, with path at target.
	Symlink(ctx context.Context, target, path string) error
	// Close releases the connection, if any.
	Close() error
}

// ErrNotSymlink: Readlink found something other than a symbolic link at the path.
var ErrNotSymlink = errors.New("not a symbolic link")

// tempPath returns a name in p's directory, hidden and unique to the caller, for a file or
// link that is then renamed over p.
func tempPath(p string) string {
	var suffix [8]byte
	_, _ = rand.Read(suffix[:])
	dir, base := path.Split(p)
	return dir + "." + base + ".tmp" + hex.EncodeToString(suffix[:])
}

// Result is what a command printed.
type Result struct {
	Stdout []byte
	Stderr []byte
}

// ExitError reports a command that ran and exited with a non-zero status.
type ExitError struct {
	Argv   []string
	Status int
	Stderr string // trimmed, at most a few lines, for messages
}

func (e *ExitError) Error() string {
	msg := fmt.Sprintf("%s exited with status %d", e.Argv[0], e.Status)
	if e.Stderr != "" {
		msg += ": " + e.Stderr
	}
	return msg
}

// Spec says how to reach a host; it is what inventory files describe.
type Spec struct {
	Kind         string        `yaml:"type" json:"type"`                           // "local" or "ssh"
	Address      string        `yaml:"address,omitempty" json:"address,omitempty"` // ssh: host:port (port 22 if absent)
	User         string        `yaml:"user,omitempty" json:"user,omitempty"`
	IdentityFile string        `yaml:"identity_file,omitempty" json:"identity_file,omitempty"`
	KnownHosts   string        `yaml:"known_hosts,omitempty" json:"known_hosts,omitempty"`
	Timeout      time.Duration `yaml:"timeout,omitempty" json:"timeout,omitempty"` // connect and handshake
}
