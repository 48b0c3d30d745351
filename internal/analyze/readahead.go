package analyze

import (
	"errors"
	"io"
	"sync"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/lading-dev/lading/internal/layer"
	"github.com/lading-dev/lading/internal/verify"
)

// openLayer returns the uncompressed stream of l, verified as
// l.Uncompressed verifies it (the blob against its digest, the uncompressed
// bytes against the diffID), but pipelined over three goroutines: one reads
// the blob and hashes it, one decompresses, and the caller's hashes the
// uncompressed bytes as it parses them. Decompression, the most expensive
// step, so gets a core to itself, and analysis rides on it.
func openLayer(l v1.Layer) (io.ReadCloser, error) {
	digest, err := l.Digest()
	if err != nil {
		return nil, err
	}
	diffID, diffErr := l.DiffID()
	blob, err := l.Compressed()
	if err != nil {
		return nil, err
	}
	ahead := readAhead(blob)
	ur, c, err := layer.Decompress(ahead)
	if err != nil {
		ahead.Close()
		return nil, err
	}
	var r io.ReadCloser = readAhead(&closers{Reader: ur, close: []io.Closer{ur, ahead}})
	// An uncompressed blob named by its diffID was verified as it was read.
	if diffErr == nil && !(c == layer.Uncompressed && diffID == digest) {
		vr, err := verify.NewReadCloser(r, diffID, -1)
		if err != nil {
			r.Close()
			return nil, err
		}
		r = vr
	}
	return r, nil
}

type closers struct {
	io.Reader
	close []io.Closer
}

func (c *closers) Close() error {
	var err error
	for _, x := range c.close {
		if e := x.Close(); err == nil {
			err = e
		}
	}
	return err
}

// Read-ahead: a goroutine reads the source in chunks and hands them over a
// small queue, so that the source's work (decompression, hashing) runs
// beside the reader's.
const (
	chunkSize  = 256 << 10
	queueDepth = 4
)

var chunkPool = sync.Pool{New: func() any { b := make([]byte, chunkSize); return &b }}

type chunk struct {
	buf *[]byte
	n   int
	err error
}

type aheadReader struct {
	src   io.ReadCloser
	ch    chan chunk
	done  chan struct{}
	wg    sync.WaitGroup
	cur   chunk
	off   int
	err   error
	close sync.Once
}

func readAhead(src io.ReadCloser) io.ReadCloser {
	a := &aheadReader{src: src, ch: make(chan chunk, queueDepth), done: make(chan struct{})}
	a.wg.Add(1)
	go a.fill()
	return a
}

func (a *aheadReader) fill() {
	defer a.wg.Done()
	defer close(a.ch)
	for {
		buf := chunkPool.Get().(*[]byte)
		n, err := io.ReadFull(a.src, *buf)
		if err == io.ErrUnexpectedEOF {
			err = io.EOF
		}
		select {
		case a.ch <- chunk{buf: buf, n: n, err: err}:
		case <-a.done:
			chunkPool.Put(buf)
			return
		}
		if err != nil {
			return
		}
	}
}

func (a *aheadReader) Read(p []byte) (int, error) {
	for a.cur.buf == nil || a.off >= a.cur.n {
		if a.cur.buf != nil {
			if a.cur.err != nil {
				a.err = a.cur.err
			}
			chunkPool.Put(a.cur.buf)
			a.cur = chunk{}
		}
		if a.err != nil {
			return 0, a.err
		}
		c, ok := <-a.ch
		if !ok {
			a.err = errors.New("read-ahead: closed")
			return 0, a.err
		}
		a.cur, a.off = c, 0
		if c.n == 0 && c.err != nil {
			a.err = c.err
			chunkPool.Put(c.buf)
			a.cur = chunk{}
			return 0, a.err
		}
	}
	n := copy(p, (*a.cur.buf)[a.off:a.cur.n])
	a.off += n
	return n, nil
}

// Close stops the goroutine and closes the source.
func (a *aheadReader) Close() error {
	var err error
	a.close.Do(func() {
		close(a.done)
		for c := range a.ch { // let fill return
			chunkPool.Put(c.buf)
		}
		a.wg.Wait()
		err = a.src.Close()
	})
	return err
}
