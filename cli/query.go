package cli

import (
	"context"
	"io"
)

// query is a command that makes one API call and shows the answer: releases, advisories,
// history, slots. Its flags fill args; required, if set, must be non-empty.
type query[A, T any] struct {
	env      *Env
	method   string
	args     A
	required func(A) error
	table    func(w io.Writer, args A, v T)
}

func (q *query[A, T]) Run(ctx context.Context) error {
	if q.required != nil {
		if err := q.required(q.args); err != nil {
			return usageErr(err)
		}
	}
	var v T
	if err := q.env.call(ctx, q.method, q.args, &v); err != nil {
		return err
	}
	return q.env.emit(v, func(w io.Writer) { q.table(w, q.args, v) })
}
