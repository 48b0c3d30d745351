package build

import (
	"archive/tar"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"path"
	"slices"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// layerWriter writes the tar stream of a layer COPY, ADD or WORKDIR makes.
// Entries are normalized so that the same input gives the same bytes:
// names relative without "./" (directories with a trailing slash), numeric
// owners without names, modification times in whole seconds and clamped to
// SOURCE_DATE_EPOCH when set, no access or change times. Directories and
// symlinks written are recorded in the stage's tree when it is current.
type layerWriter struct {
	tw    *tar.Writer
	epoch *time.Time
	now   time.Time
	tree  *tree // nil: not tracked
	// skip, when set, says whether a path is written by a later source of
	// the same instruction (the later one wins, as Docker copies in order).
	skip func(p string) bool
	// dry, when set, receives the path of every entry instead of it being
	// written (a first pass that finds which source writes a path last).
	dry   func(p string)
	links map[[2]uint64]string // (dev, inode) of a multiply-linked file -> its first name
	// sum, when set, receives a digest of each entry (everything but its
	// times) and its content instead of the tar: the content key of a
	// COPY or ADD for the cache.
	sum hash.Hash
	buf []byte
	n   int // entries written
}

func newLayerWriter(w io.Writer, epoch *time.Time, t *tree) *layerWriter {
	now := time.Now().Truncate(time.Second)
	if epoch != nil && now.After(*epoch) {
		now = *epoch
	}
	return &layerWriter{
		tw:    tar.NewWriter(w),
		epoch: epoch,
		now:   now,
		tree:  t,
		links: map[[2]uint64]string{},
		buf:   make([]byte, 256<<10),
	}
}

func (w *layerWriter) close() error { return w.tw.Close() }

// clamp returns t in whole seconds, no later than SOURCE_DATE_EPOCH.
func (w *layerWriter) clamp(t time.Time) time.Time {
	t = t.Truncate(time.Second)
	if w.epoch != nil && t.After(*w.epoch) {
		return *w.epoch
	}
	return t
}

// write writes one entry with content r (for regular files). p is the
// absolute path in the image.
func (w *layerWriter) write(h *tar.Header, p string, r io.Reader) error {
	name := strings.TrimPrefix(path.Clean(p), "/")
	if name == "" {
		return nil // the root's own metadata is never changed by COPY
	}
	if w.dry != nil {
		w.dry(path.Clean(p))
		return nil
	}
	if w.skip != nil && h.Typeflag != tar.TypeDir && w.skip(path.Clean(p)) {
		if r != nil {
			_, err := io.CopyBuffer(io.Discard, io.LimitReader(r, h.Size), w.buf)
			return err
		}
		return nil
	}
	h.Name = name
	if h.Typeflag == tar.TypeDir {
		h.Name += "/"
	}
	if w.sum != nil {
		return w.hashEntry(h, r)
	}
	h.Uname, h.Gname = "", ""
	h.ModTime = w.clamp(h.ModTime)
	h.AccessTime, h.ChangeTime = time.Time{}, time.Time{}
	h.Format = tar.FormatUnknown
	if len(h.PAXRecords) > 0 || len(h.Name) > 100 || len(h.Linkname) > 100 {
		h.Format = tar.FormatPAX
	}
	if err := w.tw.WriteHeader(h); err != nil {
		return fmt.Errorf("%s: %w", p, err)
	}
	w.n++
	if h.Typeflag == tar.TypeReg && h.Size > 0 {
		m, err := io.CopyBuffer(w.tw, io.LimitReader(r, h.Size), w.buf)
		if err != nil {
			return fmt.Errorf("%s: %w", p, err)
		}
		if m != h.Size {
			return fmt.Errorf("%s: file shrank while it was read", p)
		}
	}
	if w.tree != nil {
		switch h.Typeflag {
		case tar.TypeDir:
			w.tree.setDir(p, h.Mode&0o7777, h.Uid, h.Gid)
		case tar.TypeSymlink:
			w.tree.setLink(p, h.Linkname)
		default:
			w.tree.remove(p)
		}
	}
	return nil
}

// hashEntry feeds an entry to w.sum: its name, type, mode, owner, size,
// link target, device numbers and extended attributes (never its times),
// then its content.
func (w *layerWriter) hashEntry(h *tar.Header, r io.Reader) error {
	fmt.Fprintf(w.sum, "%q %c %o %d %d %d %q %d %d", h.Name, h.Typeflag, h.Mode, h.Uid, h.Gid, h.Size, h.Linkname, h.Devmajor, h.Devminor)
	keys := make([]string, 0, len(h.PAXRecords))
	for k := range h.PAXRecords {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		fmt.Fprintf(w.sum, " %q=%q", k, h.PAXRecords[k])
	}
	w.sum.Write([]byte{'\n'})
	w.n++
	if h.Typeflag == tar.TypeReg && h.Size > 0 && r != nil {
		m, err := io.CopyBuffer(w.sum, io.LimitReader(r, h.Size), w.buf)
		if err != nil {
			return fmt.Errorf("%s: %w", h.Name, err)
		}
		if m != h.Size {
			return fmt.Errorf("%s: file shrank while it was read", h.Name)
		}
	}
	return nil
}

// mkdirAll makes sure directory p exists, writing entries (mode 0755,
// owner uid:gid, the build's time) for each missing one. p must be resolved
// (no symlinks on the way). Without a tree every component is written.
func (w *layerWriter) mkdirAll(p string, uid, gid int) error {
	cs := splitPath(p)
	cur := ""
	for _, c := range cs {
		cur += "/" + c
		if w.tree != nil {
			if n := w.tree.lookup(cur); n != nil && n.dir {
				continue
			}
		}
		h := &tar.Header{Typeflag: tar.TypeDir, Mode: 0o755, Uid: uid, Gid: gid, ModTime: w.now}
		if err := w.write(h, cur, nil); err != nil {
			return err
		}
	}
	return nil
}

// statHeader makes a tar header from a stat result: type, mode with special
// bits, owner, size, modification time, device numbers.
func statHeader(st *unix.Stat_t) (*tar.Header, error) {
	h := &tar.Header{
		Mode:    int64(st.Mode & 0o7777),
		Uid:     int(st.Uid),
		Gid:     int(st.Gid),
		ModTime: time.Unix(st.Mtim.Sec, st.Mtim.Nsec),
	}
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFDIR:
		h.Typeflag = tar.TypeDir
	case unix.S_IFREG:
		h.Typeflag, h.Size = tar.TypeReg, st.Size
	case unix.S_IFLNK:
		h.Typeflag = tar.TypeSymlink
	case unix.S_IFIFO:
		h.Typeflag = tar.TypeFifo
	case unix.S_IFCHR:
		h.Typeflag = tar.TypeChar
	case unix.S_IFBLK:
		h.Typeflag = tar.TypeBlock
	default:
		return nil, errSocket
	}
	if h.Typeflag == tar.TypeChar || h.Typeflag == tar.TypeBlock {
		h.Devmajor, h.Devminor = int64(unix.Major(uint64(st.Rdev))), int64(unix.Minor(uint64(st.Rdev)))
	}
	return h, nil
}

var errSocket = errors.New("a socket cannot be copied")

// readXattrsFd reads the extended attributes of an open file as
// SCHILY.xattr PAX records.
func readXattrsFd(fd int, h *tar.Header) error {
	sz, err := unix.Flistxattr(fd, nil)
	if err != nil || sz == 0 {
		if err != nil && !errors.Is(err, unix.ENOTSUP) {
			return fmt.Errorf("xattrs: %w", err)
		}
		return nil
	}
	list := make([]byte, sz)
	if sz, err = unix.Flistxattr(fd, list); err != nil {
		return fmt.Errorf("xattrs: %w", err)
	}
	for _, k := range strings.Split(strings.TrimRight(string(list[:sz]), "\x00"), "\x00") {
		if !keepXattr(k) {
			continue
		}
		vsz, err := unix.Fgetxattr(fd, k, nil)
		if err != nil {
			continue
		}
		v := make([]byte, vsz)
		if vsz, err = unix.Fgetxattr(fd, k, v); err != nil {
			continue
		}
		if h.PAXRecords == nil {
			h.PAXRecords = map[string]string{}
		}
		h.PAXRecords["SCHILY.xattr."+k] = string(v[:vsz])
	}
	return nil
}

// keepXattr says which extended attributes a layer carries: not SELinux
// labels or ACLs, which belong to the host.
func keepXattr(k string) bool {
	return k != "" && k != "security.selinux" && !strings.HasPrefix(k, "system.")
}

// readXattrs reads the extended attributes of name in the open directory
// dfd (without following a symlink) as SCHILY.xattr PAX records.
func readXattrs(dfd int, name string, h *tar.Header) error {
	proc := fmt.Sprintf("/proc/self/fd/%d/%s", dfd, name)
	sz, err := unix.Llistxattr(proc, nil)
	if errors.Is(err, unix.ENOTSUP) || errors.Is(err, unix.ENODATA) || sz == 0 {
		return nil
	}
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil
		}
		return fmt.Errorf("xattrs: %w", err)
	}
	list := make([]byte, sz)
	sz, err = unix.Llistxattr(proc, list)
	if err != nil {
		return fmt.Errorf("xattrs: %w", err)
	}
	for _, k := range strings.Split(strings.TrimRight(string(list[:sz]), "\x00"), "\x00") {
		if !keepXattr(k) {
			continue
		}
		vsz, err := unix.Lgetxattr(proc, k, nil)
		if err != nil {
			continue
		}
		v := make([]byte, vsz)
		vsz, err = unix.Lgetxattr(proc, k, v)
		if err != nil {
			continue
		}
		if h.PAXRecords == nil {
			h.PAXRecords = map[string]string{}
		}
		h.PAXRecords["SCHILY.xattr."+k] = string(v[:vsz])
	}
	return nil
}
