package build

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"os"
	"path"
	"slices"
	"strconv"
	"strings"

	"github.com/moby/patternmatcher"
	"golang.org/x/sys/unix"

	"github.com/lading-dev/lading/internal/errdefs"
)

// copyOp is one COPY or ADD, resolved: what to read and where it goes.
type copyOp struct {
	src      *Context
	patterns []string    // cleaned sources, relative to src's root (globs allowed)
	inline   []inlineSrc // heredoc sources (COPY <<EOF)
	dest     string      // absolute destination in the image, cleaned
	destDir  bool        // the destination names a directory ("/" at its end, several sources)
	chown    *owner      // nil: keep the source's owner (0:0 for the build context)
	chmod    *int64      // nil: keep the source's mode
	add      bool        // ADD: unpack local archives
	excludes *patternmatcher.PatternMatcher
}

type inlineSrc struct {
	name string
	data string
}

type owner struct{ uid, gid int }

// parseChmod parses --chmod: an octal mode up to 07777, as BuildKit.
func parseChmod(s string) (*int64, error) {
	if s == "" {
		return nil, nil
	}
	m, err := strconv.ParseUint(s, 8, 32)
	if err != nil || m > 0o7777 {
		return nil, errdefs.InvalidArgument(fmt.Errorf("invalid chmod parameter: '%v'. it should be octal string and between 0 and 07777", s))
	}
	v := int64(m)
	return &v, nil
}

// match expands the op's source patterns; a source without glob characters
// must exist, a glob may match nothing (as BuildKit allows).
func (op *copyOp) match() ([]string, error) {
	var out []string
	for _, p := range op.patterns {
		m, err := op.src.glob(p)
		if err != nil {
			return nil, err
		}
		out = append(out, m...)
	}
	return out, nil
}

// copyInto writes the layer of op to w. t is the stage's tree (destination
// symlinks are followed through it, missing parents created); with --link
// it is an empty tree, so the layer stands on its own.
func copyInto(ctx context.Context, w *layerWriter, op *copyOp, sources []string) error {
	owner := func(uid, gid int) (int, int) {
		if op.chown != nil {
			return op.chown.uid, op.chown.gid
		}
		if !op.src.owners {
			return 0, 0
		}
		return uid, gid
	}
	cuid, cgid := owner(0, 0)
	many := len(sources)+len(op.inline) > 1
	destDir := op.destDir || many
	dest, n, err := w.resolve(op.dest)
	if err != nil {
		return err
	}
	if n != nil && n.dir {
		destDir = true
	}
	c := &copier{ctx: ctx, w: w, op: op, owner: owner}
	if many {
		last, err := lastWriters(ctx, w, op, sources, dest, destDir, owner, cuid, cgid)
		if err != nil {
			return err
		}
		w.skip = func(p string) bool { return last[p] > c.idx }
		defer func() { w.skip = nil }()
	}
	for i, s := range sources {
		if err := ctx.Err(); err != nil {
			return err
		}
		c.idx = i
		clear(w.links) // hard links are kept within one source, as buildah and BuildKit copy each on its own
		if err := c.source(s, dest, destDir, cuid, cgid); err != nil {
			return err
		}
	}
	c.idx = len(sources)
	for _, in := range op.inline {
		target := dest
		if destDir {
			if err := w.mkdirAll(dest, cuid, cgid); err != nil {
				return err
			}
			target = path.Join(dest, path.Base("/"+in.name))
		} else if err := w.mkdirAll(path.Dir(dest), cuid, cgid); err != nil {
			return err
		}
		mode := int64(0o644)
		if op.chmod != nil {
			mode = *op.chmod
		}
		h := &tar.Header{Typeflag: tar.TypeReg, Mode: mode, Uid: cuid, Gid: cgid, Size: int64(len(in.data)), ModTime: w.now}
		if err := w.write(h, target, strings.NewReader(in.data)); err != nil {
			return err
		}
	}
	return nil
}

// resolve follows dest through the tree; without one it is taken as it is.
func (w *layerWriter) resolve(p string) (string, *node, error) {
	if w.tree == nil {
		return path.Clean("/" + p), nil, nil
	}
	return w.tree.resolve(p, true)
}

type copier struct {
	ctx   context.Context
	w     *layerWriter
	op    *copyOp
	owner func(uid, gid int) (int, int)
	idx   int // the source being copied
}

// lastWriters walks the sources without writing and returns, for each
// destination path, the index of the last source that writes it (inline
// sources come after every path source).
func lastWriters(ctx context.Context, w *layerWriter, op *copyOp, sources []string, dest string, destDir bool, owner func(int, int) (int, int), cuid, cgid int) (map[string]int, error) {
	last := map[string]int{}
	dry := *w
	dry.tw = nil
	dry.links = map[[2]uint64]string{}
	c := &copier{ctx: ctx, w: &dry, op: op, owner: owner}
	dry.dry = func(p string) { last[p] = c.idx }
	for i, s := range sources {
		c.idx = i
		clear(dry.links)
		if err := c.source(s, dest, destDir, cuid, cgid); err != nil {
			return nil, err
		}
	}
	for _, in := range op.inline {
		t := dest
		if destDir {
			t = path.Join(dest, path.Base("/"+in.name))
		}
		last[path.Clean(t)] = len(sources)
	}
	return last, nil
}

// source copies one matched source path.
func (c *copier) source(s, dest string, destDir bool, cuid, cgid int) error {
	root := c.op.src.root
	fi, err := root.Stat(s) // the named source is followed, inside the root
	if err != nil {
		return c.op.src.notFound(s, err)
	}
	if fi.IsDir() {
		if err := c.w.mkdirAll(dest, cuid, cgid); err != nil {
			return err
		}
		d, err := root.Open(s)
		if err != nil {
			return c.op.src.notFound(s, err)
		}
		return c.dir(d, s, dest, "")
	}
	if c.op.add && fi.Mode().IsRegular() {
		ok, err := c.unpackIfArchive(s, dest, cuid, cgid)
		if ok || err != nil {
			return err
		}
	}
	target := dest
	if destDir {
		if err := c.w.mkdirAll(dest, cuid, cgid); err != nil {
			return err
		}
		target = path.Join(dest, path.Base("/"+s))
	} else if err := c.w.mkdirAll(path.Dir(dest), cuid, cgid); err != nil {
		return err
	}
	dirName, base := path.Split(s)
	if dirName == "" {
		dirName = "."
	}
	// Open the source's directory and take the (already followed) file by
	// its final name: if the name is a symlink, follow it inside the root.
	real := s
	if fi2, err := root.Lstat(s); err == nil && fi2.Mode()&os.ModeSymlink != 0 {
		if real, err = c.followInRoot(s); err != nil {
			return err
		}
		dirName, base = path.Split(real)
		if dirName == "" {
			dirName = "."
		}
	}
	d, err := root.Open(dirName)
	if err != nil {
		return c.op.src.notFound(s, err)
	}
	defer d.Close()
	_, err = c.entry(d, path.Clean(dirName), base, target, "")
	return err
}

// followInRoot resolves the symlink chain of the context path s inside the
// context (a link out of it is an error).
func (c *copier) followInRoot(s string) (string, error) {
	root := c.op.src.root
	cur := s
	for i := 0; i < maxLinks; i++ {
		fi, err := root.Lstat(cur)
		if err != nil {
			return "", c.op.src.notFound(s, err)
		}
		if fi.Mode()&os.ModeSymlink == 0 {
			return cur, nil
		}
		t, err := root.Readlink(cur)
		if err != nil {
			return "", err
		}
		if strings.HasPrefix(t, "/") {
			return "", errdefs.InvalidArgument(fmt.Errorf("%q: symlink to %s points outside the build context", s, t))
		}
		next := path.Join(path.Dir(cur), t)
		if next == ".." || strings.HasPrefix(next, "../") {
			return "", errdefs.InvalidArgument(fmt.Errorf("%q: symlink to %s points outside the build context", s, t))
		}
		cur = next
	}
	return "", errdefs.InvalidArgument(fmt.Errorf("%q: too many levels of symbolic links", s))
}

// dir copies what the open directory d (the context path src) holds into
// the image directory dest (resolved). rel is the path below the COPY
// source, for --exclude.
func (c *copier) dir(d *os.File, src, dest, rel string) error {
	defer d.Close()
	names, err := d.Readdirnames(-1)
	if err != nil {
		return fmt.Errorf("%s: %w", src, err)
	}
	slices.Sort(names)
	for _, n := range names {
		if err := c.ctx.Err(); err != nil {
			return err
		}
		isDir, err := c.entry(d, src, n, path.Join(dest, n), path.Join(rel, n))
		if err != nil {
			return err
		}
		if !isDir.dir {
			continue
		}
		fd, err := unix.Openat(int(d.Fd()), n, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if err != nil {
			return fmt.Errorf("%s: %w", path.Join(src, n), err)
		}
		if err := c.dir(os.NewFile(uintptr(fd), n), path.Join(src, n), isDir.dest, path.Join(rel, n)); err != nil {
			return err
		}
	}
	return nil
}

type entryResult struct {
	dir  bool   // descend
	dest string // where its contents go (resolved)
}

// entry writes the entry name of the open directory d as target. rel is
// its path below the COPY source ("" for the named source itself).
func (c *copier) entry(d *os.File, dirPath, name, target, rel string) (entryResult, error) {
	ctxPath := path.Join(dirPath, name)
	var st unix.Stat_t
	if err := unix.Fstatat(int(d.Fd()), name, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return entryResult{}, fmt.Errorf("%s: %w", ctxPath, err)
	}
	isDir := st.Mode&unix.S_IFMT == unix.S_IFDIR
	if rel != "" {
		if c.op.src.ignore != nil {
			skip, descend, err := c.op.src.ignored(ctxPath, isDir)
			if err != nil {
				return entryResult{}, err
			}
			if skip {
				if isDir && descend {
					return entryResult{dir: true, dest: target}, c.w.mkdirAll(target, 0, 0)
				}
				return entryResult{}, nil
			}
		}
		if c.op.excludes != nil {
			if m, _ := c.op.excludes.MatchesOrParentMatches(rel); m {
				return entryResult{}, nil
			}
		}
	}
	h, err := statHeader(&st)
	if errors.Is(err, errSocket) {
		return entryResult{}, nil // sockets are skipped, as Docker does
	}
	if err != nil {
		return entryResult{}, err
	}
	h.Uid, h.Gid = c.owner(h.Uid, h.Gid)
	if c.op.chmod != nil && h.Typeflag != tar.TypeSymlink {
		h.Mode = *c.op.chmod
	}
	if h.Typeflag == tar.TypeSymlink {
		buf := make([]byte, unix.PathMax)
		m, err := unix.Readlinkat(int(d.Fd()), name, buf)
		if err != nil {
			return entryResult{}, fmt.Errorf("%s: %w", ctxPath, err)
		}
		h.Linkname = string(buf[:m])
	}
	var file *os.File
	if h.Typeflag == tar.TypeReg {
		// Open the file first: its xattrs are read through the descriptor,
		// and it must still be the file that was stat'ed.
		fd, err := unix.Openat(int(d.Fd()), name, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC|unix.O_NONBLOCK, 0)
		if err != nil {
			return entryResult{}, fmt.Errorf("%s: %w", ctxPath, err)
		}
		file = os.NewFile(uintptr(fd), name)
		defer file.Close()
		var fst unix.Stat_t
		if err := unix.Fstat(fd, &fst); err != nil || fst.Ino != st.Ino || fst.Mode&unix.S_IFMT != unix.S_IFREG {
			return entryResult{}, fmt.Errorf("%s: replaced while it was read", ctxPath)
		}
		if err := readXattrsFd(fd, h); err != nil {
			return entryResult{}, fmt.Errorf("%s: %w", ctxPath, err)
		}
	} else if err := readXattrs(int(d.Fd()), name, h); err != nil {
		return entryResult{}, fmt.Errorf("%s: %w", ctxPath, err)
	}
	if isDir {
		real, n, err := c.w.resolve(target)
		if err != nil {
			return entryResult{}, err
		}
		if n != nil && !n.dir {
			n = nil
		}
		if real != path.Clean(target) && n != nil {
			return entryResult{dir: true, dest: real}, nil // a symlink to a directory in the image: go through it
		}
		return entryResult{dir: true, dest: real}, c.w.write(h, real, nil)
	}
	if h.Typeflag == tar.TypeReg && st.Nlink > 1 {
		key := [2]uint64{uint64(st.Dev), st.Ino}
		if first, ok := c.w.links[key]; ok {
			lh := &tar.Header{Typeflag: tar.TypeLink, Linkname: strings.TrimPrefix(first, "/"), Uid: h.Uid, Gid: h.Gid, Mode: h.Mode, ModTime: h.ModTime}
			return entryResult{}, c.w.write(lh, target, nil)
		}
		if c.w.skip == nil || !c.w.skip(target) {
			c.w.links[key] = target
		}
	}
	if h.Typeflag != tar.TypeReg {
		return entryResult{}, c.w.write(h, target, nil)
	}
	return entryResult{}, c.w.write(h, target, file)
}
