package rollout

import (
	"context"
	"testing"
	"time"

	"github.com/patchctl/patchctl/internal/testenv"
	"github.com/patchctl/patchctl/transport"
)

// dialSSH opens an SSH transport to srv as the daemon does for one operation.
func dialSSH(t testing.TB, ctx context.Context, srv *testenv.SSHServer) *transport.SSH {
	t.Helper()
	tr, err := transport.DialSSH(ctx, transport.Spec{Kind: "ssh", Address: srv.Addr, User: srv.User,
		IdentityFile: srv.IdentityFile, KnownHosts: srv.KnownHosts, Timeout: testenv.WaitTimeout})
	if err != nil {
		t.Fatalf("dial: %v\nsshd output:\n%s", err, srv.Output())
	}
	return tr
}

// TestDeployOverSSHOneConnection: a deploy and a rollback over SSH to a real sshd each run on
// one connection and in one session (the transport's remote shell), however many commands and
// files they send.
func TestDeployOverSSHOneConnection(t *testing.T) {
	e := newHost(t, startBackends(t), "")
	srv := testenv.SSHD(t)
	r := New(openStore(t, e.Store), Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 5*testenv.WaitTimeout)
	defer cancel()
	op := func(name string, do func(HostSpec) error) {
		tr := dialSSH(t, ctx, srv)
		defer tr.Close()
		h := e.spec()
		h.Transport = tr
		if err := do(h); err != nil {
			t.Fatalf("%s over ssh: %v", name, err)
		}
		st := tr.Stats()
		t.Logf("%s over ssh: %d connection(s), %d sessions", name, st.Dials, st.Sessions)
		if st.Dials != 1 || st.Sessions != 1 || st.Shells != 1 {
			t.Fatalf("%s: %+v, want every command in one remote shell on one connection", name, st)
		}
	}
	// The first build goes in locally (an SSH session takes seconds on a loaded machine),
	// the upgrade and the rollback over SSH.
	if _, err := r.Deploy(ctx, e.spec(), artifact(t, "0.4.1"), DeployOptions{}); err != nil {
		t.Fatal(err)
	}
	op("deploy 0.5.0", func(h HostSpec) error {
		_, err := r.Deploy(ctx, h, artifact(t, "0.5.0"), DeployOptions{})
		return err
	})
	check(t, r, e, "0.5.0")
	op("rollback", func(h HostSpec) error {
		_, err := r.Rollback(ctx, h, "")
		return err
	})
	check(t, r, e, "0.4.1")
}

// BenchmarkDeploy is one deploy of a pidfile host (alternating 0.4.1 and 0.5.0), in-process:
// over the local transport, and over SSH to a real OpenSSH server on loopback with one
// connection dialled per operation as the daemon does. sessions/op is what one deploy opens.
func BenchmarkDeploy(b *testing.B) {
	e := newHost(b, startBackends(b), "")
	srv := testenv.SSHD(b)
	r := New(openStore(b, e.Store), Options{})
	ctx, cancel := context.WithTimeout(context.Background(), time.Hour)
	defer cancel()
	versions := []string{"0.4.1", "0.5.0"}
	for _, kind := range []string{"local", "ssh"} {
		b.Run(kind, func(b *testing.B) {
			var sessions int64
			i := 0
			for b.Loop() {
				h := e.spec()
				var tr *transport.SSH
				if kind == "ssh" {
					tr = dialSSH(b, ctx, srv)
					h.Transport = tr
				}
				if _, err := r.Deploy(ctx, h, artifact(b, versions[i%2]), DeployOptions{}); err != nil {
					b.Fatal(err)
				}
				if tr != nil {
					sessions += tr.Stats().Sessions
					tr.Close()
				}
				i++
			}
			if kind == "ssh" {
				b.ReportMetric(float64(sessions)/float64(b.N), "sessions/op")
			}
		})
	}
}
