package app

import (
	"context"
	"sync"
)

// addLoop registers a long-running background task of the daemon (the outbox
// dispatcher, ...). It runs until ctx is cancelled.
func (a *App) addLoop(run func(ctx context.Context)) { a.loops = append(a.loops, run) }

// startLoops starts every background loop and returns a channel closed when all returned.
func (a *App) startLoops(ctx context.Context) <-chan struct{} {
	var wg sync.WaitGroup
	for _, run := range a.loops {
		wg.Go(func() { run(ctx) })
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	return done
}
