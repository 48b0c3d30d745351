package image

import (
	"archive/tar"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/lading-dev/lading/internal/ctxio"
	"github.com/lading-dev/lading/internal/errdefs"
	"github.com/lading-dev/lading/internal/image/dockerarchive"
	"github.com/lading-dev/lading/internal/image/ocilayout"
	"github.com/lading-dev/lading/internal/progress"
)

// Item is an image or index to save, with the normalized names it is saved
// under.
type Item struct {
	Artifact
	Names []string
}

// Write writes art to dst and returns the descriptor of what was written
// (which differs from art's when a sink converts layers). Archive files are
// written to a temp file beside the destination and renamed into place, so
// a failed write leaves no partial archive.
func Write(ctx context.Context, dst Reference, art Artifact, opts ...Option) (v1.Descriptor, error) {
	o := makeOptions(opts)
	switch dst.Transport {
	case Auto, Registry:
		return writeRegistry(ctx, dst, art, o)
	case Local:
		if o.store == nil {
			return v1.Descriptor{}, errors.New("local: no store configured")
		}
		art, cleanup, err := recompress(ctx, art, o.compression, o)
		if err != nil {
			return v1.Descriptor{}, err
		}
		defer cleanup()
		return writeLocal(ctx, o.store, dst.Name, art, o)
	case OCI:
		art, cleanup, err := recompress(ctx, art, o.compression, o)
		if err != nil {
			return v1.Descriptor{}, err
		}
		defer cleanup()
		return writeLayout(ctx, dst.Path, dst.Name, art, o)
	case OCIArchive, DockerArchive:
		var names []string
		if dst.Name != "" && !strings.HasPrefix(dst.Name, "@") {
			names = []string{dst.Name}
		}
		return saveOne(ctx, dst, Item{Artifact: art, Names: names}, o)
	case Daemon:
		return writeDaemon(ctx, dst, art, o)
	case Dir:
		return v1.Descriptor{}, errdefs.InvalidArgument(fmt.Errorf("%s: dir: is a read-only source; to unpack an image use `lading export IMAGE -o DIR`", dst))
	}
	return v1.Descriptor{}, errdefs.InvalidArgument(fmt.Errorf("unknown transport %q", dst.Transport))
}

func saveOne(ctx context.Context, dst Reference, it Item, o *options) (v1.Descriptor, error) {
	var desc v1.Descriptor
	err := save(ctx, dst, []Item{it}, o, func(d v1.Descriptor) { desc = d })
	return desc, err
}

// Save writes several images into one archive: dst is a docker-archive or
// oci-archive reference whose path is the file ("-" for standard output).
// A docker-archive holds single-platform images only: an index is resolved
// with the platform option.
func Save(ctx context.Context, dst Reference, items []Item, opts ...Option) error {
	return save(ctx, dst, items, makeOptions(opts), func(v1.Descriptor) {})
}

func save(ctx context.Context, dst Reference, items []Item, o *options, written func(v1.Descriptor)) error {
	if dst.Transport != DockerArchive && dst.Transport != OCIArchive {
		return errdefs.InvalidArgument(fmt.Errorf("%s: save writes docker-archive: or oci-archive: files", dst))
	}
	return WriteFileAtomic(dst.Path, func(w io.Writer) error {
		if dst.Transport == OCIArchive {
			return writeOCIArchive(ctx, w, dst, items, o, written)
		}
		var named []dockerarchive.Named
		for _, it := range items {
			img := it.Image
			if img == nil {
				var err error
				if img, err = it.Select(o.platform); err != nil {
					return err
				}
			}
			n := dockerarchive.Named{Image: img}
			for _, name := range it.Names {
				n.Tags = append(n.Tags, FamiliarName(name))
				n.RefNames = append(n.RefNames, name)
			}
			named = append(named, n)
		}
		return dockerarchive.Write(ctx, w, named,
			dockerarchive.WithTempDir(o.tmpDir), dockerarchive.WithProgress(o.progress))
	})
}

// WriteFileAtomic writes a file through a temp file in the same directory,
// fsynced and renamed into place; "-" writes to standard output. A path
// that is a device or a pipe (/dev/null, /dev/stdout, a FIFO) is written
// to as it is: renaming a file over it would replace the device. Errors of
// the file system name path, never the temp file.
func WriteFileAtomic(path string, write func(io.Writer) error) error {
	if path == "-" {
		return write(os.Stdout)
	}
	if fi, err := os.Stat(path); err == nil && !fi.Mode().IsRegular() && !fi.IsDir() {
		f, err := os.OpenFile(path, os.O_WRONLY, 0)
		if err != nil {
			return err
		}
		if err := write(f); err != nil {
			f.Close()
			return err
		}
		return f.Close()
	}
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return namedFileError("create", path, "", err)
	}
	ok := false
	defer func() {
		if !ok {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	if err := write(&namedFile{f: f, path: path}); err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		return namedFileError("write", path, f.Name(), err)
	}
	if err := f.Close(); err != nil {
		return namedFileError("write", path, f.Name(), err)
	}
	if err := os.Chmod(f.Name(), 0o644); err != nil {
		return namedFileError("chmod", path, f.Name(), err)
	}
	if err := os.Rename(f.Name(), path); err != nil {
		return namedFileError("write", path, f.Name(), err)
	}
	ok = true
	return nil
}

// namedFile is a temp file whose write errors name the file it becomes.
type namedFile struct {
	f    *os.File
	path string
}

func (n *namedFile) Write(p []byte) (int, error) {
	w, err := n.f.Write(p)
	if err != nil {
		err = namedFileError("write", n.path, n.f.Name(), err)
	}
	return w, err
}

// ReadFrom keeps the file's zero-copy paths (copy_file_range, splice).
func (n *namedFile) ReadFrom(r io.Reader) (int64, error) {
	k, err := n.f.ReadFrom(r)
	if err != nil {
		err = namedFileError("write", n.path, n.f.Name(), err)
	}
	return k, err
}

// namedFileError makes err, an error of the file system about the temp
// file tmp ("": any file) that becomes path, an error about path; other
// errors pass unchanged.
func namedFileError(op, path, tmp string, err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) && (tmp == "" || pe.Path == tmp) {
		return &fs.PathError{Op: op, Path: path, Err: pe.Err}
	}
	var le *os.LinkError
	if errors.As(err, &le) && le.Old == tmp {
		return &fs.PathError{Op: op, Path: path, Err: le.Err}
	}
	return err
}

// writeOCIArchive streams an OCI image layout as a tar: oci-layout, every
// blob once, then index.json.
func writeOCIArchive(ctx context.Context, w io.Writer, dst Reference, items []Item, o *options, written func(v1.Descriptor)) error {
	tw := tar.NewWriter(w)
	epoch := time.Unix(0, 0)
	hdr := func(name string, size int64) *tar.Header {
		return &tar.Header{Name: name, Mode: 0o644, Size: size, ModTime: epoch, Typeflag: tar.TypeReg, Format: tar.FormatPAX}
	}
	layout := []byte(`{"imageLayoutVersion":"1.0.0"}`)
	if err := tw.WriteHeader(hdr("oci-layout", int64(len(layout)))); err != nil {
		return err
	}
	tw.Write(layout)
	for _, d := range []string{"blobs/", "blobs/sha256/"} {
		if err := tw.WriteHeader(&tar.Header{Name: d, Mode: 0o755, ModTime: epoch, Typeflag: tar.TypeDir}); err != nil {
			return err
		}
	}
	idx := v1.IndexManifest{SchemaVersion: 2, MediaType: types.OCIImageIndex, Manifests: []v1.Descriptor{}}
	seen := map[v1.Hash]bool{}
	dirs := map[string]bool{"sha256": true}
	for _, it := range items {
		art := it.Artifact
		if art.Index != nil && !o.allPlatforms && o.platform != nil {
			img, err := art.Select(o.platform)
			if err != nil {
				return err
			}
			art = Artifact{Image: img}
		}
		art, cleanup, err := recompress(ctx, art, o.compression, o)
		if err != nil {
			return err
		}
		defer cleanup()
		blobs, err := blobsOf(art)
		if err != nil {
			return err
		}
		for _, b := range blobs {
			if seen[b.desc.Digest] {
				continue
			}
			seen[b.desc.Digest] = true
			if alg := b.desc.Digest.Algorithm; !dirs[alg] {
				dirs[alg] = true
				tw.WriteHeader(&tar.Header{Name: "blobs/" + alg + "/", Mode: 0o755, ModTime: epoch, Typeflag: tar.TypeDir})
			}
			if err := writeArchiveBlob(ctx, tw, hdr, b, o.progress); err != nil {
				return err
			}
		}
		desc, err := art.Descriptor()
		if err != nil {
			return err
		}
		written(desc)
		if art.Image != nil {
			if cf, err := art.Image.ConfigFile(); err == nil && cf.OS != "" {
				desc.Platform = &v1.Platform{OS: cf.OS, Architecture: cf.Architecture, Variant: cf.Variant}
			}
		}
		if len(it.Names) == 0 {
			idx.Manifests = append(idx.Manifests, desc)
		}
		for _, n := range it.Names {
			d := desc
			d.Annotations = map[string]string{ocilayout.RefNameAnnotation: n}
			if dst.Name == "" {
				d.Annotations["io.containerd.image.name"] = n
			}
			idx.Manifests = append(idx.Manifests, d)
		}
	}
	ib, err := json.Marshal(idx)
	if err != nil {
		return err
	}
	if err := tw.WriteHeader(hdr("index.json", int64(len(ib)))); err != nil {
		return err
	}
	if _, err := tw.Write(ib); err != nil {
		return err
	}
	return tw.Close()
}

func writeArchiveBlob(ctx context.Context, tw *tar.Writer, hdr func(string, int64) *tar.Header, b blob, p progress.Reporter) error {
	name := "blobs/" + b.desc.Digest.Algorithm + "/" + b.desc.Digest.Hex
	rc, err := b.reader()
	if err != nil {
		if b.layer && errdefs.IsNotFound(err) && !b.desc.MediaType.IsDistributable() {
			p.Task(short(b.desc.Digest), "write", b.desc.Size).Skip("non-distributable layer, not included")
			return nil
		}
		return err
	}
	defer rc.Close()
	size := b.desc.Size
	if b.raw != nil {
		size = int64(len(b.raw))
	}
	if err := tw.WriteHeader(hdr(name, size)); err != nil {
		return err
	}
	var r io.Reader = rc
	var task progress.Task
	if b.layer {
		task = p.Task(short(b.desc.Digest), "write", size)
		r = progress.Reader(rc, task)
	}
	_, err = ctxio.Copy(ctx, tw, r)
	if err != nil {
		err = fmt.Errorf("blob %s: %w", b.desc.Digest, err)
	}
	if task != nil {
		task.Done(err)
	}
	return err
}
