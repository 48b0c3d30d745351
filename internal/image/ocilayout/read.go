// Package ocilayout reads OCI image layouts (oci-layout, index.json,
// blobs/<alg>/<hex>) from any fs.FS: a directory (`oci:DIR`), lading's own
// store, or an `oci-archive:` file served in place by tarfs. Images and
// indexes come from package content, so every blob is verified.
package ocilayout

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"sort"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/lading-dev/lading/internal/errdefs"
	"github.com/lading-dev/lading/internal/image/content"
	"github.com/lading-dev/lading/internal/verify"
)

// RefNameAnnotation names a descriptor in index.json.
const RefNameAnnotation = "org.opencontainers.image.ref.name"

// Layout is an OCI image layout opened for reading. It is a content.Source.
type Layout struct {
	fsys  fs.FS
	name  string // for messages: "oci:/path" or "oci-archive:/file"
	index *v1.IndexManifest
}

// Open reads the layout's oci-layout and index.json. name is how messages
// refer to the layout.
func Open(fsys fs.FS, name string) (*Layout, error) {
	b, err := readLimited(fsys, "oci-layout", 4096)
	if err != nil {
		if errdefs.IsNotFound(err) {
			return nil, errdefs.InvalidArgument(fmt.Errorf("%s: not an OCI image layout (no oci-layout file)", name))
		}
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	var ol struct {
		Version string `json:"imageLayoutVersion"`
	}
	if err := json.Unmarshal(b, &ol); err != nil || ol.Version == "" {
		return nil, errdefs.InvalidArgument(fmt.Errorf("%s: oci-layout is not valid: %q", name, strings.TrimSpace(string(b))))
	}
	raw, err := readLimited(fsys, "index.json", content.MaxManifestSize)
	if err != nil {
		return nil, fmt.Errorf("%s: index.json: %w", name, err)
	}
	var idx v1.IndexManifest
	if err := json.Unmarshal(raw, &idx); err != nil {
		return nil, errdefs.InvalidArgument(fmt.Errorf("%s: index.json: %w", name, content.JSONError(raw, err)))
	}
	for i, d := range idx.Manifests {
		if err := verify.CheckHash(d.Digest); err != nil {
			return nil, errdefs.InvalidArgument(fmt.Errorf("%s: index.json: manifest %d: %w", name, i, err))
		}
	}
	return &Layout{fsys: fsys, name: name, index: &idx}, nil
}

func readLimited(fsys fs.FS, p string, max int64) ([]byte, error) {
	f, err := fsys.Open(p)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, errdefs.NotFound(err)
		}
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, max+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > max {
		return nil, errdefs.TooLarge(fmt.Errorf("%s: over %d bytes", p, max))
	}
	return b, nil
}

// Name returns the layout's display name.
func (l *Layout) Name() string { return l.name }

// IndexManifest returns the parsed index.json.
func (l *Layout) IndexManifest() *v1.IndexManifest { return l.index }

// OpenBlob implements content.Source.
func (l *Layout) OpenBlob(d v1.Descriptor) (io.ReadCloser, error) {
	if err := verify.CheckHash(d.Digest); err != nil {
		return nil, err
	}
	f, err := l.fsys.Open("blobs/" + d.Digest.Algorithm + "/" + d.Digest.Hex)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, errdefs.NotFound(fmt.Errorf("%s: blob %s is missing", l.name, d.Digest))
		}
		return nil, fmt.Errorf("%s: %w", l.name, err)
	}
	return f, nil
}

// Refs returns the reference names index.json carries, sorted.
func (l *Layout) Refs() []string {
	var out []string
	for _, d := range l.index.Manifests {
		if n := d.Annotations[RefNameAnnotation]; n != "" {
			out = append(out, n)
		}
	}
	sort.Strings(out)
	return out
}

// Find returns the index.json descriptor for ref: the one whose ref-name
// annotation is ref, or whose digest is ref; with ref "" the only
// descriptor there is.
func (l *Layout) Find(ref string) (v1.Descriptor, error) {
	ms := l.index.Manifests
	if ref == "" {
		switch len(ms) {
		case 1:
			return ms[0], nil
		case 0:
			return v1.Descriptor{}, errdefs.NotFound(fmt.Errorf("%s holds no images", l.name))
		}
		return v1.Descriptor{}, errdefs.InvalidArgument(fmt.Errorf("%s holds %d images; name one of: %s", l.name, len(ms), strings.Join(l.Refs(), ", ")))
	}
	for _, d := range ms {
		if d.Annotations[RefNameAnnotation] == ref || d.Digest.String() == ref {
			return d, nil
		}
	}
	return v1.Descriptor{}, errdefs.NotFound(fmt.Errorf("%s: no image named %q (it has: %s)", l.name, ref, strings.Join(l.Refs(), ", ")))
}
