package cli_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/patchctl/patchctl/app"
	"github.com/patchctl/patchctl/cli"
	"github.com/patchctl/patchctl/config"
	"github.com/patchctl/patchctl/internal/testenv"
	"github.com/patchctl/patchctl/store"
)

// rawPost sends a request to the daemon's socket as a hand-written client would.
func rawPost(t *testing.T, socket, path string, header http.Header, body []byte) (int, string) {
	t.Helper()
	c := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", socket)
	}}}
	req, err := http.NewRequest(http.MethodPost, "http://patchctl"+path, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(out)
}

// TestSocketIsNotAWayIn: the daemon neither opens nor runs a file a client names; a dry
// run of an uploaded binary runs and writes nothing; requests are decoded strictly and
// bounded; a newer CLI is told so; every event of an operation says who asked.
func TestSocketIsNotAWayIn(t *testing.T) {
	h := newDeployHost(t)
	c := startDaemon(t, h.cfg)
	cfg, err := config.LoadFile(h.cfg)
	if err != nil {
		t.Fatal(err)
	}
	blobs := func() int {
		entries, _ := os.ReadDir(filepath.Join(cfg.Artifacts.Dir, "sha256"))
		return len(entries)
	}

	// A script posing as nutcracker, leaving a mark when run.
	dir := t.TempDir()
	mark := filepath.Join(dir, "ran")
	evil := filepath.Join(dir, "evil.sh")
	os.WriteFile(evil, []byte("#!/bin/sh\ntouch "+mark+"\necho 'This is nutcracker-0.5.0' >&2\n"), 0o755)
	before := blobs()
	code, out, errOut := run(t, nil, "--config", h.cfg, "deploy", "--host", "proxy-1", "--version", "0.5.0", "--binary", evil, "--dry-run")
	if code != cli.ExitOK || !strings.Contains(out, "dry run") {
		t.Fatalf("dry run: exit %d\n%s%s", code, out, errOut)
	}
	if _, err := os.Stat(mark); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the dry run ran the binary: %v", err)
	}
	if n := blobs(); n != before {
		t.Fatalf("the dry run wrote %d files into the artifact cache", n-before)
	}
	// Nor does a dry run from the configured sources fetch, extract or run anything.
	code, out, errOut = run(t, nil, "--config", h.cfg, "deploy", "--host", "proxy-1", "--version", "0.4.1", "--dry-run")
	if code != cli.ExitOK || !strings.Contains(out, "0.4.1-(unresolved)") {
		t.Fatalf("dry run from the sources: exit %d\n%s%s", code, out, errOut)
	}
	if n := blobs(); n != before {
		t.Fatalf("the dry run wrote %d files into the artifact cache", n-before)
	}

	// A path in a request is not even understood: the field does not exist.
	var ae *app.Error
	err = c.Call(t.Context(), "deploy", map[string]any{"host": "proxy-1", "version": "0.5.0", "binary": "/etc/shadow", "dry_run": true}, nil)
	if !errors.As(err, &ae) || ae.Kind != app.KindUsage || !strings.Contains(ae.Msg, `unknown field "binary"`) {
		t.Fatalf("a request naming a path: %v", err)
	}
	// An uploaded binary whose content is not the announced digest is refused and not kept.
	sum, err := app.FileSHA256(testenv.Nutcracker(t, "0.5.0"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Upload(t.Context(), strings.NewReader("#!/bin/sh\n"), sum, "0.5.0"); err == nil || !strings.Contains(err.Error(), "sha256") {
		t.Fatalf("upload of other content: %v", err)
	}
	if n := blobs(); n != before {
		t.Fatal("refused upload kept in the cache")
	}

	for _, tc := range []struct {
		name   string
		path   string
		header http.Header
		body   []byte
		status int
		want   string
	}{
		{"oversized", "/v1/call/events", nil, append(append([]byte(`{"kind":"`), bytes.Repeat([]byte("x"), 2<<20)...), `"}`...), http.StatusRequestEntityTooLarge, "over the limit of 1048576 bytes"},
		{"trailing data", "/v1/call/events", nil, []byte(`{"kind":"a"}{"kind":"b"}`), http.StatusBadRequest, "data after the arguments"},
		{"newer client", "/v1/call/status", http.Header{"Patchctl-Api": {"99"}}, []byte(`{}`), http.StatusBadRequest, "restart the daemon with the new patchctl"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, body := rawPost(t, cfg.Socket, tc.path, tc.header, tc.body)
			if status != tc.status || !strings.Contains(body, tc.want) {
				t.Fatalf("status %d, want %d with %q: %.300s", status, tc.status, tc.want, body)
			}
		})
	}

	// A real deploy of an uploaded 0.5.0: every event of the operation says who asked.
	code, out, errOut = run(t, nil, "--config", h.cfg, "deploy", "--host", "proxy-1", "--version", "0.5.0", "--binary", testenv.Nutcracker(t, "0.5.0"))
	if code != cli.ExitOK {
		t.Fatalf("deploy --binary: exit %d\n%s%s", code, out, errOut)
	}
	var evs []store.Event
	if err := c.Call(t.Context(), "events", store.EventFilter{Kind: "deploy."}, &evs); err != nil {
		t.Fatal(err)
	}
	who := app.Caller{UID: os.Getuid(), Known: true}.String()
	if len(evs) < 5 {
		t.Fatalf("%d deploy events", len(evs))
	}
	for _, e := range evs {
		if e.Fields["by"] != who {
			t.Errorf("event %d %s: by %q, want %q (the socket's peer)", e.Seq, e.Kind, e.Fields["by"], who)
		}
	}
	if fi, err := os.Stat(filepath.Join(cfg.Artifacts.Dir, "sha256", sum)); err != nil || fi.Mode().Perm() != 0o700 {
		t.Fatalf("uploaded binary in the cache: %v, %v; want mode 0700", fi, err)
	}
}

// TestChangesNeedAnAllowedUser runs the CLI as nobody against a daemon whose socket group
// nobody is in and whose api.allow_users does not list it: reading works, changing is
// refused, saying which setting to change. Without the group, the error says which socket
// and which group to join.
func TestChangesNeedAnAllowedUser(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Fatal("runs the CLI as nobody: run as root (CI does)")
	}
	shared, err := os.MkdirTemp("", "cli-access-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(shared) })
	os.Chmod(shared, 0o755)
	// The CLI as nobody: a copy of this test binary nobody may run.
	bin := filepath.Join(shared, "patchctl.test")
	data, err := os.ReadFile(os.Args[0])
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bin, data, 0o755); err != nil {
		t.Fatal(err)
	}
	daemonCfg := func(name, extra string) string {
		dir := filepath.Join(shared, name)
		os.Mkdir(dir, 0o755)
		p := filepath.Join(dir, "patchctl.yml")
		os.WriteFile(p, []byte("data_dir: "+filepath.Join(dir, "state")+"\nsocket: "+filepath.Join(dir, "run", "patchctl.sock")+
			"\nmetrics:\n  listen: ''\n"+extra), 0o644)
		os.Mkdir(filepath.Join(dir, "run"), 0o755)
		return p
	}
	asNobody := func(cfg string, args ...string) (int, string) {
		argv, _ := json.Marshal(append([]string{"--config", cfg}, args...))
		cmd := exec.Command(bin, "-test.run=^$")
		cmd.Env = []string{cliEnv + "=" + string(argv), "PATH=" + os.Getenv("PATH")}
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		err := cmd.Run()
		var exit *exec.ExitError
		if err != nil && !errors.As(err, &exit) {
			t.Fatal(err)
		}
		return cmd.ProcessState.ExitCode(), out.String()
	}

	restricted := daemonCfg("restricted", "socket_group: nogroup\napi:\n  allow_users: [root]\n  allow_groups: [root]\n")
	startDaemon(t, restricted)
	if code, out := asNobody(restricted, "status"); code != cli.ExitOK || !strings.Contains(out, "daemon") {
		t.Fatalf("status as nobody: exit %d\n%s", code, out)
	}
	for _, args := range [][]string{{"abort", "op-1"}, {"reload"}, {"notify", "retry", "--all"},
		{"deploy", "--host", "proxy-1", "--version", "0.5.0"}, {"rollback", "--host", "proxy-1"}} {
		code, out := asNobody(restricted, args...)
		if code != cli.ExitFailure || !strings.Contains(out, "uid 65534 (nobody) may not call") || !strings.Contains(out, "api.allow_users") {
			t.Errorf("%v as nobody: exit %d\n%s", args, code, out)
		}
	}

	for _, tc := range []struct{ name, extra, want string }{
		{"private", "", "only its owner, uid 0, may use it; set socket_group"},
		{"grouped", "socket_group: root\n", "join the group root"},
	} {
		cfg := daemonCfg(tc.name, tc.extra)
		startDaemon(t, cfg)
		sock := filepath.Join(filepath.Dir(cfg), "run", "patchctl.sock")
		code, out := asNobody(cfg, "status")
		if code == cli.ExitOK || !strings.Contains(out, "permission denied on the daemon's socket "+sock) || !strings.Contains(out, tc.want) {
			t.Errorf("status as nobody, %s socket: exit %d, want %q in\n%s", tc.name, code, tc.want, out)
		}
	}
}
