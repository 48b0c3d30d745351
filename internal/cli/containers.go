package cli

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/lading-dev/lading/internal/container"
	"github.com/lading-dev/lading/internal/errdefs"
	"github.com/lading-dev/lading/internal/image"
)

// openContainers opens the containers of the lading root.
func (e *env) openContainers() (*container.Store, error) {
	return container.Open(e.root, container.WithLogger(e.log))
}

// findContainer looks name up among the containers without creating the
// containers directory; nil when there is no such container.
func (e *env) findContainer(name string) (*container.Store, *container.Container, error) {
	if _, err := os.Stat(filepath.Join(e.root, "containers")); err != nil {
		return nil, nil, nil
	}
	cs, err := e.openContainers()
	if err != nil {
		return nil, nil, err
	}
	c, err := cs.Get(name)
	if errdefs.IsNotFound(err) || errdefs.IsInvalidArgument(err) {
		return cs, nil, nil
	}
	return cs, c, err
}

// storedImage returns the image ref names, from the local store, pulling it
// there first when it comes from elsewhere (any transport), as docker run
// pulls a missing image.
func (ss *session) storedImage(ctx context.Context, ref image.Reference) (v1.Image, error) {
	src, img, err := ss.openImage(ctx, ref)
	if err != nil {
		return nil, err
	}
	defer src.Close()
	if src.Ref.Transport == image.Local {
		return img, nil
	}
	name := ""
	switch {
	case ref.Transport == image.Auto || ref.Transport == image.Registry || ref.Transport == image.Daemon:
		name = ref.Name
	case len(src.Names) > 0:
		if n, err := image.NormalizeName(src.Names[0]); err == nil {
			name = n
		}
	}
	desc, err := image.Write(ctx, image.Reference{Transport: image.Local, Name: name}, image.Artifact{Image: img}, ss.opts...)
	if err != nil {
		return nil, err
	}
	ss.p.Close()
	local, err := image.Open(ctx, image.Reference{Transport: image.Local, Name: desc.Digest.String()}, ss.opts...)
	if err != nil {
		return nil, err
	}
	// The store's blobs stay; the source holds nothing that needs closing.
	defer local.Close()
	return local.Select(mustPlatform(ss.f.platform))
}

// parseBytes reads a size such as 64m, 1g, 512k or a number of bytes.
func parseBytes(s string) (int64, error) {
	if s == "" {
		return 0, nil
	}
	mult := int64(1)
	num := strings.ToLower(strings.TrimSuffix(strings.ToLower(s), "b"))
	if n := len(num); n > 0 {
		switch num[n-1] {
		case 'k':
			mult, num = 1<<10, num[:n-1]
		case 'm':
			mult, num = 1<<20, num[:n-1]
		case 'g':
			mult, num = 1<<30, num[:n-1]
		}
	}
	v, err := strconv.ParseInt(num, 10, 64)
	if err != nil || v < 0 || v > (1<<62)/mult {
		return 0, usageError{errdefs.InvalidArgument(fmt.Errorf("size %q: want a number of bytes with an optional k, m or g", s))}
	}
	return v * mult, nil
}

// sourceDateEpoch reads SOURCE_DATE_EPOCH, if set.
func sourceDateEpoch() (*time.Time, error) {
	v := os.Getenv("SOURCE_DATE_EPOCH")
	if v == "" {
		return nil, nil
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		return nil, errdefs.InvalidArgument(fmt.Errorf("SOURCE_DATE_EPOCH %q: want seconds since 1970", v))
	}
	t := time.Unix(n, 0).UTC()
	return &t, nil
}

// containerImages returns the manifests of the containers' images, which
// prune keeps though no name may be left on them.
func (e *env) containerImages(context.Context) ([]v1.Descriptor, error) {
	list, err := e.containers()
	if err != nil {
		return nil, err
	}
	out := make([]v1.Descriptor, 0, len(list))
	for _, c := range list {
		out = append(out, c.Manifest)
	}
	return out, nil
}

// containers lists the containers without creating the containers
// directory.
func (e *env) containers() ([]*container.Container, error) {
	if _, err := os.Stat(filepath.Join(e.root, "containers")); err != nil {
		return nil, nil
	}
	cs, err := e.openContainers()
	if err != nil {
		return nil, err
	}
	return cs.List()
}
