package store

import (
	"context"
	"time"
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

// Enqueue adds a notification unless one with the same key was ever enqueued; it reports
// whether it added one. Keys make alerts exactly-once across restarts and repeated polls.
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
	if err := tx.putJSON(bucketOutbox, u64(id), item); err != nil {
		return false, err
	}
	return true, keys.Put([]byte(key), u64(id))
}

// OutboxItem returns one item by id.
func (tx *Tx) OutboxItem(id uint64) (o OutboxItem, ok bool, err error) {
	ok, err = tx.getJSON(bucketOutbox, u64(id), &o)
	return o, ok, err
}

// Outbox lists items, oldest first; pendingOnly skips sent and abandoned ones.
func (tx *Tx) Outbox(pendingOnly bool) ([]OutboxItem, error) {
	var out []OutboxItem
	err := forEachJSON(tx, bucketOutbox, nil, func(_ []byte, o OutboxItem) error {
		if !pendingOnly || o.Pending() {
			out = append(out, o)
		}
		return nil
	})
	return out, err
}

// PutOutboxItem records the outcome of a delivery attempt.
func (tx *Tx) PutOutboxItem(o OutboxItem) error {
	return tx.putJSON(bucketOutbox, u64(o.ID), o)
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
	b, err := tx.bucket(bucketThreads)
	if err != nil {
		return "", err
	}
	return string(b.Get([]byte(key))), nil
}

// PutThread records where the first message of a thread was posted.
func (tx *Tx) PutThread(key, ref string) error {
	b, err := tx.bucket(bucketThreads)
	if err != nil {
		return err
	}
	return b.Put([]byte(key), []byte(ref))
}
