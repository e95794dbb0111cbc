package transport

import (
	"context"
	"strings"
	"testing"

	"github.com/patchctl/patchctl/internal/testenv"
)

// TestSSHNoShell: a host where the remote shell cannot start (here: its sh is missing) gets a
// session per command, and Stats says why.
func TestSSHNoShell(t *testing.T) {
	srv := testenv.SSHD(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*testenv.WaitTimeout)
	defer cancel()
	tr, err := DialSSH(ctx, Spec{Kind: "ssh", Address: srv.Addr, User: srv.User,
		IdentityFile: srv.IdentityFile, KnownHosts: srv.KnownHosts, Timeout: testenv.WaitTimeout})
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	tr.shellCommand = "exec patchctl-no-such-sh -c :"
	for range 2 {
		res, err := tr.Run(ctx, []string{"printf", "%s", "a\nb"}, nil)
		if err != nil || string(res.Stdout) != "a\nb" {
			t.Fatalf("Run = %q, %v", res.Stdout, err)
		}
	}
	st := tr.Stats()
	if st.Shells != 0 || st.Sessions != 3 || !strings.Contains(st.NoShell, "patchctl-no-such-sh") {
		t.Fatalf("%+v, want the failed shell's session, then one per command, and why", st)
	}
}
