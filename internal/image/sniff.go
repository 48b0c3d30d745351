package image

import (
	"archive/tar"
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/klauspost/compress/gzip"

	"github.com/lading-dev/lading/internal/errdefs"
)

// ParseSource parses a reference to an image to read. A reference with a
// transport is parsed as Parse does. One without is a local path when it
// names an existing file or directory, and the transport is chosen from
// what is there:
//
//	a directory with an oci-layout file   oci:DIR
//	any other directory                   dir:DIR (a root filesystem)
//	a tar, plain or gzipped, with manifest.json            docker-archive:FILE
//	a tar, plain or gzipped, with oci-layout or index.json oci-archive:FILE
//
// note says which transport was chosen, and, when s is an image name too,
// how to name the image instead; the caller shows it. A bare reference that
// looks like a path ("./app.tar", "/srv/rootfs") but names nothing is an
// ErrNotFound error rather than a registry name that cannot parse.
func ParseSource(s string) (ref Reference, note string, err error) {
	if hasTransport(s) || s == "" {
		ref, err = Parse(s)
		return ref, "", err
	}
	fi, statErr := os.Stat(s)
	if statErr != nil {
		if looksLikePath(s) {
			return Reference{}, "", errdefs.NotFound(fmt.Errorf("%s: %w (a local path must exist; an image name would be [registry/]repo[:tag])",
				s, fs.ErrNotExist))
		}
		ref, err = Parse(s)
		return ref, "", err
	}
	ref, err = sniffPath(s, fi)
	if err != nil {
		return Reference{}, "", err
	}
	what := "directory"
	if !fi.IsDir() {
		what = "file"
	}
	note = fmt.Sprintf("%s is a %s here: reading it as %s", s, what, ref)
	if n, perr := Parse(s); perr == nil && n.Transport == Auto {
		note = fmt.Sprintf("%s names a %s here and an image too: reading the %s as %s; for the image, write docker://%s (a registry) or local:%s (the store)",
			s, what, what, ref, FamiliarName(n.Name), FamiliarName(n.Name))
	}
	return ref, note, nil
}

// hasTransport reports whether s starts with a transport prefix.
func hasTransport(s string) bool {
	for _, t := range transports {
		if strings.HasPrefix(s, string(t)+":") {
			return true
		}
	}
	return false
}

// looksLikePath reports whether s can only be a path: an image name never
// starts with "/", "." or "~".
func looksLikePath(s string) bool {
	return strings.HasPrefix(s, "/") || strings.HasPrefix(s, ".") || strings.HasPrefix(s, "~")
}

// sniffPath chooses the transport of an existing local path.
func sniffPath(p string, fi fs.FileInfo) (Reference, error) {
	if fi.IsDir() {
		if st, err := os.Stat(filepath.Join(p, "oci-layout")); err == nil && st.Mode().IsRegular() {
			return Reference{Transport: OCI, Path: p}, nil
		}
		return Reference{Transport: Dir, Path: p}, nil
	}
	t, err := sniffArchive(p)
	if err != nil {
		return Reference{}, err
	}
	return Reference{Transport: t, Path: p}, nil
}

// sniffArchive reads the member names of a tar (plain or gzipped) until it
// finds what makes it a docker-archive (manifest.json) or an oci-archive
// (oci-layout or index.json; lading's and Docker 25's docker-archives hold
// both, and are read as docker-archives for their tags).
func sniffArchive(p string) (Transport, error) {
	f, err := os.Open(p)
	if err != nil {
		return "", err
	}
	defer f.Close()
	br := bufio.NewReaderSize(f, 64<<10)
	var r io.Reader = br
	if head, _ := br.Peek(2); bytes.Equal(head, []byte{0x1f, 0x8b}) {
		zr, err := gzip.NewReader(br)
		if err != nil {
			return "", errdefs.InvalidArgument(fmt.Errorf("%s: a gzip file that does not read: %w", p, err))
		}
		defer zr.Close()
		r = zr
	} else {
		// A plain tar: let the tar reader seek past contents.
		if _, err := f.Seek(0, io.SeekStart); err != nil {
			return "", err
		}
		r = f
	}
	tr := tar.NewReader(r)
	oci := false
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return "", errdefs.InvalidArgument(fmt.Errorf("%s is neither an image archive nor a directory (%v); name a transport: oci-archive:, docker-archive:, oci:, dir:", p, err))
		}
		switch path.Clean(strings.TrimPrefix(h.Name, "./")) {
		case "manifest.json":
			return DockerArchive, nil
		case "oci-layout", "index.json":
			oci = true
		}
	}
	if oci {
		return OCIArchive, nil
	}
	return "", errdefs.InvalidArgument(fmt.Errorf("%s is a tar but not an image archive (no manifest.json, no oci-layout); to make an image of a root filesystem tarball, use lading import", p))
}

// Destination hint: a bare destination that looks like a path.

// ParseDestination parses a reference to write to. A bare reference that
// looks like a path is an error that says which transports write files and
// directories.
func ParseDestination(s string) (Reference, error) {
	if !hasTransport(s) && looksLikePath(s) {
		return Reference{}, errdefs.InvalidArgument(fmt.Errorf("%s: a destination path needs a transport: oci:%s (a layout directory), oci-archive:%s or docker-archive:%s", s, s, s, s))
	}
	return Parse(s)
}
