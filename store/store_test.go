package store_test

import (
	"context"
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/patchctl/patchctl/store"
	bolt "go.etcd.io/bbolt"
)

func open(t *testing.T, path string) *store.Store {
	t.Helper()
	s, err := store.Open(context.Background(), path, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestReopenKeepsState(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "state.db")
	s := open(t, path)
	first := time.Date(2021, 7, 13, 0, 0, 0, 0, time.UTC)
	err := s.Update(ctx, func(tx *store.Tx) error {
		if err := tx.PutRelease(store.Release{Source: "twitter/twemproxy", Tag: "0.5.0", Version: "0.5.0", FirstSeen: first}); err != nil {
			return err
		}
		_, err := tx.AppendEvent(store.Event{Kind: "release.new", Subject: "twitter/twemproxy", Message: "0.5.0"})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	s.Close()

	s = open(t, path)
	err = s.Update(ctx, func(tx *store.Tx) error {
		// A later put must keep FirstSeen.
		return tx.PutRelease(store.Release{Source: "twitter/twemproxy", Tag: "0.5.0", Version: "0.5.0", Name: "renamed"})
	})
	if err != nil {
		t.Fatal(err)
	}
	err = s.View(ctx, func(tx *store.Tx) error {
		rs, err := tx.Releases("twitter/twemproxy")
		if err != nil {
			return err
		}
		if len(rs) != 1 || rs[0].Name != "renamed" || !rs[0].FirstSeen.Equal(first) {
			t.Errorf("releases after reopen = %+v", rs)
		}
		evs, err := tx.Events(store.EventFilter{Kind: "release."})
		if err != nil {
			return err
		}
		if len(evs) != 1 || evs[0].Seq != 1 || evs[0].Message != "0.5.0" {
			t.Errorf("events = %+v", evs)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestLockedStore(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.db")
	open(t, path)
	_, err := store.Open(context.Background(), path, store.Options{Timeout: 50 * time.Millisecond})
	if !errors.Is(err, store.ErrLocked) {
		t.Fatalf("second open: err = %v, want ErrLocked", err)
	}
}

func TestCorruptStore(t *testing.T) {
	dir := t.TempDir()
	for name, content := range map[string][]byte{
		"garbage":   []byte("this is not a bbolt file, not even close; padding padding padding padding"),
		"zeros":     make([]byte, 8192),
		"truncated": nil,
	} {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(dir, name+".db")
			if name == "truncated" {
				s := open(t, path)
				s.Close()
				raw, err := os.ReadFile(path)
				if err != nil {
					t.Fatal(err)
				}
				content = raw[:4096+100]
			}
			if err := os.WriteFile(path, content, 0o600); err != nil {
				t.Fatal(err)
			}
			_, err := store.Open(context.Background(), path, store.Options{})
			if !errors.Is(err, store.ErrCorrupt) {
				t.Fatalf("err = %v, want ErrCorrupt", err)
			}
			// The damaged file must be left as it was, for forensics.
			after, _ := os.ReadFile(path)
			if string(after) != string(content) {
				t.Fatal("open changed a corrupt file")
			}
		})
	}
}

// TestMigrationFromSchema1 builds a schema-1 file with raw bolt, as the first release wrote
// it, and checks that opening migrates it without losing data.
func TestMigrationFromSchema1(t *testing.T) {
	path := filepath.Join(t.TempDir(), "old.db")
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		for _, b := range []string{"releases", "advisories", "httpcache", "outbox", "outbox_keys", "events", "polls"} {
			if _, err := tx.CreateBucket([]byte(b)); err != nil {
				return err
			}
		}
		meta, err := tx.CreateBucket([]byte("meta"))
		if err != nil {
			return err
		}
		if err := meta.Put([]byte("schema_version"), binary.BigEndian.AppendUint64(nil, 1)); err != nil {
			return err
		}
		return tx.Bucket([]byte("releases")).Put([]byte("twitter/twemproxy\x00v0.4.1"),
			[]byte(`{"source":"twitter/twemproxy","tag":"v0.4.1","version":"0.4.1","prerelease":false,"security":true,"first_seen":"2015-06-22T00:00:00Z"}`))
	})
	if err != nil {
		t.Fatal(err)
	}
	db.Close()

	s := open(t, path)
	ctx := context.Background()
	if v, err := s.Schema(ctx); err != nil || v != store.SchemaVersion {
		t.Fatalf("schema = %d, %v; want %d", v, err, store.SchemaVersion)
	}
	err = s.Update(ctx, func(tx *store.Tx) error {
		r, ok, err := tx.Release("twitter/twemproxy", "v0.4.1")
		if err != nil || !ok || r.Version != "0.4.1" || !r.Security {
			t.Errorf("release after migration = %+v ok=%v err=%v", r, ok, err)
		}
		// The bucket added by schema 2 works.
		return tx.PutHost("inventory", "h1", map[string]string{"version": "0.4.1"})
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Check(ctx); err != nil {
		t.Fatal(err)
	}
}

func TestTooNewSchema(t *testing.T) {
	path := filepath.Join(t.TempDir(), "new.db")
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Update(func(tx *bolt.Tx) error {
		meta, _ := tx.CreateBucket([]byte("meta"))
		return meta.Put([]byte("schema_version"), binary.BigEndian.AppendUint64(nil, store.SchemaVersion+1))
	}); err != nil {
		t.Fatal(err)
	}
	db.Close()
	if _, err := store.Open(context.Background(), path, store.Options{}); !errors.Is(err, store.ErrTooNew) {
		t.Fatalf("err = %v, want ErrTooNew", err)
	}
}

func TestOutboxExactlyOnce(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "state.db")
	s := open(t, path)
	enqueue := func() bool {
		var added bool
		if err := s.Update(ctx, func(tx *store.Tx) (err error) {
			added, err = tx.Enqueue("release:twitter/twemproxy:0.5.0", []byte(`{"title":"0.5.0"}`))
			return err
		}); err != nil {
			t.Fatal(err)
		}
		return added
	}
	if !enqueue() {
		t.Fatal("first enqueue did not add")
	}
	if enqueue() {
		t.Fatal("second enqueue of the same key added a duplicate")
	}
	s.Close()
	s = open(t, path)
	if enqueue() {
		t.Fatal("enqueue after restart added a duplicate")
	}
	err := s.Update(ctx, func(tx *store.Tx) error {
		items, err := tx.Outbox(true)
		if err != nil {
			return err
		}
		if len(items) != 1 {
			t.Fatalf("pending = %d, want 1", len(items))
		}
		items[0].SentAt = tx.Now()
		return tx.PutOutboxItem(items[0])
	})
	if err != nil {
		t.Fatal(err)
	}
	_ = s.View(ctx, func(tx *store.Tx) error {
		if items, _ := tx.Outbox(true); len(items) != 0 {
			t.Errorf("pending after send = %d", len(items))
		}
		return nil
	})
}

func TestEventFilter(t *testing.T) {
	ctx := context.Background()
	s := open(t, filepath.Join(t.TempDir(), "state.db"))
	kinds := []string{"poll.ok", "release.new", "poll.failed", "deploy.step", "release.new"}
	err := s.Update(ctx, func(tx *store.Tx) error {
		for i, k := range kinds {
			if _, err := tx.AppendEvent(store.Event{Kind: k, Subject: "s" + string(rune('0'+i%2))}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		f    store.EventFilter
		want []uint64
	}{
		{store.EventFilter{}, []uint64{1, 2, 3, 4, 5}},
		{store.EventFilter{Kind: "poll."}, []uint64{1, 3}},
		{store.EventFilter{Kind: "release.new"}, []uint64{2, 5}},
		{store.EventFilter{Kind: "release"}, nil},
		{store.EventFilter{Subject: "s1"}, []uint64{2, 4}},
		{store.EventFilter{Limit: 2}, []uint64{4, 5}},
		{store.EventFilter{After: 3}, []uint64{4, 5}},
	}
	for _, c := range cases {
		_ = s.View(ctx, func(tx *store.Tx) error {
			evs, err := tx.Events(c.f)
			if err != nil {
				t.Fatal(err)
			}
			var got []uint64
			for _, e := range evs {
				got = append(got, e.Seq)
			}
			if len(got) != len(c.want) {
				t.Errorf("%+v: got %v, want %v", c.f, got, c.want)
				return nil
			}
			for i := range got {
				if got[i] != c.want[i] {
					t.Errorf("%+v: got %v, want %v", c.f, got, c.want)
				}
			}
			return nil
		})
	}
}

// Every event appended under a ctx naming who asked records it; other events do not.
func TestActorStampsEvents(t *testing.T) {
	s := open(t, filepath.Join(t.TempDir(), "state.db"))
	ctx := store.WithActor(t.Context(), "uid 1000 (alice)")
	fields := map[string]string{"op": "1"}
	for _, c := range []context.Context{ctx, t.Context()} {
		if err := s.Update(c, func(tx *store.Tx) error {
			_, err := tx.AppendEvent(store.Event{Kind: "deploy.step", Message: "m", Fields: fields})
			return err
		}); err != nil {
			t.Fatal(err)
		}
	}
	var evs []store.Event
	if err := s.View(t.Context(), func(tx *store.Tx) (err error) {
		evs, err = tx.Events(store.EventFilter{})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if len(evs) != 2 || evs[0].Fields["by"] != "uid 1000 (alice)" || evs[0].Fields["op"] != "1" || evs[1].Fields["by"] != "" {
		t.Fatalf("events = %+v", evs)
	}
	if fields["by"] != "" {
		t.Fatal("the caller's fields map was changed")
	}
}

func TestStoreFileIsPrivate(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.db")
	open(t, path).Close()
	if err := os.Chmod(path, 0o644); err != nil { // as an older patchctl or a lax umask left it
		t.Fatal(err)
	}
	open(t, path).Close()
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("store file: %v, %v; want mode 0600", fi, err)
	}
}
