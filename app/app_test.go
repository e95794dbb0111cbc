package app_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/patchctl/patchctl/app"
	"github.com/patchctl/patchctl/config"
	"github.com/patchctl/patchctl/internal/testenv"
	"github.com/patchctl/patchctl/store"
)

func testConfig(t testing.TB, extra string) *config.Config {
	t.Helper()
	dir := t.TempDir()
	cfg, err := config.Parse(filepath.Join(dir, "patchctl.yml"), strings.NewReader("data_dir: "+dir+"\nmetrics:\n  listen: 127.0.0.1:0\n"+extra))
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// startDaemon runs a daemon in the test and returns its addresses; it stops with the test.
func startDaemon(t *testing.T, cfg *config.Config) app.Addrs {
	t.Helper()
	_, addrs := startDaemonApp(t, cfg)
	return addrs
}

// startDaemonApp is startDaemon that also returns the App, for reading its store.
func startDaemonApp(t testing.TB, cfg *config.Config) (*app.App, app.Addrs) {
	t.Helper()
	return startDaemonWith(t, cfg, app.Options{})
}

// startDaemonWith is startDaemonApp with options (a test clock).
func startDaemonWith(t testing.TB, cfg *config.Config, opts app.Options) (*app.App, app.Addrs) {
	t.Helper()
	a, err := app.Open(context.Background(), cfg, opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan app.Addrs, 1)
	done := make(chan error, 1)
	go func() { done <- a.Serve(ctx, func(ad app.Addrs) { ready <- ad }) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("serve: %v", err)
			}
		case <-time.After(testenv.WaitTimeout):
			t.Error("daemon did not stop")
		}
		a.Close()
	})
	select {
	case ad := <-ready:
		return a, ad
	case err := <-done:
		t.Fatalf("daemon exited: %v", err)
	case <-time.After(testenv.WaitTimeout):
		t.Fatal("daemon did not start")
	}
	return nil, app.Addrs{}
}

func TestDaemonServesSocketAndMetrics(t *testing.T) {
	cfg := testConfig(t, "")
	addrs := startDaemon(t, cfg)

	fi, err := os.Stat(addrs.Socket)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("socket mode = %v, want 0600", fi.Mode().Perm())
	}
	var st app.Status
	if err := app.NewClient(addrs.Socket).Call(context.Background(), "status", nil, &st); err != nil {
		t.Fatal(err)
	}
	if !st.Daemon || st.Schema != store.SchemaVersion {
		t.Errorf("status = %+v", st)
	}
	// Do finds the daemon rather than opening the (locked) store.
	var st2 app.Status
	if err := app.Do(context.Background(), cfg, app.Options{}, "status", nil, &st2); err != nil || !st2.Daemon {
		t.Fatalf("Do = %+v, %v", st2, err)
	}
	resp, err := http.Get("http://" + addrs.Metrics + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(body), "go_goroutines") {
		t.Errorf("metrics do not look like Prometheus text: %.200s", body)
	}
	// Unknown methods are usage errors, carried across the socket.
	err = app.NewClient(addrs.Socket).Call(context.Background(), "nonsense", nil, nil)
	var ae *app.Error
	if !errors.As(err, &ae) || ae.Kind != app.KindUsage {
		t.Errorf("unknown method: %v", err)
	}
}

func TestDoWithoutDaemonOpensTheStore(t *testing.T) {
	cfg := testConfig(t, "")
	var st app.Status
	if err := app.Do(context.Background(), cfg, app.Options{}, "status", nil, &st); err != nil {
		t.Fatal(err)
	}
	if st.Daemon {
		t.Error("status claims a daemon")
	}
}

func TestLockedStoreWithoutDaemon(t *testing.T) {
	cfg := testConfig(t, "")
	// Another process holds the store but serves no socket.
	st, err := store.Open(context.Background(), cfg.StorePath(), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	err = app.Do(context.Background(), cfg, app.Options{StoreTimeout: 50 * time.Millisecond}, "status", nil, nil)
	if !errors.Is(err, store.ErrLocked) || !strings.Contains(err.Error(), "no daemon answers") {
		t.Fatalf("err = %v", err)
	}
}

func TestStaleSocketIsReplaced(t *testing.T) {
	cfg := testConfig(t, "")
	if err := os.WriteFile(cfg.Socket, []byte("left by a crash"), 0o600); err != nil {
		t.Fatal(err)
	}
	addrs := startDaemon(t, cfg)
	if err := app.NewClient(addrs.Socket).Call(context.Background(), "status", nil, nil); err != nil {
		t.Fatal(err)
	}
}
