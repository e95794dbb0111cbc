package tracker

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/patchctl/patchctl/store"
)

// Source is where the releases and advisories of one repository come from.
type Source interface {
	// Name identifies the source in the store and in alerts (owner/repo).
	Name() string
	// Fetch returns the complete current listing. A partial listing is an error, never a
	// shorter Snapshot: the tracker diffs what it gets against what it stored.
	Fetch(ctx context.Context) (Snapshot, error)
}

// Snapshot is everything a source lists at one moment. Security flags are set by the tracker.
type Snapshot struct {
	Releases   []store.Release
	Advisories []store.Advisory
	Stats      FetchStats
}

// FetchStats says what a fetch cost.
type FetchStats struct {
	Requests      int `json:"requests"`       // requests sent over the network
	NotModified   int `json:"not_modified"`   // of which answered 304 (free)
	Replayed      int `json:"replayed"`       // pages taken from the cache without any request
	RateRemaining int `json:"rate_remaining"` // X-RateLimit-Remaining after the fetch, -1 when unknown
}

// Watch is a source with the tracker's per-source settings.
type Watch struct {
	Source Source
	// Prereleases lets a pre-release be the "latest" version of this source.
	Prereleases bool
}

// ErrRateLimited is matched by errors.Is on every *RateLimitError.
var ErrRateLimited = errors.New("rate limited")

// RateLimitError means the server asked us to stop until Until.
type RateLimitError struct {
	Until time.Time
	Err   error
}

func (e *RateLimitError) Error() string {
	return fmt.Sprintf("rate limited until %s: %v", e.Until.UTC().Format(time.RFC3339), e.Err)
}

func (e *RateLimitError) Unwrap() []error { return []error{ErrRateLimited, e.Err} }
