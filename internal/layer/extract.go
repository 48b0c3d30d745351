package layer

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"slices"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/lading-dev/lading/internal/errdefs"
)

// Extract writes the uncompressed tar stream r into the existing directory
// dir. Nothing is created, changed or removed outside dir: every operation
// goes through an os.Root opened on dir, no symlink is followed when a name
// is created, and a name's parents are made of real directories.
//
// The stream is checked as [Walk] does with [LastEntryWins] (names that
// escape, absolute names, links that escape, writes through a symlink of the
// stream, devices without [AllowDevices], truncation); the first problem is
// returned as an [*Error] naming the entry. Entries are created in archive
// order, so a later entry of the stream at a name replaces an earlier one,
// as docker and containerd apply a layer:
//
//   - Regular files, directories, symlinks (their target stored as given and
//     never followed), hard links to names inside dir (to a non-directory
//     that exists when the link is read), FIFOs, and device nodes when
//     allowed. A FIFO or device node that the process has no right to create
//     (EPERM: not root, or no CAP_MKNOD) is skipped with a warning.
//   - An existing entry at a name is replaced, except that a directory over a
//     directory merges with it. A parent that does not exist is created with
//     mode 0755. A parent that exists and is not a directory is an
//     ErrInvalidArgument error, or, with [ApplyWhiteouts], is replaced by a
//     directory (overlay rules: a directory of a higher layer hides a
//     non-directory below).
//   - Mode (with setuid, setgid and sticky bits), modification and access
//     times, owner when running as root (unless [IgnoreOwners]; links are
//     not followed) and, with [WithXattrs], SCHILY.xattr records. Directory
//     metadata is set last, deepest first, the later of two headers for one
//     directory winning; until then directories are writable by the owner.
//     A "./" entry sets dir's own metadata.
//
// Without [ApplyWhiteouts], whiteout and opaque entries are written as the
// plain files they are in the archive. With it, the stream is applied as a
// layer on top of what dir holds, as the kernel's overlayfs would show it:
// see ApplyWhiteouts. Applying an image's layers one by one this way gives
// the tree that extracting [Export]'s output of the same layers gives, except
// for a hard link whose target path goes through a symlink of a lower layer:
// Extract follows that symlink (inside dir), Export reports the target as
// not found.
//
// On error, what was written so far stays; dir itself is never removed.
func Extract(ctx context.Context, dir string, r io.Reader, opts ...Option) error {
	o := makeOptions(opts)
	root, err := os.OpenRoot(dir)
	if err != nil {
		return wrapErr(o.name, "", err)
	}
	defer root.Close()
	x := &extractor{
		o:      o,
		root:   root,
		isRoot: os.Geteuid() == 0,
		dirs:   make(map[string]bool),
		meta:   make(map[string]*tar.Header),
		buf:    make([]byte, 256<<10),
	}
	defer x.closeParent()
	if o.whiteouts {
		x.layerSet = make(map[string]bool)
		x.reset = make(map[string]bool)
	}
	wopts := []Option{WithName(o.name), LastEntryWins()}
	if o.devices {
		wopts = append(wopts, AllowDevices())
	}
	if err := Walk(ctx, r, x.entry, wopts...); err != nil {
		return err
	}
	return x.finish()
}

type extractor struct {
	o      options
	root   *os.Root
	isRoot bool
	dirs   map[string]bool        // real directories checked or made by this extraction
	meta   map[string]*tar.Header // directory headers, applied at the end
	buf    []byte

	// With ApplyWhiteouts: the paths this stream has (entries and the
	// directories they imply), and whited-out directories of this stream
	// that get default metadata unless the stream gives a header.
	layerSet map[string]bool
	reset    map[string]bool

	pname string // cached open parent directory
	pdir  *os.File
}

func (x *extractor) entry(e *Entry) error {
	if x.layerSet != nil {
		for p := e.path; p != "." && !x.layerSet[p]; p = parent(p) {
			x.layerSet[p] = true
		}
	}
	if e.Kind.isMarker() && x.layerSet == nil {
		if err := x.ensureDir(parent(e.path)); err != nil {
			return err
		}
		return x.regular(e, e.path)
	}
	switch e.Kind {
	case KindWhiteout:
		if err := x.ensureDir(parent(e.Name)); err != nil {
			return err
		}
		if x.layerSet[e.Name] {
			// Whiteouts hide only lower layers: keep what this stream made;
			// a directory loses the metadata it had below.
			if fi, err := x.root.Lstat(e.Name); err == nil && fi.IsDir() {
				x.reset[e.Name] = true
			}
			return x.prune(e.Name)
		}
		return x.clear(e.Name)
	case KindOpaque: // at the root too: every lower layer goes
		if err := x.ensureDir(e.Name); err != nil {
			return err
		}
		return x.prune(e.Name)
	}

	p := e.Name
	if err := x.ensureDir(parent(p)); err != nil {
		return err
	}
	h := e.Header
	switch e.Kind {
	case KindDir:
		if p != "." {
			if err := x.mkdir(p); err != nil {
				return err
			}
		}
		x.meta[p] = h
		delete(x.reset, p)
		return nil
	case KindRegular:
		return x.regular(e, p)
	case KindSymlink:
		if err := x.place(p, func() error { return x.root.Symlink(e.Linkname, p) }); err != nil {
			return err
		}
		return x.setMeta(p, h, false)
	case KindHardlink:
		fi, err := x.root.Lstat(e.Linkname)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			return errdefs.InvalidArgument(fmt.Errorf("hard link target %q does not exist", e.Linkname))
		case err != nil:
			return err
		case fi.IsDir():
			return errdefs.InvalidArgument(fmt.Errorf("hard link target %q is a directory", e.Linkname))
		}
		return x.place(p, func() error { return x.root.Link(e.Linkname, p) })
	case KindFIFO, KindCharDevice, KindBlockDevice:
		mode := uint32(h.Mode & 0o7777)
		var dev uint64
		switch e.Kind {
		case KindFIFO:
			mode |= unix.S_IFIFO
		case KindCharDevice:
			mode |= unix.S_IFCHR
			dev = unix.Mkdev(uint32(h.Devmajor), uint32(h.Devminor))
		case KindBlockDevice:
			mode |= unix.S_IFBLK
			dev = unix.Mkdev(uint32(h.Devmajor), uint32(h.Devminor))
		}
		err := x.place(p, func() error {
			return x.atParent(p, func(fd int, name string) error { return mknodat(fd, name, mode, dev) })
		})
		if errors.Is(err, unix.EPERM) {
			x.o.log.Warn("skipping "+e.Kind.String()+": no right to create it here", "layer", x.o.name, "entry", h.Name, "err", err)
			return nil
		}
		if err != nil {
			return err
		}
		return x.setMeta(p, h, true)
	}
	return nil
}

// regular writes e's content as a new regular file p.
func (x *extractor) regular(e *Entry, p string) error {
	var f *os.File
	err := x.place(p, func() (err error) {
		f, err = x.root.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL|syscall.O_NOFOLLOW, 0o600)
		return err
	})
	if err != nil {
		return err
	}
	defer func() {
		if f != nil {
			f.Close()
		}
	}()
	if _, err := io.CopyBuffer(writerOnly{f}, e, x.buf); err != nil {
		return err
	}
	h := e.Header
	if x.chown() {
		if err := f.Chown(h.Uid, h.Gid); err != nil {
			return err
		}
	}
	if err := f.Chmod(fileMode(h.Mode)); err != nil {
		return err
	}
	if x.o.xattrs {
		if err := x.xattrs(h, func(k string, v []byte) error { return unix.Fsetxattr(int(f.Fd()), k, v, 0) }); err != nil {
			return err
		}
	}
	err = f.Close()
	f = nil
	if err != nil {
		return err
	}
	return x.atParent(p, func(fd int, name string) error {
		return unix.UtimesNanoAt(fd, name, times(h), unix.AT_SYMLINK_NOFOLLOW)
	})
}

// setMeta sets owner, mode (unless a symlink), xattrs and times of the
// non-directory p without following it.
func (x *extractor) setMeta(p string, h *tar.Header, chmod bool) error {
	return x.atParent(p, func(fd int, name string) error {
		if x.chown() {
			if err := unix.Fchownat(fd, name, h.Uid, h.Gid, unix.AT_SYMLINK_NOFOLLOW); err != nil {
				return err
			}
		}
		if chmod {
			if err := unix.Fchmodat(fd, name, uint32(h.Mode&0o7777), 0); err != nil {
				return err
			}
		}
		if x.o.xattrs {
			proc := fmt.Sprintf("/proc/self/fd/%d/%s", fd, name)
			if err := x.xattrs(h, func(k string, v []byte) error { return unix.Lsetxattr(proc, k, v, 0) }); err != nil {
				return err
			}
		}
		return unix.UtimesNanoAt(fd, name, times(h), unix.AT_SYMLINK_NOFOLLOW)
	})
}

func (x *extractor) chown() bool { return x.isRoot && !x.o.noOwners }

// xattrs calls set for each SCHILY.xattr record of h. Attributes the file
// system or the caller's privileges do not allow are skipped with a warning.
func (x *extractor) xattrs(h *tar.Header, set func(string, []byte) error) error {
	for _, k := range sortedKeys(h.PAXRecords) {
		name, ok := strings.CutPrefix(k, paxXattr)
		if !ok {
			continue
		}
		err := set(name, []byte(h.PAXRecords[k]))
		if errors.Is(err, unix.ENOTSUP) || errors.Is(err, unix.EPERM) {
			x.o.log.Warn("skipping xattr", "layer", x.o.name, "entry", h.Name, "xattr", name, "err", err)
			continue
		}
		if err != nil {
			return fmt.Errorf("xattr %s: %w", name, err)
		}
	}
	return nil
}

// place runs create; when the name exists it removes what is there and
// runs create once more.
func (x *extractor) place(p string, create func() error) error {
	err := create()
	if err == nil || !errors.Is(err, fs.ErrExist) {
		return err
	}
	if err := x.clear(p); err != nil {
		return err
	}
	return create()
}

// mkdir makes p a directory, merging with a directory already there.
func (x *extractor) mkdir(p string) error {
	err := x.root.Mkdir(p, 0o700)
	if errors.Is(err, fs.ErrExist) {
		fi, lerr := x.root.Lstat(p)
		if lerr != nil {
			return lerr
		}
		if fi.IsDir() {
			err = nil
		} else if err = x.clear(p); err == nil {
			err = x.root.Mkdir(p, 0o700)
		}
	}
	if err != nil {
		return err
	}
	x.dirs[p] = true
	return nil
}

// ensureDir makes p and its parents real directories: missing ones are
// made with mode 0755; a non-directory is an error, or, with
// ApplyWhiteouts, replaced.
func (x *extractor) ensureDir(p string) error {
	if p == "." || x.dirs[p] {
		return nil
	}
	if err := x.ensureDir(parent(p)); err != nil {
		return err
	}
	fi, err := x.root.Lstat(p)
	switch {
	case err == nil && fi.IsDir():
		x.dirs[p] = true
		return nil
	case err == nil:
		if x.layerSet == nil {
			return errdefs.InvalidArgument(fmt.Errorf("parent %q exists and is not a directory (refusing to write through it)", p))
		}
		if err := x.root.Remove(p); err != nil {
			return err
		}
	case !errors.Is(err, fs.ErrNotExist):
		return err
	}
	if err := x.root.Mkdir(p, 0o755); err != nil {
		return err
	}
	if err := x.root.Chmod(p, 0o755); err != nil {
		return err
	}
	x.dirs[p] = true
	return nil
}

// clear removes whatever is at p, a whole tree for a directory.
func (x *extractor) clear(p string) error {
	fi, err := x.root.Lstat(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if !fi.IsDir() {
		return x.root.Remove(p)
	}
	for d := range x.dirs {
		if isUnder(d, p) {
			delete(x.dirs, d)
		}
	}
	// What is removed gets no directory metadata at the end.
	for d := range x.meta {
		if isUnder(d, p) {
			delete(x.meta, d)
		}
	}
	for d := range x.reset {
		if isUnder(d, p) {
			delete(x.reset, d)
		}
	}
	if x.pdir != nil && isUnder(x.pname, p) {
		x.closeParent()
	}
	return x.root.RemoveAll(p)
}

// prune removes from directory d, recursively, everything this stream did
// not make (ApplyWhiteouts: an opaque marker, or a whiteout of a path the
// stream has).
func (x *extractor) prune(d string) error {
	// os.Root follows a symlink in the last element even with O_NOFOLLOW,
	// so check first: only real directories are pruned.
	fi, err := x.root.Lstat(d)
	if err != nil || !fi.IsDir() {
		if err == nil || errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		return err
	}
	f, err := x.root.Open(d)
	if err != nil {
		return err
	}
	names, err := f.Readdirnames(-1)
	f.Close()
	if err != nil {
		return err
	}
	slices.Sort(names)
	for _, n := range names {
		c := join(d, n)
		if !x.layerSet[c] {
			if err := x.clear(c); err != nil {
				return err
			}
			continue
		}
		if err := x.prune(c); err != nil { // stops at non-directories
			return err
		}
	}
	return nil
}

// atParent calls fn with an open descriptor of p's parent directory and
// p's last element. The parent is a directory ensureDir checked or made
// (os.Root would follow a symlink there despite O_NOFOLLOW).
func (x *extractor) atParent(p string, fn func(dirfd int, name string) error) error {
	dir := parent(p)
	if x.pdir == nil || x.pname != dir {
		x.closeParent()
		f, err := x.root.OpenFile(dir, os.O_RDONLY|syscall.O_DIRECTORY|syscall.O_NOFOLLOW, 0)
		if err != nil {
			return err
		}
		x.pname, x.pdir = dir, f
	}
	return fn(int(x.pdir.Fd()), base(p))
}

func (x *extractor) closeParent() {
	if x.pdir != nil {
		x.pdir.Close()
		x.pdir, x.pname = nil, ""
	}
}

func (x *extractor) finish() error {
	for d := range x.reset {
		if _, ok := x.meta[d]; !ok {
			x.meta[d] = &tar.Header{Typeflag: tar.TypeDir, Name: d, Mode: 0o755, ModTime: time.Unix(0, 0)}
		}
	}
	dirs := make([]string, 0, len(x.meta))
	for d := range x.meta {
		dirs = append(dirs, d)
	}
	// Deepest first, so that setting a directory's times comes after
	// everything below it is done.
	slices.SortFunc(dirs, func(a, b string) int {
		if c := strings.Count(b, "/") - strings.Count(a, "/"); c != 0 {
			return c
		}
		return strings.Compare(a, b)
	})
	x.closeParent()
	for _, d := range dirs {
		h := x.meta[d]
		if err := x.dirMeta(d, h); err != nil {
			return wrapErr(x.o.name, h.Name, err)
		}
	}
	return nil
}

func (x *extractor) dirMeta(d string, h *tar.Header) error {
	f, err := x.root.OpenFile(d, os.O_RDONLY|syscall.O_DIRECTORY|syscall.O_NOFOLLOW, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	if x.chown() {
		if err := f.Chown(h.Uid, h.Gid); err != nil {
			return err
		}
	}
	if err := f.Chmod(fileMode(h.Mode)); err != nil {
		return err
	}
	if x.o.xattrs {
		if err := x.xattrs(h, func(k string, v []byte) error { return unix.Fsetxattr(int(f.Fd()), k, v, 0) }); err != nil {
			return err
		}
	}
	if d == "." {
		return x.root.Chtimes(".", atime(h), h.ModTime)
	}
	return x.atParent(d, func(fd int, name string) error {
		return unix.UtimesNanoAt(fd, name, times(h), unix.AT_SYMLINK_NOFOLLOW)
	})
}

// fileMode converts a tar mode to an os.FileMode with the special bits.
func fileMode(m int64) os.FileMode {
	mode := os.FileMode(m & 0o777)
	if m&0o4000 != 0 {
		mode |= os.ModeSetuid
	}
	if m&0o2000 != 0 {
		mode |= os.ModeSetgid
	}
	if m&0o1000 != 0 {
		mode |= os.ModeSticky
	}
	return mode
}

func atime(h *tar.Header) time.Time {
	if h.AccessTime.IsZero() {
		return h.ModTime
	}
	return h.AccessTime
}

func times(h *tar.Header) []unix.Timespec {
	a, m := atime(h), h.ModTime
	return []unix.Timespec{
		{Sec: a.Unix(), Nsec: int64(a.Nanosecond())},
		{Sec: m.Unix(), Nsec: int64(m.Nanosecond())},
	}
}

// writerOnly hides os.File's ReadFrom, which would allocate a buffer per
// file instead of using ours.
type writerOnly struct{ io.Writer }
