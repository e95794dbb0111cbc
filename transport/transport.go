// Package transport runs commands and writes files on twemproxy hosts, locally or over SSH.
package transport

import (
	"context"
	"fmt"
	"io"
	"io/fs"
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
	// Close releases the connection, if any.
	Close() error
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
