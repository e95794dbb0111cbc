// Command patchctl keeps twemproxy fleets patched: see `patchctl help`.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/patchctl/patchctl/cli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := cli.Main(ctx, os.Args[1:], cli.Stdio())
	stop()
	os.Exit(code)
}
