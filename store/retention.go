package store

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"time"
)

// Retention says how long records that only grow are kept. A zero duration keeps them
// forever.
type Retention struct {
	Events    time.Duration // the event log
	Delivered time.Duration // outbox items sent successfully (their keys stay: no re-alert)
	HTTPCache time.Duration // stored GitHub answers not re-validated for this long
}

// Pruned counts what one Prune deleted.
type Pruned struct {
	Events    int `json:"events"`
	Delivered int `json:"delivered"`
	HTTPCache int `json:"http_cache"`
}

// pruneBatch bounds one transaction, so a first prune of a large store does not hold the
// write lock for long; Prune loops until nothing is left.
const pruneBatch = 5000

// Prune deletes what is older than r allows, as of now. Its cost follows what it deletes
// (plus the HTTP cache, a few entries per source), not the size of the store.
func (s *Store) Prune(ctx context.Context, r Retention) (Pruned, error) {
	var total Pruned
	now := s.now()
	for {
		var p Pruned
		err := s.Update(ctx, func(tx *Tx) error {
			var err error
			if r.Events > 0 {
				if p.Events, err = tx.pruneEvents(now.Add(-r.Events), pruneBatch); err != nil {
					return err
				}
			}
			if r.Delivered > 0 {
				if p.Delivered, err = tx.pruneDelivered(now.Add(-r.Delivered), pruneBatch); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return total, err
		}
		total.Events += p.Events
		total.Delivered += p.Delivered
		if p.Events < pruneBatch && p.Delivered < pruneBatch {
			break
		}
	}
	if r.HTTPCache > 0 {
		err := s.Update(ctx, func(tx *Tx) (err error) {
			total.HTTPCache, err = tx.pruneCache(now.Add(-r.HTTPCache))
			return err
		})
		if err != nil {
			return total, err
		}
	}
	return total, nil
}

// pruneEvents deletes up to max events older than before, oldest first. Events are
// appended in time order, so the walk stops at the first one to keep.
func (tx *Tx) pruneEvents(before time.Time, max int) (int, error) {
	b, err := tx.bucket(bucketEvents)
	if err != nil {
		return 0, err
	}
	n := 0
	c := b.Cursor()
	for k, raw := c.First(); k != nil && n < max; k, raw = c.First() {
		var e struct {
			Time time.Time `json:"time"`
		}
		if err := json.Unmarshal(raw, &e); err != nil {
			return n, fmt.Errorf("%w: events/%d: %v", ErrCorrupt, binary.BigEndian.Uint64(k), err)
		}
		if !e.Time.Before(before) {
			break
		}
		if err := c.Delete(); err != nil {
			return n, err
		}
		n++
	}
	return n, nil
}

// pruneDelivered deletes up to max items sent before before, oldest first, through the
// sent index.
func (tx *Tx) pruneDelivered(before time.Time, max int) (int, error) {
	sent, err := tx.bucket(bucketOutboxSent)
	if err != nil {
		return 0, err
	}
	out, err := tx.bucket(bucketOutbox)
	if err != nil {
		return 0, err
	}
	n := 0
	c := sent.Cursor()
	for k, _ := c.First(); k != nil && n < max; k, _ = c.First() {
		if len(k) != 16 {
			return n, fmt.Errorf("%w: outbox_sent key of %d bytes", ErrCorrupt, len(k))
		}
		if int64(binary.BigEndian.Uint64(k[:8])) >= before.UnixNano() {
			break
		}
		if err := out.Delete(k[8:]); err != nil {
			return n, err
		}
		if err := c.Delete(); err != nil {
			return n, err
		}
		n++
	}
	return n, nil
}

// pruneCache deletes stored HTTP answers last stored (a full walk re-validates and
// re-stores every page at least daily) before before: pages of listings that shrank, or
// of sources no longer polled.
func (tx *Tx) pruneCache(before time.Time) (int, error) {
	b, err := tx.bucket(bucketHTTPCache)
	if err != nil {
		return 0, err
	}
	var stale [][]byte
	c := b.Cursor()
	for k, raw := c.First(); k != nil; k, raw = c.Next() {
		var e struct {
			StoredAt time.Time `json:"stored_at"`
		}
		if err := json.Unmarshal(raw, &e); err != nil {
			return 0, fmt.Errorf("%w: httpcache/%q: %v", ErrCorrupt, k, err)
		}
		if e.StoredAt.Before(before) {
			stale = append(stale, append([]byte(nil), k...))
		}
	}
	for _, k := range stale {
		if err := b.Delete(k); err != nil {
			return 0, err
		}
	}
	return len(stale), nil
}

// Size is the store file's size in bytes as this transaction sees it. bbolt reuses freed
// pages, so a store under retention stops growing rather than shrinking.
func (tx *Tx) Size() int64 { return tx.tx.Size() }

// Size is the store file's size in bytes.
func (s *Store) Size(ctx context.Context) (n int64, err error) {
	err = s.View(ctx, func(tx *Tx) error {
		n = tx.Size()
		return nil
	})
	return n, err
}
