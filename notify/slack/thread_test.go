package slack_test

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/patchctl/patchctl/notify"
	"github.com/patchctl/patchctl/notify/notifytest"
	"github.com/patchctl/patchctl/store"
)

// A rollout's messages go out through the outbox: with a bot token the first is a message
// and every later one a reply in its thread; with a webhook, which cannot thread, each
// message names the rollout.
func TestRolloutMessagesThread(t *testing.T) {
	kinds := []string{notify.RolloutStarted, notify.RolloutWaveStart, notify.RolloutHostFailed, notify.RolloutPaused}
	for _, via := range []string{"bot", "webhook"} {
		t.Run(via, func(t *testing.T) {
			st, err := store.Open(t.Context(), filepath.Join(t.TempDir(), "s.db"), store.Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer st.Close()
			f := newFakeSlack(t, notifytest.OK)
			var n notify.Notifier = newWebhook(t, f)
			if via == "bot" {
				n = newBot(t, f)
			}
			// Another rollout's message in between: it starts a thread of its own.
			other := notifytest.RolloutEnvelope(notify.RolloutStarted)
			other.Rollout.ID, other.Thread = "r-other", "rollout:r-other"
			envs := []notify.Envelope{notifytest.RolloutEnvelope(kinds[0]), other}
			for _, k := range kinds[1:] {
				envs = append(envs, notifytest.RolloutEnvelope(k))
			}
			if err := st.Update(t.Context(), func(tx *store.Tx) error {
				for i, e := range envs {
					if _, err := notify.Enqueue(tx, fmt.Sprint("k", i), e); err != nil {
						return err
					}
				}
				return nil
			}); err != nil {
				t.Fatal(err)
			}
			d := &notify.Dispatcher{Store: st, Notifier: n, MaxAttempts: 3, MinBackoff: 1, MaxBackoff: 1}
			if res, err := d.Flush(t.Context()); err != nil || res.Sent != len(envs) {
				t.Fatalf("flush: %+v %v", res, err)
			}
			got := f.Received()
			if len(got) != len(envs) {
				t.Fatalf("received %d messages", len(got))
			}
			id := envs[0].Rollout.ID
			for i, m := range got {
				if !strings.Contains(m, id) && i != 1 {
					t.Errorf("message %d does not name rollout %s:\n%s", i, id, m)
				}
				threaded := strings.HasPrefix(m, "thread_ts=")
				switch {
				case via == "webhook" && threaded, via == "bot" && (i <= 1) == threaded:
					t.Errorf("message %d threaded = %v:\n%s", i, threaded, m)
				case via == "bot" && i > 1 && !strings.HasPrefix(m, "thread_ts=1714564800.000100\n"):
					t.Errorf("message %d is not a reply to the first:\n%s", i, m)
				}
			}
		})
	}
}
