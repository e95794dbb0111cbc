package store

import (
	"bytes"
	"encoding/binary"
	"maps"
	"time"
)

// Release is one upstream release or plain tag of a source.
type Release struct {
	Source      string    `json:"source"` // owner/repo
	Tag         string    `json:"tag"`
	Version     string    `json:"version"` // normalised: 0.5.0, 0.5.0-RC1
	Name        string    `json:"name,omitempty"`
	Prerelease  bool      `json:"prerelease"`
	TagOnly     bool      `json:"tag_only,omitempty"` // a tag without a GitHub Release object
	PublishedAt time.Time `json:"published_at,omitzero"`
	URL         string    `json:"url,omitempty"`
	Notes       string    `json:"notes,omitempty"`
	Security    bool      `json:"security"`
	Reasons     []string  `json:"security_reasons,omitempty"`
	FirstSeen   time.Time `json:"first_seen"`
}

func releaseKey(source, tag string) []byte { return []byte(source + "\x00" + tag) }

// Release returns one release, ok false when it is not known.
func (tx *Tx) Release(source, tag string) (r Release, ok bool, err error) {
	ok, err = tx.getJSON(bucketReleases, releaseKey(source, tag), &r)
	return r, ok, err
}

// PutRelease records a release, keeping the time it was first seen.
func (tx *Tx) PutRelease(r Release) error {
	if old, ok, err := tx.Release(r.Source, r.Tag); err != nil {
		return err
	} else if ok {
		r.FirstSeen = old.FirstSeen
	}
	if r.FirstSeen.IsZero() {
		r.FirstSeen = tx.now
	}
	return tx.putJSON(bucketReleases, releaseKey(r.Source, r.Tag), r)
}

// Releases lists the releases of one source ("" = all), in key order.
func (tx *Tx) Releases(source string) ([]Release, error) {
	var prefix []byte
	if source != "" {
		prefix = []byte(source + "\x00")
	}
	var out []Release
	err := forEachJSON(tx, bucketReleases, prefix, func(_ []byte, r Release) error {
		out = append(out, r)
		return nil
	})
	return out, err
}

// Advisory is a security advisory about a source.
type Advisory struct {
	Source          string    `json:"source"`
	ID              string    `json:"id"` // GHSA id or feed id
	CVE             string    `json:"cve,omitempty"`
	Summary         string    `json:"summary"`
	Severity        string    `json:"severity,omitempty"`
	VulnerableRange string    `json:"vulnerable_range,omitempty"` // go-version constraint
	PatchedVersion  string    `json:"patched_version,omitempty"`
	PublishedAt     time.Time `json:"published_at,omitzero"`
	WithdrawnAt     time.Time `json:"withdrawn_at,omitzero"`
	URL             string    `json:"url,omitempty"`
	FirstSeen       time.Time `json:"first_seen"`
}

// Advisory returns one advisory.
func (tx *Tx) Advisory(source, id string) (a Advisory, ok bool, err error) {
	ok, err = tx.getJSON(bucketAdvisories, releaseKey(source, id), &a)
	return a, ok, err
}

// PutAdvisory records an advisory, keeping the time it was first seen.
func (tx *Tx) PutAdvisory(a Advisory) error {
	if old, ok, err := tx.Advisory(a.Source, a.ID); err != nil {
		return err
	} else if ok {
		a.FirstSeen = old.FirstSeen
	}
	if a.FirstSeen.IsZero() {
		a.FirstSeen = tx.now
	}
	return tx.putJSON(bucketAdvisories, releaseKey(a.Source, a.ID), a)
}

// Advisories lists the advisories of one source ("" = all).
func (tx *Tx) Advisories(source string) ([]Advisory, error) {
	var prefix []byte
	if source != "" {
		prefix = []byte(source + "\x00")
	}
	var out []Advisory
	err := forEachJSON(tx, bucketAdvisories, prefix, func(_ []byte, a Advisory) error {
		out = append(out, a)
		return nil
	})
	return out, err
}

// CacheEntry is a stored HTTP answer for conditional requests.
type CacheEntry struct {
	ETag         string    `json:"etag,omitempty"`
	LastModified string    `json:"last_modified,omitempty"`
	Link         string    `json:"link,omitempty"` // pagination header of the stored answer
	Body         []byte    `json:"body"`
	StoredAt     time.Time `json:"stored_at"`
}

// CacheEntry returns the stored answer for key (usually a URL).
func (tx *Tx) CacheEntry(key string) (e CacheEntry, ok bool, err error) {
	ok, err = tx.getJSON(bucketHTTPCache, []byte(key), &e)
	return e, ok, err
}

// PutCacheEntry stores an answer for key.
func (tx *Tx) PutCacheEntry(key string, e CacheEntry) error {
	if e.StoredAt.IsZero() {
		e.StoredAt = tx.now
	}
	return tx.putJSON(bucketHTTPCache, []byte(key), e)
}

// PollState is the outcome of the latest polls of one source.
type PollState struct {
	Source              string    `json:"source"`
	LastAttempt         time.Time `json:"last_attempt,omitzero"`
	LastSuccess         time.Time `json:"last_success,omitzero"`
	LastOutcome         string    `json:"last_outcome,omitempty"` // ok, unchanged, rate_limited, error
	LastError           string    `json:"last_error,omitempty"`
	ConsecutiveFailures int       `json:"consecutive_failures"`
	NotBefore           time.Time `json:"not_before,omitzero"` // rate limit: no request before this
}

// PollState returns the poll state of a source (zero value when never polled).
func (tx *Tx) PollState(source string) (p PollState, err error) {
	_, err = tx.getJSON(bucketPolls, []byte(source), &p)
	p.Source = source
	return p, err
}

// PutPollState records the poll state of a source.
func (tx *Tx) PutPollState(p PollState) error {
	return tx.putJSON(bucketPolls, []byte(p.Source), p)
}

// PollStates lists the poll state of every source polled so far.
func (tx *Tx) PollStates() ([]PollState, error) {
	var out []PollState
	err := forEachJSON(tx, bucketPolls, nil, func(_ []byte, p PollState) error {
		out = append(out, p)
		return nil
	})
	return out, err
}

// Event is one entry of the append-only event log: what happened, when, why.
type Event struct {
	Seq     uint64            `json:"seq"`
	Time    time.Time         `json:"time"`
	Kind    string            `json:"kind"`              // e.g. release.new, poll.failed, deploy.step
	Subject string            `json:"subject,omitempty"` // source, host, ...
	Message string            `json:"message"`
	Fields  map[string]string `json:"fields,omitempty"`
}

// AppendEvent adds an event to the log; Seq and Time are set here.
func (tx *Tx) AppendEvent(e Event) (Event, error) {
	b, err := tx.bucket(bucketEvents)
	if err != nil {
		return e, err
	}
	seq, err := b.NextSequence()
	if err != nil {
		return e, err
	}
	e.Seq = seq
	if tx.by != "" && e.Fields["by"] == "" {
		e.Fields = maps.Clone(e.Fields)
		if e.Fields == nil {
			e.Fields = map[string]string{}
		}
		e.Fields["by"] = tx.by
	}
	if e.Time.IsZero() {
		e.Time = tx.now
	}
	return e, tx.putJSON(bucketEvents, u64(seq), e)
}

// EventFilter selects events; zero fields match everything.
type EventFilter struct {
	Kind    string // exact kind, or a prefix ending in "." (e.g. "deploy.")
	Subject string
	Since   time.Time
	After   uint64 // only events with Seq > After
	Limit   int    // newest Limit events (0 = all)
}

func (f EventFilter) match(e Event) bool {
	if f.Kind != "" && e.Kind != f.Kind && !(f.Kind[len(f.Kind)-1] == '.' && len(e.Kind) > len(f.Kind) && e.Kind[:len(f.Kind)] == f.Kind) {
		return false
	}
	if f.Subject != "" && e.Subject != f.Subject {
		return false
	}
	return !e.Time.Before(f.Since)
}

// Events returns matching events, oldest first.
func (tx *Tx) Events(f EventFilter) ([]Event, error) {
	b, err := tx.bucket(bucketEvents)
	if err != nil {
		return nil, err
	}
	var out []Event
	// Walk newest first so Limit stops early, then reverse.
	c := b.Cursor()
	for k, _ := c.Last(); k != nil; k, _ = c.Prev() {
		seq := binary.BigEndian.Uint64(k)
		if seq <= f.After {
			break
		}
		var e Event
		if _, err := tx.getJSON(bucketEvents, k, &e); err != nil {
			return nil, err
		}
		if !f.match(e) {
			continue
		}
		out = append(out, e)
		if f.Limit > 0 && len(out) == f.Limit {
			break
		}
	}
	for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
		out[i], out[j] = out[j], out[i]
	}
	return out, nil
}

// PutHost stores arbitrary per-host state (JSON) under a host name and a kind
// (inventory observation, slot table, ...).
func (tx *Tx) PutHost(kind, host string, v any) error {
	return tx.putJSON(bucketHosts, hostKey(kind, host), v)
}

// Host reads per-host state stored by PutHost.
func (tx *Tx) Host(kind, host string, v any) (bool, error) {
	return tx.getJSON(bucketHosts, hostKey(kind, host), v)
}

// HostNames lists the hosts that have state of a kind.
func (tx *Tx) HostNames(kind string) ([]string, error) {
	b, err := tx.bucket(bucketHosts)
	if err != nil {
		return nil, err
	}
	prefix := []byte(kind + "\x00")
	var out []string
	c := b.Cursor()
	for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
		out = append(out, string(k[len(prefix):]))
	}
	return out, nil
}

func hostKey(kind, host string) []byte { return []byte(kind + "\x00" + host) }

// DeleteHost removes per-host state of a kind; removing what is not there is no error.
func (tx *Tx) DeleteHost(kind, host string) error {
	b, err := tx.bucket(bucketHosts)
	if err != nil {
		return err
	}
	return b.Delete(hostKey(kind, host))
}
