package store

import (
	"context"
	"encoding/binary"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
)

// OutboxItem is a notification waiting to be sent, or sent. It is written in the same
// transaction as the change it reports, so a change is never recorded without its alert.
type OutboxItem struct {
	ID          uint64    `json:"id"`
	Key         string    `json:"key"` // idempotency key: one item per key, ever
	Payload     []byte    `json:"payload"`
	Created     time.Time `json:"created"`
	Attempts    int       `json:"attempts"`
	NextAttempt time.Time `json:"next_attempt,omitzero"`
	LastError   string    `json:"last_error,omitempty"`
	SentAt      time.Time `json:"sent_at,omitzero"`
	GaveUpAt    time.Time `json:"gave_up_at,omitzero"`
}

// Pending reports whether the item still has to be sent.
func (o OutboxItem) Pending() bool { return o.SentAt.IsZero() && o.GaveUpAt.IsZero() }

// Outbox indexes (schema 3) keep the dispatcher's and the status's cost proportional to
// what is pending or undelivered, not to every alert ever sent:
//   - outbox_pending: id → nothing, for every pending item;
//   - outbox_gave_up: id → nothing, for every item delivery was abandoned for;
//   - outbox_sent: sent time (unix ns) + id → nothing, so retention deletes the oldest
//     sent items without reading the others.
//
// PutOutboxItem keeps them in step with the items.

// Enqueue adds a notification unless one with the same key was ever enqueued; it reports
// whether it added one. Keys make alerts exactly-once across restarts and repeated polls;
// they outlive the items retention deletes.
func (tx *Tx) Enqueue(key string, payload []byte) (bool, error) {
	keys, err := tx.bucket(bucketOutboxKeys)
	if err != nil {
		return false, err
	}
	if keys.Get([]byte(key)) != nil {
		return false, nil
	}
	out, err := tx.bucket(bucketOutbox)
	if err != nil {
		return false, err
	}
	id, err := out.NextSequence()
	if err != nil {
		return false, err
	}
	item := OutboxItem{ID: id, Key: key, Payload: payload, Created: tx.now, NextAttempt: tx.now}
	if err := tx.PutOutboxItem(item); err != nil {
		return false, err
	}
	return true, keys.Put([]byte(key), u64(id))
}

// OutboxItem returns one item by id.
func (tx *Tx) OutboxItem(id uint64) (o OutboxItem, ok bool, err error) {
	ok, err = tx.getJSON(bucketOutbox, u64(id), &o)
	return o, ok, err
}

// Outbox lists items, oldest first; pendingOnly lists only pending ones, through their index.
func (tx *Tx) Outbox(pendingOnly bool) ([]OutboxItem, error) {
	if pendingOnly {
		return tx.indexedOutbox(bucketOutboxPending)
	}
	var out []OutboxItem
	err := forEachJSON(tx, bucketOutbox, nil, func(_ []byte, o OutboxItem) error {
		out = append(out, o)
		return nil
	})
	return out, err
}

// Undelivered lists the items delivery was abandoned for, oldest first.
func (tx *Tx) Undelivered() ([]OutboxItem, error) { return tx.indexedOutbox(bucketOutboxGaveUp) }

func (tx *Tx) indexedOutbox(index []byte) ([]OutboxItem, error) {
	b, err := tx.bucket(index)
	if err != nil {
		return nil, err
	}
	var out []OutboxItem
	c := b.Cursor()
	for k, _ := c.First(); k != nil; k, _ = c.Next() {
		o, ok, err := tx.OutboxItem(binary.BigEndian.Uint64(k))
		if err != nil {
			return nil, err
		}
		if !ok {
			return nil, fmt.Errorf("%w: %s lists missing outbox item %d", ErrCorrupt, index, binary.BigEndian.Uint64(k))
		}
		out = append(out, o)
	}
	return out, nil
}

// OutboxCounts counts pending and undelivered items from the indexes, decoding nothing.
func (tx *Tx) OutboxCounts() (pending, undelivered int, err error) {
	for _, c := range []struct {
		index []byte
		n     *int
	}{{bucketOutboxPending, &pending}, {bucketOutboxGaveUp, &undelivered}} {
		b, err := tx.bucket(c.index)
		if err != nil {
			return 0, 0, err
		}
		*c.n = countKeys(b)
	}
	return pending, undelivered, nil
}

func countKeys(b *bolt.Bucket) int {
	n := 0
	c := b.Cursor()
	for k, _ := c.First(); k != nil; k, _ = c.Next() {
		n++
	}
	return n
}

// PutOutboxItem records an item (the outcome of a delivery attempt, a retry asked for)
// and keeps the indexes in step.
func (tx *Tx) PutOutboxItem(o OutboxItem) error {
	if old, ok, err := tx.OutboxItem(o.ID); err != nil {
		return err
	} else if ok && !old.SentAt.IsZero() {
		if err := tx.deleteIndex(bucketOutboxSent, sentKey(old)); err != nil {
			return err
		}
	}
	if err := tx.putJSON(bucketOutbox, u64(o.ID), o); err != nil {
		return err
	}
	return indexOutbox(tx, o)
}

// indexOutbox files o under the index its state belongs to, and under no other.
func indexOutbox(tx *Tx, o OutboxItem) error {
	pending, gaveUp := o.Pending(), o.SentAt.IsZero() && !o.GaveUpAt.IsZero()
	for _, ix := range []struct {
		bucket []byte
		in     bool
	}{{bucketOutboxPending, pending}, {bucketOutboxGaveUp, gaveUp}} {
		var err error
		if ix.in {
			err = tx.putIndex(ix.bucket, u64(o.ID))
		} else {
			err = tx.deleteIndex(ix.bucket, u64(o.ID))
		}
		if err != nil {
			return err
		}
	}
	if !o.SentAt.IsZero() {
		return tx.putIndex(bucketOutboxSent, sentKey(o))
	}
	return nil
}

func sentKey(o OutboxItem) []byte {
	return binary.BigEndian.AppendUint64(u64(uint64(o.SentAt.UnixNano())), o.ID)
}

func (tx *Tx) putIndex(bucket, key []byte) error {
	b, err := tx.bucket(bucket)
	if err != nil {
		return err
	}
	return b.Put(key, []byte{})
}

func (tx *Tx) deleteIndex(bucket, key []byte) error {
	b, err := tx.bucket(bucket)
	if err != nil {
		return err
	}
	return b.Delete(key)
}

// Retry makes an undelivered item pending again, with a fresh count of attempts. It
// reports false when id is not an undelivered item.
func (tx *Tx) Retry(id uint64) (bool, error) {
	o, ok, err := tx.OutboxItem(id)
	if err != nil || !ok || o.GaveUpAt.IsZero() || !o.SentAt.IsZero() {
		return false, err
	}
	o.GaveUpAt, o.Attempts, o.NextAttempt = time.Time{}, 0, tx.now
	return true, tx.PutOutboxItem(o)
}

// Outbox lists outbox items in a read transaction of their own, oldest first;
// pendingOnly skips sent and abandoned ones.
func (s *Store) Outbox(ctx context.Context, pendingOnly bool) (items []OutboxItem, err error) {
	err = s.View(ctx, func(tx *Tx) error {
		items, err = tx.Outbox(pendingOnly)
		return err
	})
	return items, err
}

// Thread returns where the first message of a notification thread was posted (a Slack
// channel and timestamp, as the notifier encodes it), "" before it is.
func (tx *Tx) Thread(key string) (string, error) {
	return tx.getString(bucketThreads, key)
}

// PutThread records where the first message of a thread was posted.
func (tx *Tx) PutThread(key, ref string) error {
	return tx.putString(bucketThreads, key, ref)
}
