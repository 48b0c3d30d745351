// Package ctxio holds I/O helpers that stop when their context is done.
package ctxio

import (
	"context"
	"io"
	"sync"
	"time"
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

// Limit returns a reader of rc that reads at most rate bytes per second
// on average (a bandwidth limit: replication's speed, a proxy cache's
// proxy_speed_kb), waiting as needed and giving up with ctx.Err() once
// ctx is done. A rate of 0 or less returns rc itself.
func Limit(ctx context.Context, rc io.ReadCloser, rate int64) io.ReadCloser {
	if rate <= 0 {
		return rc
	}
	return &limited{ctx: ctx, r: rc, rate: rate, start: time.Now()}
}

type limited struct {
	ctx   context.Context
	r     io.ReadCloser
	rate  int64
	start time.Time
	n     int64
}

func (l *limited) Read(p []byte) (int, error) {
	// Small reads keep the rate smooth: a tenth of a second's worth.
	if m := int(max(l.rate/10, 512)); len(p) > m {
		p = p[:m]
	}
	n, err := l.r.Read(p)
	l.n += int64(n)
	due := time.Duration(float64(l.n) / float64(l.rate) * float64(time.Second))
	if wait := due - time.Since(l.start); wait > 0 {
		t := time.NewTimer(wait)
		select {
		case <-l.ctx.Done():
			t.Stop()
			return n, l.ctx.Err()
		case <-t.C:
		}
	}
	return n, err
}

func (l *limited) Close() error { return l.r.Close() }
