// Package ctxio holds I/O helpers that stop when their context is done.
package ctxio

import (
	"context"
	"io"
	"sync"
)

var bufPool = sync.Pool{New: func() any { b := make([]byte, 256<<10); return &b }}

// Copy is io.Copy with a 256 KiB buffer that checks ctx between reads and
// returns ctx.Err() once it is done.
func Copy(ctx context.Context, w io.Writer, r io.Reader) (int64, error) {
	bp := bufPool.Get().(*[]byte)
	defer bufPool.Put(bp)
	buf := *bp
	var n int64
	for {
		if err := ctx.Err(); err != nil {
			return n, err
		}
		m, rerr := r.Read(buf)
		if m > 0 {
			if _, err := w.Write(buf[:m]); err != nil {
				return n, err
			}
			n += int64(m)
		}
		if rerr == io.EOF {
			return n, nil
		}
		if rerr != nil {
			return n, rerr
		}
	}
}

// Reader returns a reader whose Read fails with ctx.Err() once ctx is done.
func Reader(ctx context.Context, r io.Reader) io.Reader { return &reader{ctx: ctx, r: r} }

type reader struct {
	ctx context.Context
	r   io.Reader
}

func (c *reader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}
