package analyzer

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"time"

	"github.com/lading-dev/lading/internal/errdefs"
)

// DefaultMemLimit is how large a file or archive member may be to be
// buffered in memory; larger ones go to a temporary file.
const DefaultMemLimit = 4 << 20

// File is a regular file of a layer that an analyzer asked for. It is an
// io.Reader of the file's content, read from the layer stream as it passes
// by; [File.ReadAll] and [File.ReaderAt] give it whole, within a size limit
// the analyzer chooses. A File is valid only during the Analyze call that
// receives it.
type File struct {
	// Path is the file's normalized path, relative to the root
	// ("var/lib/dpkg/status").
	Path string
	// Info describes the file as the layer's tar header does.
	Info fs.FileInfo

	c   *content
	pos int64 // read position in buffered content
}

// content is the content of one file, shared by the Files of the analyzers
// that want it.
type content struct {
	r        io.Reader     // the stream
	br       *bufio.Reader // over r, once something was peeked
	size     int64
	consumed int64 // bytes taken from the stream by Read
	buf      Buffer
	scratch  *Scratch
	shared   bool // several analyzers read it: buffer before the first Read
}

// NewFile returns a File for the content r of a file at path described by
// info (its Size must be the content's length), buffering, when it has to,
// through s (nil: in memory up to DefaultMemLimit, then in os.TempDir).
func NewFile(path string, info fs.FileInfo, r io.Reader, s *Scratch) *File {
	if s == nil {
		s = &Scratch{}
	}
	return &File{Path: path, Info: info, c: &content{r: r, size: info.Size(), scratch: s}}
}

// BytesFile returns a File at path holding data, mode 0644: for tests and
// fuzzing.
func BytesFile(path string, data []byte) *File {
	f := NewFile(path, FileInfo(path, int64(len(data)), 0o644), bytes.NewReader(data), nil)
	f.c.buf = bytesBuffer{bytes.NewReader(data)}
	return f
}

// Views returns n Files over the same content for n analyzers: the
// content is buffered before the first of them reads it, so that each reads
// it from the start. The driver uses it; Close releases the buffer.
func (f *File) Views(n int) []*File {
	if n > 1 {
		f.c.shared = true
	}
	out := make([]*File, n)
	for i := range out {
		out[i] = &File{Path: f.Path, Info: f.Info, c: f.c}
	}
	return out
}

// Close releases what buffering the file took (a temporary file). The
// driver calls it once every analyzer is done.
func (f *File) Close() error {
	if f.c.buf != nil {
		return f.c.buf.Close()
	}
	return nil
}

// Size is the length of the file's content.
func (f *File) Size() int64 { return f.c.size }

// Read reads the content from the current position.
func (f *File) Read(p []byte) (int, error) {
	c := f.c
	if c.shared && c.buf == nil {
		if err := c.buffer(); err != nil {
			return 0, err
		}
	}
	if c.buf != nil {
		if f.pos >= c.size {
			return 0, io.EOF
		}
		if int64(len(p)) > c.size-f.pos {
			p = p[:c.size-f.pos]
		}
		n, err := c.buf.ReadAt(p, f.pos)
		f.pos += int64(n)
		if err == io.EOF && n > 0 {
			err = nil
		}
		return n, err
	}
	if c.consumed >= c.size {
		return 0, io.EOF
	}
	if int64(len(p)) > c.size-c.consumed {
		p = p[:c.size-c.consumed]
	}
	var n int
	var err error
	if c.br != nil {
		n, err = c.br.Read(p)
	} else {
		n, err = c.r.Read(p)
	}
	c.consumed += int64(n)
	f.pos = c.consumed
	if err == io.EOF && c.consumed < c.size {
		err = truncated(c.consumed, c.size)
	}
	return n, err
}

// Peek returns the first n bytes of the content (fewer when the file is
// shorter) without consuming them. It must come before any Read; n is at
// most 64 KiB.
func (f *File) Peek(n int) ([]byte, error) {
	c := f.c
	if n > 64<<10 {
		return nil, errdefs.InvalidArgument(fmt.Errorf("peek of %d bytes: at most 64 KiB", n))
	}
	if int64(n) > c.size {
		n = int(c.size)
	}
	if c.buf != nil {
		b := make([]byte, n)
		m, err := c.buf.ReadAt(b, 0)
		if m == n {
			err = nil
		}
		return b[:m], err
	}
	if c.consumed > 0 {
		return nil, errors.New("peek after read")
	}
	if c.br == nil {
		size := 4096
		if n > size {
			size = 64 << 10
		}
		c.br = bufio.NewReaderSize(c.r, size)
	}
	b, err := c.br.Peek(n)
	if err == io.EOF {
		err = truncated(int64(len(b)), c.size)
	}
	return b, err
}

// ReadAll returns the whole content. A file larger than limit bytes is an
// error of class errdefs.ErrTooLarge, and nothing is read.
func (f *File) ReadAll(limit int64) ([]byte, error) {
	c := f.c
	if err := f.check(limit); err != nil {
		return nil, err
	}
	if c.shared && c.buf == nil {
		if err := c.buffer(); err != nil {
			return nil, err
		}
	}
	b := make([]byte, c.size)
	if c.buf != nil {
		n, err := c.buf.ReadAt(b, 0)
		if n == len(b) {
			err = nil
		}
		return b[:n], err
	}
	if c.consumed > 0 {
		return nil, errors.New("read of the whole file after a partial read")
	}
	n, err := io.ReadFull(f, b)
	if err == io.ErrUnexpectedEOF {
		err = truncated(int64(n), c.size)
	}
	return b[:n], err
}

// ReaderAt returns the whole content for random access, buffered in memory
// when small and in a temporary file otherwise. A file larger than limit
// bytes is an error of class errdefs.ErrTooLarge, and nothing is buffered.
func (f *File) ReaderAt(limit int64) (io.ReaderAt, error) {
	if err := f.check(limit); err != nil {
		return nil, err
	}
	if f.c.buf == nil {
		if err := f.c.buffer(); err != nil {
			return nil, err
		}
	}
	return f.c.buf, nil
}

// Buffer buffers size bytes of r (an archive member, say) the way the file
// itself would be: in memory when small, in a temporary file otherwise.
// Close the Buffer when done.
func (f *File) Buffer(r io.Reader, size int64) (Buffer, error) {
	return f.c.scratch.Buffer(r, size)
}

func (f *File) check(limit int64) error {
	if f.c.size > limit {
		return errdefs.TooLarge(fmt.Errorf("%s is %s, over the limit of %s for this analyzer",
			path.Base(f.Path), HumanSize(f.c.size), HumanSize(limit)))
	}
	return nil
}

func (c *content) buffer() error {
	if c.consumed > 0 {
		return errors.New("buffering after a partial read")
	}
	var r io.Reader = c.r
	if c.br != nil {
		r = c.br
	}
	b, err := c.scratch.Buffer(r, c.size)
	if err != nil {
		return err
	}
	c.buf = b
	c.consumed = c.size
	return nil
}

func truncated(got, want int64) error {
	return errdefs.Corrupt(fmt.Errorf("content ends after %d of %d bytes: %w", got, want, io.ErrUnexpectedEOF))
}

// Scratch says where content is buffered: in memory up to MemLimit bytes
// (default DefaultMemLimit), in an unlinked temporary file in Dir (default
// os.TempDir()) above that.
type Scratch struct {
	Dir      string
	MemLimit int64
}

// Buffer is buffered content.
type Buffer interface {
	io.ReaderAt
	Close() error
}

// Buffer reads size bytes of r into a Buffer.
func (s *Scratch) Buffer(r io.Reader, size int64) (Buffer, error) {
	limit := s.MemLimit
	if limit <= 0 {
		limit = DefaultMemLimit
	}
	if size <= limit {
		b := make([]byte, size)
		n, err := io.ReadFull(r, b)
		if err != nil {
			if err == io.ErrUnexpectedEOF || err == io.EOF {
				err = truncated(int64(n), size)
			}
			return nil, err
		}
		return bytesBuffer{bytes.NewReader(b)}, nil
	}
	t, err := os.CreateTemp(s.Dir, "lading-analyze-*")
	if err != nil {
		return nil, fmt.Errorf("buffer %s: %w", HumanSize(size), err)
	}
	os.Remove(t.Name())
	n, err := io.CopyN(t, r, size)
	if err != nil {
		t.Close()
		if err == io.EOF {
			err = truncated(n, size)
		}
		return nil, err
	}
	return fileBuffer{t}, nil
}

type bytesBuffer struct{ *bytes.Reader }

func (bytesBuffer) Close() error { return nil }

type fileBuffer struct{ *os.File }

// FileInfo returns a fs.FileInfo for a regular file of the given size and
// permissions, named after the last element of p: for tests, and for files
// that are not in a layer.
func FileInfo(p string, size int64, perm fs.FileMode) fs.FileInfo {
	return fileInfo{name: path.Base(p), size: size, mode: perm & fs.ModePerm}
}

type fileInfo struct {
	name string
	size int64
	mode fs.FileMode
}

func (i fileInfo) Name() string       { return i.name }
func (i fileInfo) Size() int64        { return i.size }
func (i fileInfo) Mode() fs.FileMode  { return i.mode }
func (i fileInfo) ModTime() time.Time { return time.Time{} }
func (i fileInfo) IsDir() bool        { return false }
func (i fileInfo) Sys() any           { return nil }

// HumanSize formats a byte count ("1.5 MiB").
func HumanSize(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit && exp < 5; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
