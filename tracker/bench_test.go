package tracker_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/patchctl/patchctl/mirror"
	"github.com/patchctl/patchctl/tracker"
)

// BenchmarkPoll polls a source with 300 releases (and their 300 tags) served by the mirror
// handler: the first poll of an empty store, then an unchanged poll. It reports what each
// poll costs: requests, rate-limit units, and wall time (ns/op).
func BenchmarkPoll(b *testing.B) {
	data := b.TempDir()
	rels := genReleases(300)
	tags := make([]map[string]any, 0, len(rels))
	for _, r := range rels {
		tags = append(tags, map[string]any{"name": r["tag_name"]})
	}
	writeRepo(b, data, "acme/big", rels, tags, []map[string]any{})
	f := newFakeGitHub(b, os.DirFS(data), mirror.Options{RateLimit: 1 << 30})
	ctx := context.Background()

	newTracker := func(b *testing.B, path string) (*tracker.Tracker, func()) {
		st := openStore(b, path)
		src := githubSource(b, f, "acme/big", st, tracker.GitHubOptions{Tags: true, Advisories: true})
		return tracker.New(st, []tracker.Watch{{Source: src}}, tracker.Options{Keywords: keywords}), func() { st.Close() }
	}
	report := func(b *testing.B, before mirror.Stats) {
		after := f.mirror.Stats()
		b.ReportMetric(float64(after.Requests-before.Requests)/float64(b.N), "requests/op")
		b.ReportMetric(float64(after.Used-before.Used)/float64(b.N), "units/op")
	}

	b.Run("first", func(b *testing.B) {
		dir := b.TempDir()
		before := f.mirror.Stats()
		for i := 0; i < b.N; i++ {
			b.StopTimer()
			tr, done := newTracker(b, filepath.Join(dir, fmt.Sprintf("%d.db", i)))
			b.StartTimer()
			if _, err := tr.Poll(ctx); err != nil {
				b.Fatal(err)
			}
			b.StopTimer()
			done()
			b.StartTimer()
		}
		report(b, before)
	})
	b.Run("unchanged", func(b *testing.B) {
		tr, done := newTracker(b, filepath.Join(b.TempDir(), "patchctl.db"))
		defer done()
		if _, err := tr.Poll(ctx); err != nil {
			b.Fatal(err)
		}
		before := f.mirror.Stats()
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			rep, err := tr.Poll(ctx)
			if err != nil {
				b.Fatal(err)
			}
			if rep.Sources[0].Outcome != tracker.OutcomeUnchanged {
				b.Fatalf("outcome %s", rep.Sources[0].Outcome)
			}
		}
		report(b, before)
	})
}
