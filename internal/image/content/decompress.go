package content

import (
	"io"

	"github.com/lading-dev/lading/internal/layer"
)

// Decompress returns the uncompressed stream of a layer blob (gzip, zstd or
// plain tar, detected from its first bytes; see layer.Decompress). Closing
// the result closes rc too.
func Decompress(rc io.ReadCloser) (io.ReadCloser, error) {
	ur, _, err := layer.Decompress(rc)
	if err != nil {
		rc.Close()
		return nil, err
	}
	return &readCloser{Reader: ur, close: func() error { ur.Close(); return rc.Close() }}, nil
}

type readCloser struct {
	io.Reader
	close func() error
}

func (r *readCloser) Close() error { return r.close() }
