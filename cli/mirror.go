package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/patchctl/patchctl/mirror"
)

// mirrorServeCmd serves a directory laid out like GitHub's REST API, so that daemons on an
// air-gapped network poll it (github.api_url) instead of GitHub.
type mirrorServeCmd struct {
	env    *Env
	dir    string
	listen string
}

func newMirrorServeCmd(env *Env, fs *flag.FlagSet) Command {
	c := &mirrorServeCmd{env: env}
	fs.StringVar(&c.dir, "dir", "", "serve this `directory` (repos/OWNER/REPO/releases.json, tags.json, security-advisories.json); default: twemproxy's history built into patchctl")
	fs.StringVar(&c.listen, "listen", "127.0.0.1:8080", "`address` to listen on")
	return c
}

func (c *mirrorServeCmd) Run(ctx context.Context) error {
	var fsys fs.FS = mirror.Twemproxy()
	what := "twemproxy's release history built into patchctl"
	if c.dir != "" {
		fi, err := os.Stat(c.dir)
		if err != nil {
			return usageErr(err)
		}
		if !fi.IsDir() {
			return usagef("--dir %s is not a directory", c.dir)
		}
		fsys, what = os.DirFS(c.dir), c.dir
	}
	ln, err := (&net.ListenConfig{}).Listen(ctx, "tcp", c.listen)
	if err != nil {
		return usagef("--listen: %w", err)
	}
	srv := &http.Server{Handler: mirror.New(fsys, mirror.Options{}), ReadHeaderTimeout: 10 * time.Second}
	fmt.Fprintf(c.env.Err, "serving %s on http://%s/ (set github.api_url to it)\n", what, ln.Addr())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
	}
	shutdown, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdown); err != nil {
		return err
	}
	if err := <-done; !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
