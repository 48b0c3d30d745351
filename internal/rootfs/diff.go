//go:build linux

package rootfs

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"time"

	"golang.org/x/sys/unix"
)

// Diff writes what differs from the layers as an OCI layer tar to w (not
// closed). Entries come in a fixed order (sorted by name within a
// directory, each directory before what it holds); names are relative
// without "./", directories end in "/"; owners are numeric, without names;
// times are truncated to the second and access and change times left out;
// xattrs are SCHILY.xattr PAX records (the overlayfs ones left out); a file
// with several names in the changes is written once and hard linked from
// the others. The same changes give the same bytes.
//
// A deleted path becomes a whiteout ".wh.NAME" (an overlayfs whiteout
// device in Overlay mode); a directory that hides everything below it in
// the layers (overlayfs's opaque directory, as `rm -rf d && mkdir d` makes)
// is followed by "d/.wh..wh..opq". In Copy and Dir mode every deleted name
// gets its own whiteout instead.
func (f *FS) Diff(ctx context.Context, w io.Writer, opts DiffOptions) error {
	root := f.changesRoot()
	fd, err := unix.Open(root, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("rootfs: open %s: %w", root, err)
	}
	defer unix.Close(fd)
	d := &differ{
		root:  fd,
		tw:    tar.NewWriter(w),
		links: map[[2]uint64]string{},
		epoch: opts.SourceDateEpoch,
		buf:   make([]byte, 256<<10),
		pfd:   -1,
	}
	defer d.closeParent()
	if err := f.walk(ctx, d.event); err != nil {
		return err
	}
	return d.tw.Close()
}

type differ struct {
	root  int
	tw    *tar.Writer
	links map[[2]uint64]string
	epoch *time.Time
	buf   []byte
	pname string // cached open parent directory
	pfd   int
}

// time is a modification time as a layer keeps it: in whole seconds
// (truncated, as the file system's seconds field has it), clamped to the
// epoch.
func (d *differ) time(ts unix.Timespec) time.Time {
	t := time.Unix(ts.Sec, 0)
	if d.epoch != nil && t.After(*d.epoch) {
		return *d.epoch
	}
	return t
}

func (d *differ) event(ev event) error {
	if err := d.write(ev); err != nil {
		return fmt.Errorf("rootfs: diff: %s: %w", ev.rel, err)
	}
	return nil
}

func (d *differ) write(ev event) error {
	if ev.kind == Deleted {
		return d.tw.WriteHeader(&tar.Header{
			Typeflag: tar.TypeReg,
			Name:     join(parentOf(ev.rel), ".wh."+path.Base(ev.rel)),
			ModTime:  d.time(ev.st.Mtim),
		})
	}
	pfd, err := d.parent(parentOf(ev.rel))
	if err != nil {
		return err
	}
	name := path.Base(ev.rel)
	st := &ev.st
	h := &tar.Header{
		Name:    ev.rel,
		Mode:    int64(st.Mode & 0o7777),
		Uid:     int(st.Uid),
		Gid:     int(st.Gid),
		ModTime: d.time(st.Mtim),
	}
	typ := st.Mode & unix.S_IFMT
	if typ != unix.S_IFDIR && st.Nlink > 1 {
		key := [2]uint64{st.Dev, st.Ino}
		if first, ok := d.links[key]; ok {
			h.Typeflag, h.Linkname, h.Mode = tar.TypeLink, first, 0
			return d.tw.WriteHeader(h)
		}
		d.links[key] = ev.rel
	}
	switch typ {
	case unix.S_IFDIR:
		h.Typeflag, h.Name = tar.TypeDir, ev.rel+"/"
	case unix.S_IFREG:
		h.Typeflag, h.Size = tar.TypeReg, st.Size
	case unix.S_IFLNK:
		buf := make([]byte, unix.PathMax)
		n, err := unix.Readlinkat(pfd, name, buf)
		if err != nil {
			return err
		}
		h.Typeflag, h.Linkname = tar.TypeSymlink, string(buf[:n])
	case unix.S_IFIFO:
		h.Typeflag = tar.TypeFifo
	case unix.S_IFCHR, unix.S_IFBLK:
		h.Typeflag = tar.TypeChar
		if typ == unix.S_IFBLK {
			h.Typeflag = tar.TypeBlock
		}
		h.Devmajor, h.Devminor = int64(unix.Major(st.Rdev)), int64(unix.Minor(st.Rdev))
	default:
		return nil // sockets
	}
	xattrs, err := readXattrs(fmt.Sprintf("/proc/self/fd/%d/%s", pfd, name))
	if err != nil {
		return err
	}
	for k, v := range xattrs {
		if len(k) > len("trusted.overlay.") && k[:len("trusted.overlay.")] == "trusted.overlay." {
			continue
		}
		if h.PAXRecords == nil {
			h.PAXRecords = map[string]string{}
		}
		h.PAXRecords["SCHILY.xattr."+k] = string(v)
	}
	if err := d.tw.WriteHeader(h); err != nil {
		return err
	}
	if ev.opaque {
		return d.tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: ev.rel + "/.wh..wh..opq", ModTime: h.ModTime})
	}
	if h.Typeflag != tar.TypeReg || h.Size == 0 {
		return nil
	}
	fd, err := unix.Openat(pfd, name, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	file := os.NewFile(uintptr(fd), ev.rel)
	defer file.Close()
	n, err := io.CopyBuffer(d.tw, io.LimitReader(file, h.Size), d.buf)
	if err != nil {
		return err
	}
	if n != h.Size {
		return errors.New("file shrank while it was read")
	}
	return nil
}

// parent returns an open descriptor of directory rel below the root,
// reached without following symlinks.
func (d *differ) parent(rel string) (int, error) {
	if d.pfd >= 0 && d.pname == rel {
		return d.pfd, nil
	}
	d.closeParent()
	fd, err := openBeneath(d.root, rel, unix.O_RDONLY|unix.O_DIRECTORY)
	if err != nil {
		return -1, err
	}
	d.pname, d.pfd = rel, fd
	return fd, nil
}

func (d *differ) closeParent() {
	if d.pfd >= 0 {
		unix.Close(d.pfd)
		d.pfd = -1
	}
}
