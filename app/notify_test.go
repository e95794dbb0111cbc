package app_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/patchctl/patchctl/app"
	"github.com/patchctl/patchctl/mirror"
)

// TestUndeliveredAlertsAndRetry: an alert Slack refuses for good shows in status and in
// the metrics as undelivered (not as "0 pending" and gone), and `notify retry` sends it.
func TestUndeliveredAlertsAndRetry(t *testing.T) {
	gh := httptest.NewServer(mirror.New(mirror.Twemproxy(), mirror.Options{}))
	defer gh.Close()
	var refuse atomic.Bool
	var delivered atomic.Int32
	refuse.Store(true)
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if refuse.Load() {
			http.Error(w, "invalid_token", http.StatusForbidden) // what Slack says for a revoked hook
			return
		}
		delivered.Add(1)
		w.Write([]byte("ok"))
	}))
	defer hook.Close()
	cfg := testConfig(t, "github:\n  api_url: "+gh.URL+"\ntracker:\n  jitter: 0s\n  sources: [{repo: twitter/twemproxy}]\n"+
		"slack:\n  webhook_url: "+hook.URL+"/services/T0/B0/x\nnotify:\n  interval: 50ms\n")
	d := serve(t, cfg, app.Options{})

	var st app.Status
	eventually(t, "the start-up alert to be given up on", func() bool {
		return d.call(t, "status", nil, &st) == nil && len(st.Undelivered) == 1
	})
	u := st.Undelivered[0]
	if st.OutboxDepth != 0 || !strings.Contains(u.Headline, "now tracks twitter/twemproxy") || !strings.Contains(u.LastError, "403") || st.StoreBytes <= 0 {
		t.Fatalf("status = %+v", st)
	}
	if m := metrics(t, d.addrs.Metrics); !strings.Contains(m, "patchctl_outbox_undelivered 1") || !strings.Contains(m, "patchctl_store_bytes") {
		t.Fatalf("metrics lack the undelivered alert or the store size:\n%s", m)
	}

	// Retrying something that is not undelivered is a usage error.
	if err := d.call(t, "notify.retry", app.RetryArgs{ID: u.ID + 100}, nil); err == nil || !strings.Contains(err.Error(), "not undelivered") {
		t.Fatalf("retry of an unknown id: %v", err)
	}
	refuse.Store(false)
	var res app.RetryResult
	if err := d.call(t, "notify.retry", app.RetryArgs{All: true}, &res); err != nil || len(res.Requeued) != 1 || res.Requeued[0] != u.ID {
		t.Fatalf("retry = %+v, %v", res, err)
	}
	eventually(t, "the retried alert to be delivered", func() bool {
		return delivered.Load() == 1 && d.call(t, "status", nil, &st) == nil && len(st.Undelivered) == 0 && st.OutboxDepth == 0
	})
	if m := metrics(t, d.addrs.Metrics); !strings.Contains(m, "patchctl_outbox_undelivered 0") {
		t.Fatalf("metrics still count the alert as undelivered")
	}
}

func metrics(t *testing.T, addr string) string {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return string(body)
}
