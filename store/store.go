// Package store keeps everything patchctl remembers in one bbolt file: releases, advisories,
// HTTP cache entries, the notification outbox, the event log and host state. Only one process
// holds the file open at a time (bbolt takes an exclusive lock), so the daemon owns it and the
// CLI asks the daemon, opening the file itself only when no daemon runs.
package store

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	bolt "go.etcd.io/bbolt"
)

var (
	// ErrLocked means another process (usually the daemon) holds the store open.
	ErrLocked = errors.New("store is locked by another process")
	// ErrCorrupt means the file is not a usable patchctl store.
	ErrCorrupt = errors.New("store file is corrupt")
	// ErrTooNew means the file was written by a newer patchctl.
	ErrTooNew = errors.New("store schema is newer than this patchctl")
	// ErrNotFound is returned by lookups of a single record that does not exist.
	ErrNotFound = errors.New("not found")
)

var (
	bucketMeta       = []byte("meta")
	bucketReleases   = []byte("releases")
	bucketAdvisories = []byte("advisories")
	bucketHTTPCache  = []byte("httpcache")
	bucketOutbox     = []byte("outbox")
	bucketOutboxKeys = []byte("outbox_keys")
	bucketEvents     = []byte("events")
	bucketPolls      = []byte("polls")
	bucketHosts      = []byte("hosts")
	bucketPatching   = []byte("patching")
	bucketRollouts   = []byte("rollouts")
	bucketWaveHosts  = []byte("rollout_hosts")
	bucketLeases     = []byte("leases")
	bucketThreads    = []byte("threads")

	bucketOutboxPending = []byte("outbox_pending")
	bucketOutboxGaveUp  = []byte("outbox_gave_up")
	bucketOutboxSent    = []byte("outbox_sent")

	keySchema = []byte("schema_version")
)

// migrations[i] brings a store from schema i to i+1. Append only; never edit a released one.
var migrations = []func(tx *bolt.Tx) error{
	// 1: the first layout.
	func(tx *bolt.Tx) error {
		for _, b := range [][]byte{bucketReleases, bucketAdvisories, bucketHTTPCache,
			bucketOutbox, bucketOutboxKeys, bucketEvents, bucketPolls} {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		return nil
	},
	// 2: per-host inventory state.
	func(tx *bolt.Tx) error {
		_, err := tx.CreateBucketIfNotExists(bucketHosts)
		return err
	},
	// 3: outbox indexes (pending, undelivered, sent by time), filled from the outbox.
	func(tx *bolt.Tx) error {
		for _, b := range [][]byte{bucketOutboxPending, bucketOutboxGaveUp, bucketOutboxSent} {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		t := &Tx{tx: tx}
		return forEachJSON(t, bucketOutbox, nil, func(_ []byte, o OutboxItem) error { return indexOutbox(t, o) })
	},
	// 4: the patch scheduler's state: per-policy progress, bad versions, done markers.
	func(tx *bolt.Tx) error {
		_, err := tx.CreateBucketIfNotExists(bucketPatching)
		return err
	},
	// 5: fleet rollouts, their hosts, host leases, and chat threads of notifications.
	func(tx *bolt.Tx) error {
		for _, b := range [][]byte{bucketRollouts, bucketWaveHosts, bucketLeases, bucketThreads} {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		return nil
	},
}

// SchemaVersion is the schema this build writes.
var SchemaVersion = uint64(len(migrations))

// Options tune Open.
type Options struct {
	// Timeout bounds the wait for the file lock (default 1s).
	Timeout time.Duration
	// ReadOnly opens without writing; it still needs the lock, shared.
	ReadOnly bool
	// Now is the clock (default time.Now).
	Now func() time.Time
	// NoSync skips fsync on commit: for simulations and benchmarks only (a crash can lose
	// the latest commits).
	NoSync bool
}

// Store is an open patchctl store.
type Store struct {
	db   *bolt.DB
	path string
	now  func() time.Time
}

// Open opens or creates the store at path and brings its schema up to date.
func Open(ctx context.Context, path string, opts Options) (s *Store, err error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if opts.Timeout <= 0 {
		opts.Timeout = time.Second
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if !opts.ReadOnly {
		if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
			return nil, fmt.Errorf("open store: %w", err)
		}
	}
	// bbolt panics on some damaged files instead of returning an error.
	defer func() {
		if r := recover(); r != nil {
			s, err = nil, fmt.Errorf("open store %s: %w: %v", path, ErrCorrupt, r)
		}
	}()
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: opts.Timeout, ReadOnly: opts.ReadOnly, NoSync: opts.NoSync})
	if err != nil {
		var pathErr *fs.PathError
		switch {
		case errors.Is(err, bolt.ErrTimeout):
			return nil, fmt.Errorf("open store %s: %w", path, ErrLocked)
		case errors.As(err, &pathErr):
			return nil, fmt.Errorf("open store: %w", err)
		}
		// Everything else bbolt reports is about the file's contents (bad magic, checksum,
		// version, size too small).
		return nil, fmt.Errorf("open store %s: %w: %v", path, ErrCorrupt, err)
	}
	if !opts.ReadOnly {
		// The store is the daemon user's alone, even if an older patchctl or a lax umask
		// created it readable by others.
		if err := os.Chmod(path, 0o600); err != nil {
			db.Close()
			return nil, fmt.Errorf("open store: %w", err)
		}
	}
	s = &Store{db: db, path: path, now: opts.Now}
	if err := s.migrate(opts.ReadOnly); err != nil {
		db.Close()
		return nil, fmt.Errorf("open store %s: %w", path, err)
	}
	return s, nil
}

func (s *Store) migrate(readOnly bool) error {
	var have uint64
	if err := s.db.View(func(tx *bolt.Tx) error {
		if b := tx.Bucket(bucketMeta); b != nil {
			if v := b.Get(keySchema); len(v) == 8 {
				have = binary.BigEndian.Uint64(v)
			}
		}
		return nil
	}); err != nil {
		return err
	}
	switch {
	case have > SchemaVersion:
		return fmt.Errorf("%w: file has schema %d, this build knows %d", ErrTooNew, have, SchemaVersion)
	case have == SchemaVersion:
		return nil
	case readOnly:
		return fmt.Errorf("schema %d needs migrating to %d; open it read-write once", have, SchemaVersion)
	}
	// All pending migrations in one transaction: a crash leaves the old schema intact.
	return s.db.Update(func(tx *bolt.Tx) error {
		meta, err := tx.CreateBucketIfNotExists(bucketMeta)
		if err != nil {
			return err
		}
		for v := have; v < SchemaVersion; v++ {
			if err := migrations[v](tx); err != nil {
				return fmt.Errorf("migrate to schema %d: %w", v+1, err)
			}
		}
		return meta.Put(keySchema, binary.BigEndian.AppendUint64(nil, SchemaVersion))
	})
}

// Path returns the file the store lives in.
func (s *Store) Path() string { return s.path }

// Close releases the file.
func (s *Store) Close() error { return s.db.Close() }

// Schema returns the schema version of the open file.
func (s *Store) Schema(ctx context.Context) (v uint64, err error) {
	err = s.View(ctx, func(tx *Tx) error {
		if b := tx.tx.Bucket(bucketMeta); b != nil {
			if raw := b.Get(keySchema); len(raw) == 8 {
				v = binary.BigEndian.Uint64(raw)
			}
		}
		return nil
	})
	return v, err
}

// Check verifies the file's internal consistency.
func (s *Store) Check(ctx context.Context) error {
	return s.db.View(func(tx *bolt.Tx) error {
		var errs []error
		for err := range tx.Check() {
			errs = append(errs, err)
			if ctx.Err() != nil {
				break
			}
		}
		if len(errs) > 0 {
			return fmt.Errorf("%w: %w", ErrCorrupt, errors.Join(errs...))
		}
		return nil
	})
}

// Tx is a transaction with typed accessors. It is only valid inside the function given to
// Update or View; values it returns are copies.
type Tx struct {
	tx  *bolt.Tx
	now time.Time
	by  string // who asked for the change (WithActor)
}

type actorKey struct{}

// WithActor returns ctx carrying who asked for the changes made under it (for example
// "uid 1000 (alice)"); every event appended by an Update with that ctx records it as the
// field "by".
func WithActor(ctx context.Context, by string) context.Context {
	return context.WithValue(ctx, actorKey{}, by)
}

// Actor is who ctx says asked, or "".
func Actor(ctx context.Context) string {
	by, _ := ctx.Value(actorKey{}).(string)
	return by
}

// Now is the time the transaction started, for timestamps written in it.
func (tx *Tx) Now() time.Time { return tx.now }

// Update runs fn in one read-write transaction: everything fn writes lands together or not at all.
func (s *Store) Update(ctx context.Context, fn func(*Tx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return s.db.Update(func(tx *bolt.Tx) error { return fn(&Tx{tx: tx, now: s.now(), by: Actor(ctx)}) })
}

// View runs fn in a read-only snapshot.
func (s *Store) View(ctx context.Context, fn func(*Tx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return s.db.View(func(tx *bolt.Tx) error { return fn(&Tx{tx: tx, now: s.now()}) })
}

func (tx *Tx) bucket(name []byte) (*bolt.Bucket, error) {
	b := tx.tx.Bucket(name)
	if b == nil {
		return nil, fmt.Errorf("%w: bucket %s missing", ErrCorrupt, name)
	}
	return b, nil
}

// getString reads a plain string value of a bucket, "" when the key has none.
func (tx *Tx) getString(bucket []byte, key string) (string, error) {
	b, err := tx.bucket(bucket)
	if err != nil {
		return "", err
	}
	return string(b.Get([]byte(key))), nil
}

func (tx *Tx) putString(bucket []byte, key, value string) error {
	b, err := tx.bucket(bucket)
	if err != nil {
		return err
	}
	return b.Put([]byte(key), []byte(value))
}

func (tx *Tx) getJSON(bucket, key []byte, v any) (bool, error) {
	b, err := tx.bucket(bucket)
	if err != nil {
		return false, err
	}
	raw := b.Get(key)
	if raw == nil {
		return false, nil
	}
	if err := json.Unmarshal(raw, v); err != nil {
		return false, fmt.Errorf("%w: %s/%q: %v", ErrCorrupt, bucket, key, err)
	}
	return true, nil
}

func (tx *Tx) putJSON(bucket, key []byte, v any) error {
	b, err := tx.bucket(bucket)
	if err != nil {
		return err
	}
	raw, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode %s/%q: %w", bucket, key, err)
	}
	return b.Put(key, raw)
}

// forEachJSON decodes every value under prefix, in key order, into a fresh T.
func forEachJSON[T any](tx *Tx, bucket, prefix []byte, fn func(key []byte, v T) error) error {
	b, err := tx.bucket(bucket)
	if err != nil {
		return err
	}
	c := b.Cursor()
	for k, raw := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, raw = c.Next() {
		var v T
		if err := json.Unmarshal(raw, &v); err != nil {
			return fmt.Errorf("%w: %s/%q: %v", ErrCorrupt, bucket, k, err)
		}
		if err := fn(k, v); err != nil {
			return err
		}
	}
	return nil
}

func u64(n uint64) []byte { return binary.BigEndian.AppendUint64(nil, n) }
