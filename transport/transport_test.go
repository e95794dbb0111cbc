package transport_test

import (
	"context"
	"testing"

	"github.com/patchctl/patchctl/internal/testenv"
	"github.com/patchctl/patchctl/transport"
	"github.com/patchctl/patchctl/transport/transporttest"
)

func TestLocal(t *testing.T) {
	transporttest.Run(t, func(t *testing.T) transport.Transport { return &transport.Local{} })
}

func TestSSH(t *testing.T) {
	srv := testenv.SSHD(t)
	spec := sshSpec(srv)
	transporttest.Run(t, func(t *testing.T) transport.Transport {
		ctx, cancel := context.WithTimeout(context.Background(), testenv.WaitTimeout)
		defer cancel()
		tr, err := transport.Dial(ctx, spec)
		if err != nil {
			t.Fatalf("dial: %v\nsshd output:\n%s", err, srv.Output())
		}
		t.Cleanup(func() { tr.Close() })
		return tr
	})
}

func sshSpec(srv *testenv.SSHServer) transport.Spec {
	return transport.Spec{Kind: "ssh", Address: srv.Addr, User: srv.User,
		IdentityFile: srv.IdentityFile, KnownHosts: srv.KnownHosts, Timeout: testenv.WaitTimeout}
}
