package rollout

import (
	"os/exec"
	"strings"
	"testing"

	"github.com/patchctl/patchctl/transport"
)

// TestIDsScript: the user's ids come from /etc/passwd when it names the user, else from
// id (a uid given as a number here stands for a user only another database knows), and an
// unknown user is an error.
func TestIDsScript(t *testing.T) {
	idOf := func(args ...string) string {
		out, err := exec.Command("id", args...).Output()
		if err != nil {
			t.Fatalf("id %v: %v", args, err)
		}
		return strings.TrimSpace(string(out))
	}
	self := idOf("-u")
	for _, tc := range []struct {
		name, user, path, want string
	}{
		{"in /etc/passwd", "nutcracker", "", self + " " + idOf("-u", "nutcracker") + " " + idOf("-g", "nutcracker")},
		{"through id", "0", "", self + " 0 0"},
		{"unknown", "no-such-user-patchctl", "", ""},
		// The suite runs as root, whose login needs setpriv; sh itself is found by its path.
		{"root login without setpriv", "nutcracker", t.TempDir(), ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.path != "" {
				t.Setenv("PATH", tc.path)
			}
			res, err := (&transport.Local{}).Run(ctxT(t), []string{"/bin/sh", "-c", idsScript, "ids", tc.user}, nil)
			got := strings.TrimSpace(string(res.Stdout))
			if tc.want == "" {
				if err == nil {
					t.Fatalf("ids of %s: %q, want an error", tc.user, got)
				}
				if tc.path != "" && !strings.Contains(err.Error(), "setpriv not found") {
					t.Fatalf("without setpriv: %v, want it named", err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("ids of %s: %q, %v; want %q", tc.user, got, err, tc.want)
			}
		})
	}
}
