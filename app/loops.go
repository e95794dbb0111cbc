package app

import "context"

// addLoop registers a long-running background task of the daemon (the outbox
// dispatcher, ...). It runs until ctx is cancelled.
func (a *App) addLoop(run func(ctx context.Context)) { a.loops = append(a.loops, run) }

// startLoops starts every background loop; a.running counts them until they return.
func (a *App) startLoops(ctx context.Context) {
	for _, run := range a.loops {
		done, ok := a.running.add(ctx)
		if !ok {
			return
		}
		go func() {
			defer done()
			run(ctx)
		}()
	}
}
