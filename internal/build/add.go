package build

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/bzip2"
	"fmt"
	"io"
	"path"
	"strings"

	"github.com/ulikunitz/xz"

	"github.com/lading-dev/lading/internal/errdefs"
	"github.com/lading-dev/lading/internal/layer"
)

// isRemote reports whether an ADD source is a URL or a Git reference,
// which lading refuses: it builds without network access.
func isRemote(src string) bool {
	for _, p := range []string{"http://", "https://", "git@", "git://", "ssh://"} {
		if strings.HasPrefix(src, p) {
			return true
		}
	}
	return false
}

func errRemote(src string) error {
	return errdefs.InvalidArgument(fmt.Errorf("ADD %s: remote sources (URLs and Git repositories) are not supported: lading builds without network access; download the file into the build context and COPY it", src))
}

// archiveReader returns the decompressed stream of r when r is a tar
// archive (plain, gzip, bzip2, xz or zstd, as Docker's ADD recognizes), or
// ok false when it is not one (then ADD copies the file as it is).
func archiveReader(r io.Reader) (io.Reader, func(), bool, error) {
	br := bufio.NewReaderSize(r, 64<<10)
	head, _ := br.Peek(6)
	var dr io.Reader
	closeFn := func() {}
	switch {
	case bytes.HasPrefix(head, []byte{0x1f, 0x8b}), bytes.HasPrefix(head, []byte{0x28, 0xb5, 0x2f, 0xfd}):
		rc, _, err := layer.Decompress(br)
		if err != nil {
			return nil, nil, false, nil
		}
		dr, closeFn = rc, func() { rc.Close() }
	case bytes.HasPrefix(head, []byte("BZh")):
		dr = bzip2.NewReader(br)
	case bytes.HasPrefix(head, []byte{0xfd, '7', 'z', 'X', 'Z', 0}):
		xr, err := xz.NewReader(br)
		if err != nil {
			return nil, nil, false, nil
		}
		dr = xr
	default:
		dr = br
	}
	tb := bufio.NewReaderSize(dr, 64<<10)
	block, err := tb.Peek(512)
	if err != nil || !isTarHeader(block) {
		closeFn()
		return nil, nil, false, nil
	}
	return tb, closeFn, true, nil
}

// isTarHeader reports whether a 512-byte block is a valid tar header (its
// checksum matches), as Docker's archive detection decides.
func isTarHeader(b []byte) bool {
	if len(b) < 512 {
		return false
	}
	_, err := tar.NewReader(bytes.NewReader(b[:512])).Next()
	return err == nil || err == io.ErrUnexpectedEOF
}

// unpackIfArchive unpacks the context file s into the image directory dest
// when it is a tar archive, and reports whether it was one. Entries are
// checked as every layer's are (names that leave the archive, links out,
// devices: refused); they keep their mode, owner and modification time
// (--chown applies to the directories ADD creates, not to the archive's
// entries, as buildah does).
func (c *copier) unpackIfArchive(s, dest string, cuid, cgid int) (bool, error) {
	f, err := c.op.src.root.Open(s)
	if err != nil {
		return false, c.op.src.notFound(s, err)
	}
	defer f.Close()
	r, closeFn, ok, err := archiveReader(f)
	if err != nil || !ok {
		return false, err
	}
	defer closeFn()
	if err := c.w.mkdirAll(dest, cuid, cgid); err != nil {
		return true, err
	}
	err = layer.Walk(c.ctx, r, func(e *layer.Entry) error {
		if e.Kind == layer.KindWhiteout || e.Kind == layer.KindOpaque || e.Name == "." {
			return nil
		}
		h := *e.Header
		h.PAXRecords = nil
		for k, v := range e.Header.PAXRecords {
			if strings.HasPrefix(k, "SCHILY.xattr.") {
				if h.PAXRecords == nil {
					h.PAXRecords = map[string]string{}
				}
				h.PAXRecords[k] = v
			}
		}
		parent, _, err := c.w.resolve(path.Join(dest, path.Dir(e.Name)))
		if err != nil {
			return err
		}
		target := path.Join(parent, path.Base(e.Name))
		switch e.Kind {
		case layer.KindHardlink:
			h.Typeflag, h.Size = tar.TypeLink, 0
			h.Linkname = strings.TrimPrefix(path.Join(dest, e.Linkname), "/")
			return c.w.write(&h, target, nil)
		case layer.KindRegular:
			h.Typeflag = tar.TypeReg
			return c.w.write(&h, target, e)
		case layer.KindDir:
			real, n, err := c.w.resolve(target)
			if err != nil {
				return err
			}
			if n != nil && n.dir && real != path.Clean(target) {
				return nil
			}
			return c.w.write(&h, real, nil)
		}
		h.Size = 0
		return c.w.write(&h, target, nil)
	}, layer.WithName("ADD "+s))
	return true, err
}
