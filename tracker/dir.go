package tracker

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path"
	"path/filepath"

	"github.com/google/go-github/v60/github"
)

// Dir reads a directory laid out like GitHub's API, for sites without network access:
// repos/<owner>/<repo>/releases.json, tags.json and security-advisories.json, each a JSON
// array in GitHub's shapes. A missing file is an empty list; a missing repository
// directory is an error.
type Dir struct {
	name string
	root string
	opts DirOptions
}

// DirOptions select what a Dir source reads.
type DirOptions struct {
	Tags       bool
	Advisories bool
	Logger     *slog.Logger
}

var _ Source = (*Dir)(nil)

// NewDir returns a source reading repository repo (owner/name) under dir.
func NewDir(repo, dir string, opts DirOptions) *Dir {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	return &Dir{name: repo, root: dir, opts: opts}
}

// Name returns owner/repo.
func (d *Dir) Name() string { return d.name }

// Fetch reads the three files.
func (d *Dir) Fetch(ctx context.Context) (Snapshot, error) {
	fsys := os.DirFS(d.root)
	base := path.Join("repos", d.name)
	if st, err := fs.Stat(fsys, base); err != nil || !st.IsDir() {
		return Snapshot{}, fmt.Errorf("%s: no directory for %s", filepath.Join(d.root, filepath.FromSlash(base)), d.name)
	}
	var (
		rels []*github.RepositoryRelease
		tags []*github.RepositoryTag
		advs []*github.SecurityAdvisory
	)
	read := func(file string, v any) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		name := path.Join(base, file)
		data, err := fs.ReadFile(fsys, name)
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		} else if err != nil {
			return err
		}
		return decodeJSON(filepath.Join(d.root, filepath.FromSlash(name)), data, v)
	}
	if err := read("releases.json", &rels); err != nil {
		return Snapshot{}, err
	}
	if d.opts.Tags {
		if err := read("tags.json", &tags); err != nil {
			return Snapshot{}, err
		}
	}
	if d.opts.Advisories {
		if err := read("security-advisories.json", &advs); err != nil {
			return Snapshot{}, err
		}
	}
	snap := builder{source: d.name, log: d.opts.Logger}.snapshot(rels, tags, advs)
	snap.Stats.RateRemaining = -1
	return snap, nil
}
