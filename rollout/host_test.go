package rollout

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/patchctl/patchctl/transport"
)

// TestReadCurrent: what the current link may hold on a host, and what readCurrent makes of it.
func TestReadCurrent(t *testing.T) {
	for _, tc := range []struct {
		name    string
		make    func(current string) error
		want    string
		wantErr string // in the message; empty for no error
		is      error
	}{
		{name: "no link yet", make: func(string) error { return nil }},
		{name: "a slot", make: func(c string) error { return os.Symlink("slots/0.5.0-b/nutcracker", c) }, want: "0.5.0-b"},
		{name: "a slot, absolute", make: func(c string) error {
			return os.Symlink(filepath.Join(filepath.Dir(c), "slots", "0.4.1-a", "nutcracker"), c)
		}, want: "0.4.1-a"},
		{name: "not a slot", make: func(c string) error { return os.Symlink("/usr/sbin/nutcracker", c) }, wantErr: "not a slot"},
		{name: "a regular file", make: func(c string) error { return os.WriteFile(c, nil, 0o644) }, wantErr: "host proxy-1", is: transport.ErrNotSymlink},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := hostFS{HostSpec{Name: "proxy-1", Transport: &transport.Local{}, Root: t.TempDir()}}
			if err := tc.make(f.current()); err != nil {
				t.Fatal(err)
			}
			got, err := f.readCurrent(ctxT(t))
			if tc.wantErr == "" {
				if err != nil || got != tc.want {
					t.Fatalf("readCurrent = %q, %v; want %q", got, err, tc.want)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) || (tc.is != nil && !errors.Is(err, tc.is)) {
				t.Fatalf("readCurrent = %q, %v; want an error with %q (matching %v)", got, err, tc.wantErr, tc.is)
			}
		})
	}
}
