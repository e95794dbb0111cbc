package store_test

import (
	"context"
	"encoding/binary"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/patchctl/patchctl/store"
	bolt "go.etcd.io/bbolt"
)

type clock struct{ t time.Time }

func (c *clock) Now() time.Time { return c.t }

func openAt(t *testing.T, path string, clk *clock) *store.Store {
	t.Helper()
	s, err := store.Open(context.Background(), path, store.Options{Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func counts(t *testing.T, s *store.Store) (pending, undelivered int) {
	t.Helper()
	err := s.View(context.Background(), func(tx *store.Tx) (err error) {
		pending, undelivered, err = tx.OutboxCounts()
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return pending, undelivered
}

// TestMigrationIndexesOutbox builds a schema-2 outbox with raw bolt (one item pending,
// one sent, one abandoned) and checks that schema 3 indexes each where it belongs.
func TestMigrationIndexesOutbox(t *testing.T) {
	path := filepath.Join(t.TempDir(), "v2.db")
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	items := []string{
		`{"id":1,"key":"a","payload":"e30=","created":"2026-01-01T00:00:00Z","attempts":0}`,
		`{"id":2,"key":"b","payload":"e30=","created":"2026-01-01T00:00:00Z","attempts":1,"sent_at":"2026-01-01T00:00:01Z"}`,
		`{"id":3,"key":"c","payload":"e30=","created":"2026-01-01T00:00:00Z","attempts":12,"gave_up_at":"2026-01-02T00:00:00Z"}`,
	}
	err = db.Update(func(tx *bolt.Tx) error {
		for _, b := range []string{"releases", "advisories", "httpcache", "outbox", "outbox_keys", "events", "polls", "hosts"} {
			if _, err := tx.CreateBucket([]byte(b)); err != nil {
				return err
			}
		}
		meta, err := tx.CreateBucket([]byte("meta"))
		if err != nil {
			return err
		}
		if err := meta.Put([]byte("schema_version"), binary.BigEndian.AppendUint64(nil, 2)); err != nil {
			return err
		}
		for i, it := range items {
			if err := tx.Bucket([]byte("outbox")).Put(binary.BigEndian.AppendUint64(nil, uint64(i+1)), []byte(it)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	db.Close()

	clk := &clock{t: time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)}
	s := openAt(t, path, clk)
	if p, u := counts(t, s); p != 1 || u != 1 {
		t.Fatalf("after migration: %d pending, %d undelivered; want 1, 1", p, u)
	}
	// The sent item is indexed by time: retention deletes it.
	pr, err := s.Prune(context.Background(), store.Retention{Delivered: 24 * time.Hour})
	if err != nil || pr.Delivered != 1 {
		t.Fatalf("prune = %+v, %v", pr, err)
	}
	all, _ := s.Outbox(context.Background(), false)
	if len(all) != 2 || all[0].ID != 1 || all[1].ID != 3 {
		t.Fatalf("outbox after prune = %+v", all)
	}
}

// TestOutboxIndexesAndRetry follows one item through pending, abandoned, retried, sent.
func TestOutboxIndexesAndRetry(t *testing.T) {
	ctx := context.Background()
	clk := &clock{t: time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)}
	s := openAt(t, filepath.Join(t.TempDir(), "s.db"), clk)
	var id uint64
	s.Update(ctx, func(tx *store.Tx) error {
		_, err := tx.Enqueue("k", []byte(`{}`))
		id = 1
		return err
	})
	step := func(name string, change func(o *store.OutboxItem), pending, undelivered int) {
		t.Helper()
		err := s.Update(ctx, func(tx *store.Tx) error {
			o, _, err := tx.OutboxItem(id)
			if err != nil {
				return err
			}
			change(&o)
			return tx.PutOutboxItem(o)
		})
		if err != nil {
			t.Fatal(err)
		}
		if p, u := counts(t, s); p != pending || u != undelivered {
			t.Fatalf("%s: %d pending, %d undelivered; want %d, %d", name, p, u, pending, undelivered)
		}
	}
	step("attempt failed", func(o *store.OutboxItem) { o.Attempts++ }, 1, 0)
	step("gave up", func(o *store.OutboxItem) { o.GaveUpAt = clk.t }, 0, 1)
	var retried, again bool
	s.Update(ctx, func(tx *store.Tx) (err error) {
		if retried, err = tx.Retry(id); err != nil {
			return err
		}
		again, err = tx.Retry(id) // pending now: nothing to retry
		return err
	})
	if !retried || again {
		t.Fatalf("retry = %v, again = %v", retried, again)
	}
	if p, u := counts(t, s); p != 1 || u != 0 {
		t.Fatalf("after retry: %d pending, %d undelivered", p, u)
	}
	o, _, _ := func() (o store.OutboxItem, ok bool, err error) {
		s.View(ctx, func(tx *store.Tx) error { o, ok, err = tx.OutboxItem(id); return err })
		return
	}()
	if o.Attempts != 0 || !o.GaveUpAt.IsZero() {
		t.Fatalf("retried item = %+v", o)
	}
	step("sent", func(o *store.OutboxItem) { o.SentAt = clk.t }, 0, 0)
}

// TestPrune: events, sent items and stale cache entries older than the retention go;
// newer ones, pending items and the idempotency keys stay.
func TestPrune(t *testing.T) {
	ctx := context.Background()
	clk := &clock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	s := openAt(t, filepath.Join(t.TempDir(), "s.db"), clk)
	for day := range 10 {
		err := s.Update(ctx, func(tx *store.Tx) error {
			if _, err := tx.AppendEvent(store.Event{Kind: "poll.ok", Message: fmt.Sprint(day)}); err != nil {
				return err
			}
			key := fmt.Sprintf("release:%d", day)
			if _, err := tx.Enqueue(key, []byte(`{}`)); err != nil {
				return err
			}
			o, _, err := tx.OutboxItem(uint64(day + 1))
			if err != nil {
				return err
			}
			if day != 3 { // day 3's alert is still pending
				o.SentAt = tx.Now()
			}
			if err := tx.PutOutboxItem(o); err != nil {
				return err
			}
			return tx.PutCacheEntry(fmt.Sprintf("https://api/page%d", day%5), store.CacheEntry{ETag: "x", Body: []byte("[]")})
		})
		if err != nil {
			t.Fatal(err)
		}
		clk.t = clk.t.Add(24 * time.Hour)
	}
	// Now day 10; keep 4 days: days 0-5 go (day 3's alert is pending and stays).
	p, err := s.Prune(ctx, store.Retention{Events: 4 * 24 * time.Hour, Delivered: 4 * 24 * time.Hour, HTTPCache: 4 * 24 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	// Cache pages 0-4 were last stored on days 5-9: only page 0 (day 5) is older than day 6.
	if p != (store.Pruned{Events: 6, Delivered: 5, HTTPCache: 1}) {
		t.Fatalf("pruned %+v", p)
	}
	var evs []store.Event
	s.View(ctx, func(tx *store.Tx) (err error) { evs, err = tx.Events(store.EventFilter{}); return err })
	if len(evs) != 4 || evs[0].Message != "6" {
		t.Fatalf("events left: %+v", evs)
	}
	items, _ := s.Outbox(ctx, false)
	if len(items) != 5 || items[0].Key != "release:3" {
		t.Fatalf("outbox left: %+v", items)
	}
	// A pruned alert's key still refuses a second alert.
	s.Update(ctx, func(tx *store.Tx) error {
		added, err := tx.Enqueue("release:0", []byte(`{}`))
		if added || err != nil {
			t.Errorf("re-enqueue of a pruned alert = %v, %v", added, err)
		}
		return nil
	})
	if n, err := s.Size(ctx); err != nil || n <= 0 {
		t.Fatalf("size = %d, %v", n, err)
	}
}
