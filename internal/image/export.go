package image

import (
	"context"
	"fmt"
	"io"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/lading-dev/lading/internal/layer"
)

// Export writes the merged root filesystem of img to w as one tar stream
// (layer.Export: overlayfs rules, each layer read once, streamed). name is
// how errors refer to the image; they also name the layer and the entry.
func Export(ctx context.Context, w io.Writer, name string, img v1.Image, opts ...layer.Option) error {
	ls, err := img.Layers()
	if err != nil {
		return err
	}
	srcs := make([]layer.Source, len(ls))
	for i, l := range ls {
		l := l
		d, _ := l.Digest()
		srcs[i] = layer.Source{
			Name: fmt.Sprintf("%s: layer %d/%d %s", name, i+1, len(ls), d),
			Open: func(context.Context) (io.ReadCloser, error) { return l.Uncompressed() },
		}
	}
	return layer.Export(ctx, w, srcs, opts...)
}
