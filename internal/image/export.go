package image

import (
	"context"
	"fmt"
	"io"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/lading-dev/lading/internal/errdefs"
	"github.com/lading-dev/lading/internal/layer"
	"github.com/lading-dev/lading/internal/verify"
)

// Export writes the merged root filesystem of img to w as one tar stream
// (layer.Export: overlayfs rules, each layer read once, streamed). name is
// how errors refer to the image; they also name the layer and the entry.
//
// Each layer is unpacked as containerd unpacks it: a layer whose media type
// is not a layer type, or whose blob is compressed otherwise than its media
// type says, is refused; the blob is verified against its digest (a blob
// that does not match is reported as that, before anything its bytes would
// make the decompressor say) and the content against the config's diffID.
// Device nodes and FIFOs are written as the tar entries they are.
func Export(ctx context.Context, w io.Writer, name string, img v1.Image, opts ...layer.Option) error {
	ls, err := img.Layers()
	if err != nil {
		return err
	}
	srcs := make([]layer.Source, len(ls))
	for i, l := range ls {
		d, _ := l.Digest()
		srcs[i] = layer.Source{
			Name: fmt.Sprintf("%s: layer %d/%d %s", name, i+1, len(ls), d),
			Open: func(context.Context) (io.ReadCloser, error) { return openForExport(l) },
		}
	}
	return layer.Export(ctx, w, srcs, append(opts, layer.AllowDevices())...)
}

// openForExport returns the verified uncompressed stream of l, refusing a
// media type that is not a layer type and a blob compressed otherwise.
func openForExport(l v1.Layer) (io.ReadCloser, error) {
	mt, err := l.MediaType()
	if err != nil {
		return nil, err
	}
	if _, ok := layer.MediaCompression(string(mt)); !ok {
		return nil, layer.CheckMediaType(string(mt), layer.Uncompressed)
	}
	blob, err := l.Compressed()
	if err != nil {
		return nil, err
	}
	ur, c, err := layer.OpenBlob(blob)
	if err != nil {
		return nil, err
	}
	if err := layer.CheckMediaType(string(mt), c); err != nil {
		// The blob first: bytes that do not match the digest can look like
		// anything.
		if _, derr := io.Copy(io.Discard, ur); derr != nil {
			err = derr
		}
		ur.Close()
		return nil, err
	}
	diffID, err := l.DiffID()
	if err != nil {
		ur.Close()
		return nil, err
	}
	vr, err := verify.NewReader(ur, diffID, -1)
	if err != nil {
		ur.Close()
		return nil, err
	}
	return &diffIDStream{Reader: vr, c: ur, want: diffID}, nil
}

// diffIDStream says which diffID the content did not match.
type diffIDStream struct {
	*verify.Reader
	c    io.Closer
	want v1.Hash
}

func (s *diffIDStream) Read(p []byte) (int, error) {
	n, err := s.Reader.Read(p)
	if err != nil && err != io.EOF && errdefs.IsCorrupt(err) && s.Reader.Mismatch() {
		err = errdefs.Corrupt(fmt.Errorf("the content does not match the diffID %s the image config gives it: %w", s.want, err))
	}
	return n, err
}

func (s *diffIDStream) Close() error { return s.c.Close() }
