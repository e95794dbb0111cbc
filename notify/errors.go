package notify

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// RetryableError marks a failure that may succeed if the same message is sent again later:
// a rate limit, a server error, a network failure or a timeout. Every other error from a
// Notifier is permanent.
type RetryableError struct {
	RetryAfter time.Duration // what the receiver asked for; 0 means use your own backoff
	Err        error
}

func (e *RetryableError) Error() string {
	if e.RetryAfter > 0 {
		return fmt.Sprintf("%v (retry after %s)", e.Err, e.RetryAfter)
	}
	return e.Err.Error()
}

func (e *RetryableError) Unwrap() error { return e.Err }

// Retryable wraps err as a RetryableError; nil stays nil.
func Retryable(err error, after time.Duration) error {
	if err == nil {
		return nil
	}
	return &RetryableError{RetryAfter: after, Err: err}
}

// RetryAfter reports whether err is worth retrying, and after how long the receiver asked
// to wait (0 if it did not say).
func RetryAfter(err error) (time.Duration, bool) {
	if re, ok := errors.AsType[*RetryableError](err); ok {
		return re.RetryAfter, true
	}
	return 0, false
}

// ctxErr returns ctx's error as retryable: a message not sent because we stopped waiting
// is still worth sending.
func ctxErr(ctx context.Context) error {
	if err := context.Cause(ctx); err != nil {
		return Retryable(fmt.Errorf("notify: %w", err), 0)
	}
	return nil
}
