package container

import (
	"context"
	"fmt"
	"io"

	"github.com/lading-dev/lading/internal/layer"
	"github.com/lading-dev/lading/internal/rootfs"
	"github.com/lading-dev/lading/internal/store"
)

// Export writes the container's file system as one tar stream to w, as
// docker export does: the image's layers with the container's changes on
// top, merged by overlay rules (layer.Export), device nodes included. Its
// image's layers must be in st.
func (c *Container) Export(ctx context.Context, w io.Writer, st *store.Store) error {
	done, err := c.use()
	if err != nil {
		return err
	}
	defer done()
	img, err := c.BaseImage(st)
	if err != nil {
		return err
	}
	ls, err := img.Layers()
	if err != nil {
		return err
	}
	fsys, err := c.openFS(ctx)
	if err != nil {
		return err
	}
	defer fsys.Close()
	var srcs []layer.Source
	for i, l := range ls {
		l := l
		d, _ := l.Digest()
		srcs = append(srcs, layer.Source{
			Name: fmt.Sprintf("%s: layer %d/%d %s", c.Image, i+1, len(ls), d),
			Open: func(context.Context) (io.ReadCloser, error) { return l.Uncompressed() },
		})
	}
	srcs = append(srcs, layer.Source{
		Name: "container " + c.Name + ": changes",
		Open: func(ctx context.Context) (io.ReadCloser, error) {
			pr, pw := io.Pipe()
			go func() { pw.CloseWithError(fsys.Diff(ctx, pw, rootfs.DiffOptions{})) }()
			return pr, nil
		},
	})
	return layer.Export(ctx, w, srcs, layer.AllowDevices())
}
