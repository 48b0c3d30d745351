package image

import (
	"io"

	"github.com/klauspost/compress/gzip"
)

func newGzipWriter(w io.Writer) io.WriteCloser { return gzip.NewWriter(w) }
