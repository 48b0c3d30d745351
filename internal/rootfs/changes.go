//go:build linux

package rootfs

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"path"
	"slices"
	"strings"

	"golang.org/x/sys/unix"
)

// Changes lists what differs from the layers, sorted by path, as `docker
// diff` does: added and changed paths, deleted paths (a deleted directory
// once, not what it held), and each directory above a change as changed.
func (f *FS) Changes(ctx context.Context) ([]Change, error) {
	var out []Change
	low := newStack(f.lowers, f.overlay)
	err := f.walk(ctx, func(ev event) error {
		out = append(out, Change{Kind: ev.kind, Path: "/" + ev.rel})
		if ev.opaque {
			// Everything of the lower directory the opaque one does not
			// have again is deleted.
			lower, err := low.list(ev.rel)
			if err != nil {
				return err
			}
			for n := range lower {
				p := path.Join(ev.rel, n)
				if _, err := lstatIn(f.changesRoot(), p); err != nil {
					out = append(out, Change{Kind: Deleted, Path: "/" + p})
				}
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	slices.SortFunc(out, func(a, b Change) int { return strings.Compare(a.Path, b.Path) })
	return slices.CompactFunc(out, func(a, b Change) bool { return a.Path == b.Path }), nil
}

// changesRoot is the directory the changes are read from.
func (f *FS) changesRoot() string {
	if f.mode == Overlay {
		return f.upper
	}
	return f.tree
}

func lstatIn(root, rel string) (unix.Stat_t, error) {
	var st unix.Stat_t
	err := unix.Lstat(path.Join(root, rel), &st)
	return st, err
}

// event is one change found by a walk, in layer order: sorted by name
// within a directory, a directory before what it holds.
type event struct {
	kind   ChangeKind
	rel    string      // relative path, no leading slash
	st     unix.Stat_t // the entry (Added, Changed); for Deleted, the whiteout or the directory that lost it
	opaque bool        // a directory that hides everything the lower one holds
}

// walk reports the changes in layer order.
func (f *FS) walk(ctx context.Context, fn func(event) error) error {
	root := f.changesRoot()
	fd, err := unix.Open(root, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("rootfs: open %s: %w", root, err)
	}
	defer unix.Close(fd)
	w := &walker{ctx: ctx, low: newStack(f.lowers, f.overlay), fn: fn}
	if f.mode == Overlay {
		return w.upper(fd, ".")
	}
	evs, err := w.tree(fd, ".", true)
	if err != nil {
		return err
	}
	for _, ev := range evs {
		if err := fn(ev); err != nil {
			return err
		}
	}
	return nil
}

type walker struct {
	ctx context.Context
	low *stack
	fn  func(event) error
}

func join(dir, name string) string {
	if dir == "." {
		return name
	}
	return dir + "/" + name
}

// upper walks an overlayfs upper directory.
func (w *walker) upper(fd int, rel string) error {
	names, err := readDirNames(fd)
	if err != nil {
		return fmt.Errorf("rootfs: %s: %w", rel, err)
	}
	slices.Sort(names)
	for _, n := range names {
		if err := w.ctx.Err(); err != nil {
			return err
		}
		p := join(rel, n)
		var st unix.Stat_t
		if err := unix.Fstatat(fd, n, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return fmt.Errorf("rootfs: %s: %w", p, err)
		}
		lower, inLower, err := w.low.lookup(p)
		if err != nil {
			return err
		}
		if isUpperWhiteout(fd, n, &st) {
			if inLower {
				if err := w.fn(event{kind: Deleted, rel: p, st: st}); err != nil {
					return err
				}
			}
			continue
		}
		kind := Added
		if inLower {
			kind = Changed
		}
		typ := st.Mode & unix.S_IFMT
		if typ != unix.S_IFDIR {
			if err := w.fn(event{kind: kind, rel: p, st: st}); err != nil {
				return err
			}
			continue
		}
		opaque := inLower && lower.Mode&unix.S_IFMT == unix.S_IFDIR && xattrIs(fmt.Sprintf("/proc/self/fd/%d/%s", fd, n), "trusted.overlay.opaque", "y")
		if err := w.fn(event{kind: kind, rel: p, st: st, opaque: opaque}); err != nil {
			return err
		}
		sub, err := unix.Openat(fd, n, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if err != nil {
			return fmt.Errorf("rootfs: %s: %w", p, err)
		}
		err = w.upper(sub, p)
		unix.Close(sub)
		if err != nil {
			return err
		}
	}
	return nil
}

// isUpperWhiteout reports whether the upper entry n is a whiteout: a 0/0
// character device, or (where the file system cannot make those) an empty
// file with the trusted.overlay.whiteout xattr.
func isUpperWhiteout(fd int, n string, st *unix.Stat_t) bool {
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFCHR:
		return st.Rdev == 0
	case unix.S_IFREG:
		return st.Size == 0 && xattrIs(fmt.Sprintf("/proc/self/fd/%d/%s", fd, n), "trusted.overlay.whiteout", "")
	}
	return false
}

// xattrIs reports whether p (not followed) has xattr k with value v ("" for
// any value).
func xattrIs(p, k, v string) bool {
	buf := make([]byte, 64)
	n, err := unix.Lgetxattr(p, k, buf)
	if err != nil {
		return false
	}
	return v == "" || string(buf[:n]) == v
}

// tree compares the tree directory fd (at rel) with the lower stack and
// returns the changes below it in layer order. lowerDir says whether the
// lower stack has a directory at rel.
func (w *walker) tree(fd int, rel string, lowerDir bool) ([]event, error) {
	names, err := readDirNames(fd)
	if err != nil {
		return nil, fmt.Errorf("rootfs: %s: %w", rel, err)
	}
	var lower map[string]unix.Stat_t
	if lowerDir {
		if lower, err = w.low.list(rel); err != nil {
			return nil, err
		}
	}
	var dirSt unix.Stat_t
	unix.Fstat(fd, &dirSt)
	all := slices.Clone(names)
	for n := range lower {
		if !slices.Contains(names, n) {
			all = append(all, n)
		}
	}
	slices.Sort(all)
	var out []event
	for _, n := range all {
		if err := w.ctx.Err(); err != nil {
			return nil, err
		}
		p := join(rel, n)
		lst, inLower := lower[n]
		var st unix.Stat_t
		if err := unix.Fstatat(fd, n, &st, unix.AT_SYMLINK_NOFOLLOW); errors.Is(err, unix.ENOENT) {
			if inLower {
				out = append(out, event{kind: Deleted, rel: p, st: dirSt})
			}
			continue
		} else if err != nil {
			return nil, fmt.Errorf("rootfs: %s: %w", p, err)
		}
		if st.Mode&unix.S_IFMT == unix.S_IFSOCK {
			continue
		}
		kind, changed := Added, true
		if inLower {
			kind = Changed
			changed = !w.same(fd, n, &st, p, &lst)
		}
		if st.Mode&unix.S_IFMT != unix.S_IFDIR {
			if changed {
				out = append(out, event{kind: kind, rel: p, st: st})
			}
			continue
		}
		sub, err := unix.Openat(fd, n, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if err != nil {
			return nil, fmt.Errorf("rootfs: %s: %w", p, err)
		}
		below, err := w.tree(sub, p, inLower && lst.Mode&unix.S_IFMT == unix.S_IFDIR)
		unix.Close(sub)
		if err != nil {
			return nil, err
		}
		if changed || len(below) > 0 {
			out = append(out, event{kind: kind, rel: p, st: st})
			out = append(out, below...)
		}
	}
	return out, nil
}

// same reports whether the tree entry n (in fd, at p) has the metadata of
// its lower entry: type, mode, owner, mtime, size, link count, device,
// link target and xattrs (the overlayfs ones aside).
func (w *walker) same(fd int, n string, st *unix.Stat_t, p string, lst *unix.Stat_t) bool {
	if st.Mode != lst.Mode || st.Uid != lst.Uid || st.Gid != lst.Gid || st.Rdev != lst.Rdev {
		return false
	}
	if !sameTime(st.Mtim, lst.Mtim) {
		return false
	}
	typ := st.Mode & unix.S_IFMT
	if typ == unix.S_IFREG && st.Size != lst.Size {
		return false
	}
	// A new or removed hard link changes every name of the file: written
	// again, they keep linking to each other.
	if typ != unix.S_IFDIR && st.Nlink != lst.Nlink {
		return false
	}
	lpath, ok := w.low.path(p)
	if !ok {
		return false
	}
	here := fmt.Sprintf("/proc/self/fd/%d/%s", fd, n)
	if typ == unix.S_IFLNK {
		a, b := make([]byte, unix.PathMax), make([]byte, unix.PathMax)
		na, err1 := unix.Readlinkat(fd, n, a)
		nb, err2 := unix.Readlink(lpath, b)
		if err1 != nil || err2 != nil || !bytes.Equal(a[:na], b[:nb]) {
			return false
		}
	}
	xa, err1 := readXattrs(here)
	xb, err2 := readXattrs(lpath)
	if err1 != nil || err2 != nil {
		return false
	}
	for k := range xa {
		if strings.HasPrefix(k, "trusted.overlay.") {
			delete(xa, k)
		}
	}
	for k := range xb {
		if strings.HasPrefix(k, "trusted.overlay.") {
			delete(xb, k)
		}
	}
	if len(xa) != len(xb) {
		return false
	}
	for k, v := range xa {
		if !bytes.Equal(v, xb[k]) {
			return false
		}
	}
	return true
}

// sameTime compares modification times as Docker does: nanoseconds only
// when both have them (some file systems keep seconds only).
func sameTime(a, b unix.Timespec) bool {
	if a.Sec != b.Sec {
		return false
	}
	return a.Nsec == 0 || b.Nsec == 0 || a.Nsec == b.Nsec
}
