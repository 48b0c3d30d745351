package build

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"path"
	"strings"

	"github.com/lading-dev/lading/internal/errdefs"
	"github.com/lading-dev/lading/internal/layer"
)

// tree is what a stage's file system holds where COPY, ADD and WORKDIR need
// to know: its directories (with mode and owner) and symlinks, as the
// overlay of the stage's layers shows them. Regular files are not kept, so
// memory grows with the number of directories and symlinks only; a file
// entry removes whatever the tree had at its path. It also keeps
// /etc/passwd and /etc/group, for --chown and USER names.
type tree struct {
	root   *node
	passwd []byte
	group  []byte
}

type node struct {
	dir    bool
	mode   int64 // permission and special bits
	uid    int
	gid    int
	target string // symlink target; empty for a directory
	kids   map[string]*node
}

const maxEtcFile = 4 << 20

func newTree() *tree {
	return &tree{root: &node{dir: true, mode: 0o755, kids: map[string]*node{}}}
}

func splitPath(p string) []string {
	p = strings.Trim(path.Clean("/"+p), "/")
	if p == "" {
		return nil
	}
	return strings.Split(p, "/")
}

// lookup returns the node at p without following symlinks.
func (t *tree) lookup(p string) *node {
	n := t.root
	for _, c := range splitPath(p) {
		if !n.dir {
			return nil
		}
		n = n.kids[c]
		if n == nil {
			return nil
		}
	}
	return n
}

// parentOf returns the directory node that holds p, creating missing
// directories (0755 root) on the way when create is set.
func (t *tree) parentOf(p string, create bool) (*node, string) {
	cs := splitPath(p)
	if len(cs) == 0 {
		return nil, ""
	}
	n := t.root
	for _, c := range cs[:len(cs)-1] {
		k := n.kids[c]
		if k == nil || !k.dir {
			if !create {
				return nil, ""
			}
			k = &node{dir: true, mode: 0o755, kids: map[string]*node{}}
			n.kids[c] = k
		}
		n = k
	}
	return n, cs[len(cs)-1]
}

// setDir records a directory at p (keeping what it holds when it was one).
func (t *tree) setDir(p string, mode int64, uid, gid int) {
	if len(splitPath(p)) == 0 {
		t.root.mode, t.root.uid, t.root.gid = mode, uid, gid
		return
	}
	parent, name := t.parentOf(p, true)
	if k := parent.kids[name]; k != nil && k.dir {
		k.mode, k.uid, k.gid = mode, uid, gid
		return
	}
	parent.kids[name] = &node{dir: true, mode: mode, uid: uid, gid: gid, kids: map[string]*node{}}
}

// setLink records a symlink at p.
func (t *tree) setLink(p, target string) {
	parent, name := t.parentOf(p, true)
	if parent != nil {
		parent.kids[name] = &node{target: target}
	}
}

// remove forgets p and everything below it.
func (t *tree) remove(p string) {
	parent, name := t.parentOf(p, false)
	if parent != nil {
		delete(parent.kids, name)
	}
}

// maxLinks bounds symlink resolution, as the kernel's ELOOP.
const maxLinks = 40

// resolve follows p through the tree as the kernel would inside a chroot
// (".." and absolute targets stay at the root) and returns the path it
// reaches and its node (nil when nothing is there). With followLast unset
// a symlink as the last component is not followed.
func (t *tree) resolve(p string, followLast bool) (string, *node, error) {
	links := 0
	todo := splitPath(p)
	var done []string
	n := t.root
	for len(todo) > 0 {
		c := todo[0]
		todo = todo[1:]
		if c == ".." {
			if len(done) > 0 {
				done = done[:len(done)-1]
			}
			n = t.lookup(strings.Join(done, "/"))
			continue
		}
		var k *node
		if n != nil && n.dir {
			k = n.kids[c]
		}
		if k != nil && !k.dir && k.target != "" && (len(todo) > 0 || followLast) {
			links++
			if links > maxLinks {
				return "", nil, errdefs.InvalidArgument(fmt.Errorf("%s: too many levels of symbolic links", p))
			}
			rest := splitPathRaw(k.target)
			if strings.HasPrefix(k.target, "/") {
				done = nil
			}
			todo = append(rest, todo...)
			n = t.lookup(strings.Join(done, "/"))
			continue
		}
		done = append(done, c)
		n = k
	}
	return "/" + strings.Join(done, "/"), n, nil
}

// splitPathRaw splits a symlink target into components, keeping "..".
func splitPathRaw(p string) []string {
	var out []string
	for _, c := range strings.Split(p, "/") {
		if c != "" && c != "." {
			out = append(out, c)
		}
	}
	return out
}

// apply adds a layer (an uncompressed tar stream) on top of the tree with
// overlay rules: the layer's whiteouts and opaque markers remove what the
// layers below had (never what this layer adds), then its entries are
// added.
func (t *tree) apply(ctx context.Context, r io.Reader, name string) error {
	type entry struct {
		path   string
		kind   layer.Kind
		mode   int64
		uid    int
		gid    int
		target string
	}
	var entries []entry
	var whiteouts, opaques []string
	err := layer.Walk(ctx, r, func(e *layer.Entry) error {
		switch e.Kind {
		case layer.KindWhiteout:
			whiteouts = append(whiteouts, e.Name)
			return nil
		case layer.KindOpaque:
			opaques = append(opaques, e.Name)
			return nil
		}
		h := e.Header
		en := entry{path: e.Name, kind: e.Kind, mode: h.Mode & 0o7777, uid: h.Uid, gid: h.Gid}
		if h.Typeflag == tar.TypeSymlink {
			en.target = h.Linkname
		}
		entries = append(entries, en)
		if h.Typeflag == tar.TypeReg && (e.Name == "etc/passwd" || e.Name == "etc/group") && h.Size <= maxEtcFile {
			b, err := io.ReadAll(e)
			if err != nil {
				return err
			}
			if e.Name == "etc/passwd" {
				t.passwd = b
			} else {
				t.group = b
			}
		}
		return nil
	}, layer.WithName(name), layer.AllowDevices())
	if err != nil {
		return err
	}
	for _, p := range opaques {
		if n := t.lookup(p); n != nil && n.dir {
			n.kids = map[string]*node{}
		}
	}
	for _, p := range whiteouts {
		t.remove(p)
	}
	for _, e := range entries {
		switch {
		case e.kind == layer.KindDir:
			t.setDir(e.path, e.mode, e.uid, e.gid)
		case e.target != "":
			t.setLink(e.path, e.target)
		default:
			t.remove(e.path)
		}
	}
	return nil
}

// lookupUser resolves a --chown or USER value ("user[:group]", names or
// numbers) with the stage's /etc/passwd and /etc/group. A user without a
// group gets the user's primary group when named, else the same number.
func (t *tree) lookupUser(spec string) (uid, gid int, err error) {
	u, g, hasGroup := strings.Cut(spec, ":")
	uid, primary, err := lookupID(t.passwd, u, "user", "/etc/passwd", 2)
	if err != nil {
		return 0, 0, err
	}
	if !hasGroup {
		if primary >= 0 {
			return uid, primary, nil
		}
		return uid, uid, nil
	}
	gid, _, err = lookupID(t.group, g, "group", "/etc/group", -1)
	return uid, gid, err
}

// lookupID returns the number of a name in a passwd or group file (or the
// number itself) and, for passwd, the primary group (field gidField).
func lookupID(file []byte, name, what, fname string, gidField int) (int, int, error) {
	if id, ok := parseID(name); ok {
		primary := -1
		return id, primary, nil
	}
	for _, line := range strings.Split(string(file), "\n") {
		f := strings.Split(line, ":")
		if len(f) < 3 || f[0] != name {
			continue
		}
		id, ok := parseID(f[2])
		if !ok {
			break
		}
		primary := -1
		if gidField > 0 && len(f) > 3 {
			if g, ok := parseID(f[3]); ok {
				primary = g
			}
		}
		return id, primary, nil
	}
	return 0, 0, errdefs.InvalidArgument(fmt.Errorf("unable to find %s %s: no matching entries in %s", what, name, fname))
}

func parseID(s string) (int, bool) {
	if s == "" || len(s) > 10 {
		return 0, false
	}
	n := 0
	for _, r := range s {
		if r < '0' || r > '9' {
			return 0, false
		}
		n = n*10 + int(r-'0')
	}
	if n > 1<<31-1 {
		return 0, false
	}
	return n, true
}

var errNotDir = errors.New("not a directory")
