package image

import (
	"context"
	"fmt"
	"os"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/lading-dev/lading/internal/errdefs"
	"github.com/lading-dev/lading/internal/image/content"
	"github.com/lading-dev/lading/internal/image/ocilayout"
	"github.com/lading-dev/lading/internal/store"
)

// openLocal resolves a name, digest or image ID in the store.
func openLocal(ctx context.Context, ref Reference, o *options) (*Source, error) {
	l, err := ocilayout.Open(os.DirFS(o.store.Root()), "local store")
	if err != nil {
		return nil, err
	}
	d, err := l.Find(ref.Name)
	if errdefs.IsNotFound(err) && IsID(ref.Name) {
		d, err = findByID(l, ref.Name)
	}
	if err != nil {
		if errdefs.IsNotFound(err) {
			return nil, errdefs.NotFound(fmt.Errorf("%s: not in the local store", ref.Name))
		}
		return nil, err
	}
	art, err := artifactFor(l, d)
	if err != nil {
		return nil, err
	}
	src := &Source{Artifact: art, Ref: Reference{Transport: Local, Name: ref.Name}}
	if n := d.Annotations[ocilayout.RefNameAnnotation]; n != "" {
		src.Names = []string{n}
	}
	return src, nil
}

// findByID finds the image whose ID (config digest) or manifest digest
// starts with id.
func findByID(l *ocilayout.Layout, id string) (v1.Descriptor, error) {
	hex := strings.TrimPrefix(id, "sha256:")
	var found []v1.Descriptor
	seen := map[v1.Hash]bool{}
	for _, d := range l.IndexManifest().Manifests {
		if seen[d.Digest] {
			continue
		}
		seen[d.Digest] = true
		match := strings.HasPrefix(d.Digest.Hex, hex)
		if !match && content.IsImage(d.MediaType) {
			if img, err := content.Image(l, d); err == nil {
				if cn, err := img.ConfigName(); err == nil && strings.HasPrefix(cn.Hex, hex) {
					match = true
				}
			}
		}
		if match {
			found = append(found, d)
		}
	}
	switch len(found) {
	case 0:
		return v1.Descriptor{}, errdefs.NotFound(fmt.Errorf("no image with ID %s", id))
	case 1:
		return found[0], nil
	}
	return v1.Descriptor{}, errdefs.InvalidArgument(fmt.Errorf("image ID %s is ambiguous: %d images match", id, len(found)))
}

// writeLocal writes art into st and, if name is not empty, points name at
// it.
func writeLocal(ctx context.Context, st *store.Store, name string, art Artifact, o *options) (v1.Descriptor, error) {
	desc, err := writeToStore(ctx, st, art, o)
	if err != nil {
		return v1.Descriptor{}, err
	}
	if art.Image != nil {
		if cf, err := art.Image.ConfigFile(); err == nil && cf.OS != "" {
			desc.Platform = &v1.Platform{OS: cf.OS, Architecture: cf.Architecture, Variant: cf.Variant}
		}
	}
	if name == "" {
		err = st.UpdateIndex(ctx, func(idx *v1.IndexManifest) error {
			for _, m := range idx.Manifests {
				if m.Digest == desc.Digest && m.Annotations[store.RefNameAnnotation] == "" {
					return nil
				}
			}
			idx.Manifests = append(idx.Manifests, desc)
			return nil
		})
		return desc, err
	}
	return desc, st.SetRef(ctx, name, desc)
}

// writeLayout writes art into the OCI layout directory dir under ref name
// (the layout is created if needed).
func writeLayout(ctx context.Context, dir, name string, art Artifact, o *options) (v1.Descriptor, error) {
	st, err := store.Open(dir, store.AsLayout())
	if err != nil {
		return v1.Descriptor{}, err
	}
	defer st.Close()
	return writeLocal(ctx, st, name, art, o)
}
