package cli_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/patchctl/patchctl/cli"
)

func TestNotifyTest(t *testing.T) {
	var got atomic.Int32
	var body atomic.Value
	status := atomic.Int32{}
	status.Store(http.StatusOK)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got.Add(1)
		b, _ := io.ReadAll(r.Body)
		body.Store(string(b))
		w.WriteHeader(int(status.Load()))
		if status.Load() == http.StatusOK {
			w.Write([]byte("ok"))
		} else {
			w.Write([]byte("no_service"))
		}
	}))
	defer srv.Close()
	const secretPath = "/services/T0/B0/TOPSECRETPATH"
	cfg := writeConfig(t, "slack:\n  webhook_url: "+srv.URL+secretPath+"\n")

	code, out, errOut := run(t, nil, "--config", cfg, "notify", "test")
	if code != cli.ExitOK || !strings.Contains(out, "slack webhook") || got.Load() != 1 {
		t.Fatalf("exit %d, requests %d\n%s%s", code, got.Load(), out, errOut)
	}
	if !strings.Contains(body.Load().(string), "patchctl test message") {
		t.Fatalf("payload = %s", body.Load())
	}
	status.Store(http.StatusNotFound)
	code, out, errOut = run(t, nil, "--config", cfg, "notify", "test")
	if code != cli.ExitFailure || strings.Contains(out+errOut, "TOPSECRETPATH") || !strings.Contains(errOut, "no_service") {
		t.Fatalf("failing webhook: exit %d\n%s%s", code, out, errOut)
	}
	// Both attempts are in the event log.
	code, out, _ = run(t, nil, "--config", cfg, "events", "--kind", "notify.test")
	if code != 0 || strings.Count(out, "notify.test") != 2 {
		t.Fatalf("events:\n%s", out)
	}
}
