// Package ctxio makes long reads cancellable: a reader that fails once its context
// is done, so hashing or inflating a large file stops on Ctrl-C.
package ctxio

import (
	"context"
	"io"
)

// Reader reads from r until ctx is done, then fails with ctx's error.
func Reader(ctx context.Context, r io.Reader) io.Reader { return reader{ctx, r} }

type reader struct {
	ctx context.Context
	r   io.Reader
}

func (c reader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}
