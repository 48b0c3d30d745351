//go:build linux

package rootfs

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"slices"
	"strings"

	"golang.org/x/sys/unix"
)

// copyTree copies the tree src into dst (which must not exist) with
// everything a layer can carry: types, modes with setuid/setgid/sticky,
// owners (as root), xattrs, times with nanoseconds, hard links (within the
// tree), device nodes (as root) and FIFOs. Regular files are cloned where
// the file system can (reflinks), copied otherwise. Symlinks are copied as
// symlinks and never followed.
func copyTree(ctx context.Context, src, dst string) error {
	sfd, err := unix.Open(src, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return &os.PathError{Op: "open", Path: src, Err: err}
	}
	defer unix.Close(sfd)
	if err := os.Mkdir(dst, 0o700); err != nil {
		return err
	}
	dfd, err := unix.Open(dst, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(dfd)
	c := &copier{ctx: ctx, root: dfd, isRoot: os.Geteuid() == 0, links: map[[2]uint64]string{}, buf: make([]byte, 256<<10)}
	if err := c.dir(sfd, dfd, "."); err != nil {
		return err
	}
	// Directory metadata last, deepest first, so that filling a directory
	// does not change its times afterwards.
	slices.SortStableFunc(c.dirs, func(a, b dirMeta) int {
		return strings.Count(b.rel, "/") - strings.Count(a.rel, "/")
	})
	var st unix.Stat_t
	if err := unix.Fstat(sfd, &st); err != nil {
		return err
	}
	c.dirs = append(c.dirs, dirMeta{rel: ".", st: st})
	for _, d := range c.dirs {
		if err := c.dirMeta(d); err != nil {
			return fmt.Errorf("%s: %w", d.rel, err)
		}
	}
	return nil
}

type dirMeta struct {
	rel    string
	st     unix.Stat_t
	xattrs map[string][]byte
}

type copier struct {
	ctx    context.Context
	root   int // dst root
	isRoot bool
	links  map[[2]uint64]string // (dev, ino) of multiply-linked files -> first rel path in dst
	dirs   []dirMeta
	buf    []byte
}

func (c *copier) dir(sfd, dfd int, rel string) error {
	names, err := readDirNames(sfd)
	if err != nil {
		return fmt.Errorf("%s: %w", rel, err)
	}
	slices.Sort(names)
	for _, n := range names {
		if err := c.ctx.Err(); err != nil {
			return err
		}
		p := path.Join(rel, n)
		if err := c.entry(sfd, dfd, n, p); err != nil {
			return fmt.Errorf("%s: %w", p, err)
		}
	}
	return nil
}

// readDirNames lists the open directory dirfd (without closing it).
func readDirNames(dirfd int) ([]string, error) {
	fd, err := unix.Openat(dirfd, ".", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	d := os.NewFile(uintptr(fd), ".")
	defer d.Close()
	return d.Readdirnames(-1)
}

func (c *copier) entry(sfd, dfd int, n, p string) error {
	var st unix.Stat_t
	if err := unix.Fstatat(sfd, n, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return err
	}
	typ := st.Mode & unix.S_IFMT
	if typ != unix.S_IFDIR && st.Nlink > 1 {
		key := [2]uint64{st.Dev, st.Ino}
		if first, ok := c.links[key]; ok {
			return unix.Linkat(c.root, first, dfd, n, 0)
		}
		c.links[key] = p
	}
	xattrs, err := readXattrs(fmt.Sprintf("/proc/self/fd/%d/%s", sfd, n))
	if err != nil {
		return err
	}
	switch typ {
	case unix.S_IFDIR:
		if err := unix.Mkdirat(dfd, n, 0o700); err != nil {
			return err
		}
		s2, err := unix.Openat(sfd, n, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if err != nil {
			return err
		}
		defer unix.Close(s2)
		d2, err := unix.Openat(dfd, n, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if err != nil {
			return err
		}
		defer unix.Close(d2)
		c.dirs = append(c.dirs, dirMeta{rel: p, st: st, xattrs: xattrs})
		return c.dir(s2, d2, p)
	case unix.S_IFREG:
		if err := c.file(sfd, dfd, n, &st); err != nil {
			return err
		}
	case unix.S_IFLNK:
		buf := make([]byte, unix.PathMax)
		m, err := unix.Readlinkat(sfd, n, buf)
		if err != nil {
			return err
		}
		if err := unix.Symlinkat(string(buf[:m]), dfd, n); err != nil {
			return err
		}
	case unix.S_IFIFO, unix.S_IFCHR, unix.S_IFBLK:
		if typ != unix.S_IFIFO && !c.isRoot {
			return nil // device nodes need root; the unpacked layers have none then either
		}
		if err := unix.Mknodat(dfd, n, st.Mode&(unix.S_IFMT|0o7777), int(st.Rdev)); err != nil {
			return err
		}
	default:
		return nil // sockets are not part of a file system's content
	}
	return c.meta(dfd, n, &st, xattrs, typ != unix.S_IFLNK)
}

func (c *copier) file(sfd, dfd int, n string, st *unix.Stat_t) error {
	in, err := unix.Openat(sfd, n, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	src := os.NewFile(uintptr(in), n)
	defer src.Close()
	out, err := unix.Openat(dfd, n, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return err
	}
	dst := os.NewFile(uintptr(out), n)
	defer dst.Close()
	if st.Size > 0 {
		if err := unix.IoctlFileClone(out, in); err != nil {
			// No reflinks here: copy (copy_file_range where it can).
			if _, err := io.Copy(dst, io.LimitReader(src, st.Size)); err != nil {
				return err
			}
		}
	}
	return dst.Close()
}

// meta sets owner, mode, xattrs and times of the non-directory n in dfd.
func (c *copier) meta(dfd int, n string, st *unix.Stat_t, xattrs map[string][]byte, chmod bool) error {
	if c.isRoot {
		if err := unix.Fchownat(dfd, n, int(st.Uid), int(st.Gid), unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return err
		}
	}
	if chmod {
		if err := unix.Fchmodat(dfd, n, st.Mode&0o7777, 0); err != nil {
			return err
		}
	}
	if err := writeXattrs(fmt.Sprintf("/proc/self/fd/%d/%s", dfd, n), xattrs); err != nil {
		return err
	}
	return unix.UtimesNanoAt(dfd, n, []unix.Timespec{st.Atim, st.Mtim}, unix.AT_SYMLINK_NOFOLLOW)
}

func (c *copier) dirMeta(d dirMeta) error {
	fd, err := openBeneath(c.root, d.rel, unix.O_RDONLY|unix.O_DIRECTORY)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	if c.isRoot {
		if err := unix.Fchown(fd, int(d.st.Uid), int(d.st.Gid)); err != nil {
			return err
		}
	}
	if err := unix.Fchmod(fd, d.st.Mode&0o7777); err != nil {
		return err
	}
	if err := writeXattrs(fmt.Sprintf("/proc/self/fd/%d", fd), d.xattrs); err != nil {
		return err
	}
	return unix.UtimesNanoAt(fd, "", []unix.Timespec{d.st.Atim, d.st.Mtim}, unix.AT_EMPTY_PATH)
}

// readXattrs returns the extended attributes of p (not following a final
// symlink).
func readXattrs(p string) (map[string][]byte, error) {
	names := listXattrs(p)
	if len(names) == 0 {
		return nil, nil
	}
	out := make(map[string][]byte, len(names))
	for _, k := range names {
		sz, err := unix.Lgetxattr(p, k, nil)
		if errors.Is(err, unix.ENODATA) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("xattr %s: %w", k, err)
		}
		v := make([]byte, sz)
		sz, err = unix.Lgetxattr(p, k, v)
		if err != nil {
			return nil, fmt.Errorf("xattr %s: %w", k, err)
		}
		out[k] = v[:sz]
	}
	return out, nil
}

func listXattrs(p string) []string {
	sz, err := unix.Llistxattr(p, nil)
	if err != nil || sz == 0 {
		return nil
	}
	buf := make([]byte, sz)
	sz, err = unix.Llistxattr(p, buf)
	if err != nil {
		return nil
	}
	var out []string
	for _, k := range strings.Split(string(buf[:sz]), "\x00") {
		if k != "" {
			out = append(out, k)
		}
	}
	slices.Sort(out)
	return out
}

func writeXattrs(p string, xattrs map[string][]byte) error {
	for k, v := range xattrs {
		err := unix.Lsetxattr(p, k, v, 0)
		if errors.Is(err, unix.ENOTSUP) || errors.Is(err, unix.EPERM) {
			continue // not here, or not without privileges
		}
		if err != nil {
			return fmt.Errorf("xattr %s: %w", k, err)
		}
	}
	return nil
}
