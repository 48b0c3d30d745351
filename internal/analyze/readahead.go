package analyze

import (
	"errors"
	"fmt"
	"io"
	"sync"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/lading-dev/lading/internal/layer"
)

// openLayer returns the uncompressed stream of l, pipelined over three
// goroutines: one reads the blob (l.Compressed verifies it against its
// digest and size at EOF), one decompresses, and the caller's hashes the
// uncompressed bytes as it parses them (the driver checks the diffID).
// Decompression, the most expensive step, so gets a core to itself, and
// analysis rides on it.
//
// When the blob cannot be decompressed, or its stream fails, the rest of
// the blob is read before the error is returned, so that a blob that does
// not match its digest is reported as that (the cause) rather than as the
// corrupt compressed data it makes. A blob compressed otherwise than its
// media type says, or whose media type is not a layer type, is read as its
// bytes say, with a warning (the stream's Warning method).
func openLayer(l v1.Layer) (io.ReadCloser, error) {
	blob, err := l.Compressed()
	if err != nil {
		return nil, err
	}
	ur, c, err := layer.OpenBlob(readAhead(blob))
	if err != nil {
		return nil, err
	}
	out := &warnedStream{ReadCloser: readAhead(ur)}
	if mt, err := l.MediaType(); err == nil {
		if err := layer.CheckMediaType(string(mt), c); err != nil {
			out.warning = fmt.Sprintf("%v; read as %s", err, c)
		}
	}
	return out, nil
}

// drain reads r to its end and returns the error that ends it, nil at a
// clean EOF.
func drain(r io.Reader) error {
	_, err := io.Copy(io.Discard, r)
	return err
}

// warnedStream carries a warning about the layer it reads.
type warnedStream struct {
	io.ReadCloser
	warning string
}

func (w *warnedStream) Warning() string { return w.warning }

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
