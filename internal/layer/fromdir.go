package layer

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/lading-dev/lading/internal/errdefs"
)

// FromDir writes the tree below dir as a layer tar stream to w, and does not
// close w. The output depends only on the tree: entries come in sorted order
// (a directory before what it holds, names compared bytewise), named
// relative to dir without "./" (directories with a trailing slash; dir
// itself is not written), with mode including setuid, setgid and sticky
// bits, numeric uid and gid (no user or group names), and the modification
// time rounded to the second; access and change times are not written.
//
// Symlinks are written as symlinks and never followed; nothing outside dir
// is read (every lookup is relative to an open directory of the tree and
// does not follow symlinks). A non-directory with
// more than one link is written once in full, at its first name in walk
// order, and as a hard link to that name everywhere else. FIFOs and device
// nodes are written as such; sockets are skipped with a warning. With
// [WithXattrs] extended attributes are written as SCHILY.xattr PAX records;
// [ZeroTimes], [WithModTime] and [ZeroOwners] replace times and owners. A
// regular file whose size changes while it is read is an error, and so is a
// name starting with ".wh." (ErrInvalidArgument): a layer cannot hold one.
func FromDir(ctx context.Context, w io.Writer, dir string, opts ...Option) error {
	o := makeOptions(opts)
	root, err := os.OpenRoot(dir)
	if err != nil {
		return fmt.Errorf("layer from %s: %w", dir, err)
	}
	defer root.Close()
	f := &fromDir{
		ctx:   ctx,
		o:     o,
		dir:   dir,
		root:  root,
		tw:    tar.NewWriter(w),
		links: make(map[[2]uint64]string),
		buf:   make([]byte, 256<<10),
	}
	if err := f.walk("."); err != nil {
		return err
	}
	if err := f.tw.Close(); err != nil {
		return fmt.Errorf("layer from %s: %w", dir, err)
	}
	return nil
}

type fromDir struct {
	ctx   context.Context
	o     options
	dir   string
	root  *os.Root
	tw    *tar.Writer
	links map[[2]uint64]string // (dev, inode) of multiply-linked files -> first name
	buf   []byte
}

func (f *fromDir) fail(p string, err error) error {
	return fmt.Errorf("layer from %s: %q: %w", f.dir, p, err)
}

func (f *fromDir) walk(d string) error {
	df, err := f.root.Open(".")
	if err != nil {
		return f.fail(d, err)
	}
	return f.walkFD(df, d)
}

// walkFD writes the entries of directory d, open as df, and below; it
// closes df. Every lookup is relative to an open directory and does not
// follow symlinks, so nothing outside dir is read even if the tree changes
// meanwhile.
func (f *fromDir) walkFD(df *os.File, d string) error {
	defer df.Close()
	names, err := df.Readdirnames(-1)
	if err != nil {
		return f.fail(d, err)
	}
	slices.Sort(names)
	for _, n := range names {
		if err := f.ctx.Err(); err != nil {
			return err
		}
		p := join(d, n)
		if strings.HasPrefix(n, whPrefix) {
			return f.fail(p, errdefs.InvalidArgument(errors.New("a name starting with .wh. cannot be stored in a layer (it would be a whiteout)")))
		}
		isDir, err := f.add(df, n, p)
		if err != nil {
			return f.fail(p, err)
		}
		if isDir {
			fd, err := unix.Openat(int(df.Fd()), n, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
			if err != nil {
				return f.fail(p, err)
			}
			if err := f.walkFD(os.NewFile(uintptr(fd), p), p); err != nil {
				return err
			}
		}
	}
	return nil
}

// add writes the entry for p, the child n of the open directory df.
func (f *fromDir) add(df *os.File, n, p string) (isDir bool, err error) {
	var st unix.Stat_t
	if err := unix.Fstatat(int(df.Fd()), n, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return false, err
	}
	h := &tar.Header{
		Name:    p,
		Mode:    int64(st.Mode & 0o7777),
		Uid:     int(st.Uid),
		Gid:     int(st.Gid),
		ModTime: time.Unix(st.Mtim.Sec, st.Mtim.Nsec),
	}
	switch {
	case f.o.setModTime:
		h.ModTime = f.o.modTime
	case f.o.zeroTimes:
		h.ModTime = time.Unix(0, 0)
	}
	if f.o.zeroOwners {
		h.Uid, h.Gid = 0, 0
	}
	fmtType := st.Mode & unix.S_IFMT
	if fmtType != unix.S_IFDIR && st.Nlink > 1 {
		key := [2]uint64{uint64(st.Dev), st.Ino}
		if first, ok := f.links[key]; ok {
			h.Typeflag, h.Linkname, h.Mode = tar.TypeLink, first, 0
			return false, f.tw.WriteHeader(h)
		}
		f.links[key] = p
	}
	switch fmtType {
	case unix.S_IFDIR:
		h.Typeflag, h.Name, isDir = tar.TypeDir, p+"/", true
	case unix.S_IFREG:
		h.Typeflag, h.Size = tar.TypeReg, st.Size
	case unix.S_IFLNK:
		buf := make([]byte, unix.PathMax)
		m, err := unix.Readlinkat(int(df.Fd()), n, buf)
		if err != nil {
			return false, err
		}
		h.Typeflag, h.Linkname = tar.TypeSymlink, string(buf[:m])
	case unix.S_IFIFO:
		h.Typeflag = tar.TypeFifo
	case unix.S_IFCHR, unix.S_IFBLK:
		h.Typeflag = tar.TypeChar
		if fmtType == unix.S_IFBLK {
			h.Typeflag = tar.TypeBlock
		}
		h.Devmajor, h.Devminor = int64(unix.Major(uint64(st.Rdev))), int64(unix.Minor(uint64(st.Rdev)))
	default:
		f.o.log.Warn("skipping socket or unknown file type", "dir", f.dir, "path", p)
		return false, nil
	}
	if f.o.xattrs {
		if err := f.readXattrs(df, n, h); err != nil {
			return false, err
		}
	}
	if err := f.tw.WriteHeader(h); err != nil {
		return false, err
	}
	if h.Typeflag != tar.TypeReg || h.Size == 0 {
		return isDir, nil
	}
	fd, err := unix.Openat(int(df.Fd()), n, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return false, err
	}
	file := os.NewFile(uintptr(fd), p)
	defer file.Close()
	if err := unix.Fstat(fd, &st); err != nil {
		return false, err
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		return false, errors.New("replaced while it was read")
	}
	m, err := io.CopyBuffer(f.tw, io.LimitReader(file, h.Size), f.buf)
	if err != nil {
		return false, err
	}
	if m != h.Size {
		return false, errors.New("file shrank while it was read")
	}
	return false, nil
}

func (f *fromDir) readXattrs(df *os.File, n string, h *tar.Header) error {
	proc := fmt.Sprintf("/proc/self/fd/%d/%s", df.Fd(), n)
	sz, err := unix.Llistxattr(proc, nil)
	if errors.Is(err, unix.ENOTSUP) || sz == 0 {
		return nil
	}
	if err != nil {
		return fmt.Errorf("xattrs: %w", err)
	}
	list := make([]byte, sz)
	sz, err = unix.Llistxattr(proc, list)
	if err != nil {
		return fmt.Errorf("xattrs: %w", err)
	}
	for _, k := range strings.Split(strings.TrimRight(string(list[:sz]), "\x00"), "\x00") {
		vsz, err := unix.Lgetxattr(proc, k, nil)
		if err != nil {
			return fmt.Errorf("xattr %s: %w", k, err)
		}
		v := make([]byte, vsz)
		vsz, err = unix.Lgetxattr(proc, k, v)
		if err != nil {
			return fmt.Errorf("xattr %s: %w", k, err)
		}
		if h.PAXRecords == nil {
			h.PAXRecords = make(map[string]string)
		}
		h.PAXRecords[paxXattr+k] = string(v[:vsz])
	}
	return nil
}
