// Package execx runs programs that this process may have written a moment ago.
//
// On Linux, a fork by any goroutine copies every open file descriptor into the child until
// it calls exec. If another goroutine is writing a binary at that moment (an artifact
// extracted into the cache, a build installed into a slot), the child briefly holds a
// writable descriptor of it, and executing that binary then fails with ETXTBSY ("text file
// busy") although the writer has long closed its own copy. The condition clears as soon as
// the child execs, so the remedy is to try again, briefly.
package execx

import (
	"context"
	"errors"
	"os/exec"
	"syscall"
	"time"
)

// busyBound is how long Run keeps retrying a text-file-busy start. A forked child execs
// within microseconds on an idle machine; the bound is generous for a loaded one.
const busyBound = 5 * time.Second

// Run runs the command that build returns, building and starting it again while its start
// fails with ETXTBSY. build must return a fresh, unstarted command each time; a command that
// failed to start has read no input and written no output, so buffers can be reused.
func Run(ctx context.Context, build func() *exec.Cmd) error {
	delay := time.Millisecond
	deadline := time.Now().Add(busyBound)
	for {
		err := build().Run()
		if !errors.Is(err, syscall.ETXTBSY) || time.Now().After(deadline) {
			return err
		}
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return err
		case <-t.C:
		}
		delay = min(2*delay, 50*time.Millisecond)
	}
}
