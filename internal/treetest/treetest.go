// Package treetest describes directory trees for tests that compare two
// root file systems: every entry's type, mode (with setuid, setgid and
// sticky bits), owner, size and content hash, symlink target, device
// numbers, extended attributes, modification time (seconds) and which
// entries are hard links of each other. It reads with plain lstat, never
// following symlinks.
package treetest

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/sys/unix"
)

// Entry describes one path of a tree.
type Entry struct {
	Type   string // dir, file, symlink, fifo, char, block, socket
	Mode   os.FileMode
	UID    uint32
	GID    uint32
	Size   int64
	SHA256 string
	Link   string // symlink target
	Dev    string // major,minor of a device
	Xattrs map[string]string
	MTime  int64  // seconds
	HardTo string // for the second and later names of a file: the first name (sorted order)
}

// Option changes what Snapshot records.
type Option func(*opts)

type opts struct {
	noDirTimes bool
	noTimes    bool
	skip       []string
	xattr      func(string) bool
}

// NoDirTimes leaves directory modification times out (they change when a
// directory is filled, so they differ between ways of making a tree).
func NoDirTimes() Option { return func(o *opts) { o.noDirTimes = true } }

// NoTimes leaves every modification time out.
func NoTimes() Option { return func(o *opts) { o.noTimes = true } }

// Skip leaves out the paths (relative, such as "dev") and everything below
// them.
func Skip(paths ...string) Option { return func(o *opts) { o.skip = append(o.skip, paths...) } }

// Xattrs keeps only the extended attributes keep accepts (default:
// user.*, security.capability and trusted.* other than trusted.overlay.*).
func Xattrs(keep func(string) bool) Option { return func(o *opts) { o.xattr = keep } }

func defaultXattr(k string) bool {
	switch {
	case strings.HasPrefix(k, "trusted.overlay."):
		return false
	case strings.HasPrefix(k, "user."), k == "security.capability", strings.HasPrefix(k, "trusted."):
		return true
	}
	return false
}

// Snapshot describes the tree at dir (dir itself is ".").
func Snapshot(t testing.TB, dir string, options ...Option) map[string]Entry {
	t.Helper()
	o := opts{xattr: defaultXattr}
	for _, f := range options {
		f(&o)
	}
	out := map[string]Entry{}
	first := map[[2]uint64]string{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		rel = filepath.ToSlash(rel)
		for _, s := range o.skip {
			if rel == s || strings.HasPrefix(rel, s+"/") {
				if d.IsDir() {
					return filepath.SkipDir
				}
				return nil
			}
		}
		e, key, err := describe(p, o)
		if err != nil {
			return err
		}
		if e.Type == "dir" && o.noDirTimes {
			e.MTime = 0
		}
		if o.noTimes {
			e.MTime = 0
		}
		if key != ([2]uint64{}) {
			if f, ok := first[key]; ok {
				e.HardTo = f
			} else {
				first[key] = rel
			}
		}
		out[rel] = e
		return nil
	})
	if err != nil {
		t.Fatalf("snapshot %s: %v", dir, err)
	}
	return out
}

func describe(p string, o opts) (Entry, [2]uint64, error) {
	var st unix.Stat_t
	if err := unix.Lstat(p, &st); err != nil {
		return Entry{}, [2]uint64{}, err
	}
	e := Entry{
		Mode:  os.FileMode(st.Mode & 0o7777),
		UID:   st.Uid,
		GID:   st.Gid,
		MTime: st.Mtim.Sec,
	}
	var key [2]uint64
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFDIR:
		e.Type = "dir"
	case unix.S_IFREG:
		e.Type, e.Size = "file", st.Size
		f, err := os.Open(p)
		if err != nil {
			return e, key, err
		}
		h := sha256.New()
		_, err = io.Copy(h, f)
		f.Close()
		if err != nil {
			return e, key, err
		}
		e.SHA256 = hex.EncodeToString(h.Sum(nil))[:16]
	case unix.S_IFLNK:
		e.Type = "symlink"
		l, err := os.Readlink(p)
		if err != nil {
			return e, key, err
		}
		e.Link = l
		e.Mode = 0 // symlink modes mean nothing on Linux
	case unix.S_IFIFO:
		e.Type = "fifo"
	case unix.S_IFCHR:
		e.Type, e.Dev = "char", fmt.Sprintf("%d,%d", unix.Major(uint64(st.Rdev)), unix.Minor(uint64(st.Rdev)))
	case unix.S_IFBLK:
		e.Type, e.Dev = "block", fmt.Sprintf("%d,%d", unix.Major(uint64(st.Rdev)), unix.Minor(uint64(st.Rdev)))
	default:
		e.Type = "socket"
	}
	if e.Type != "dir" && st.Nlink > 1 {
		key = [2]uint64{uint64(st.Dev), uint64(st.Ino)}
	}
	xs, err := xattrs(p, o.xattr)
	if err != nil {
		return e, key, err
	}
	e.Xattrs = xs
	return e, key, nil
}

func xattrs(p string, keep func(string) bool) (map[string]string, error) {
	sz, err := unix.Llistxattr(p, nil)
	if err != nil || sz == 0 {
		return nil, nil
	}
	buf := make([]byte, sz)
	sz, err = unix.Llistxattr(p, buf)
	if err != nil {
		return nil, nil
	}
	var out map[string]string
	for _, k := range strings.Split(string(buf[:sz]), "\x00") {
		if k == "" || !keep(k) {
			continue
		}
		v := make([]byte, 4096)
		n, err := unix.Lgetxattr(p, k, v)
		if err != nil {
			return nil, fmt.Errorf("%s: xattr %s: %w", p, k, err)
		}
		if out == nil {
			out = map[string]string{}
		}
		out[k] = string(v[:n])
	}
	return out, nil
}

// Equal fails t with the differences between two snapshots.
func Equal(t testing.TB, want, got map[string]Entry, what string) {
	t.Helper()
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("%s (-want +got):\n%s", what, diff)
	}
}

// Paths returns the sorted paths of a snapshot.
func Paths(s map[string]Entry) []string {
	var out []string
	for p := range s {
		out = append(out, p)
	}
	slices.Sort(out)
	return out
}
