package build_test

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// fsEntry is what the tree comparison looks at for a path: type, mode
// (with setuid, setgid and sticky bits), owner, size and content hash of a
// file, symlink target, extended attributes, and for a file with several
// links the first of its names (so hard link groups compare). Times are
// left out (see the comparison's notes).
type fsEntry struct {
	Type   string
	Mode   os.FileMode
	UID    int
	GID    int
	Size   int64
	Hash   string
	Link   string
	Xattrs map[string]string
	LinkTo string // first name (sorted) of the hard link group, "" if alone
}

// readTree walks dir without following symlinks.
func readTree(t *testing.T, dir string) map[string]fsEntry {
	t.Helper()
	out := map[string]fsEntry{}
	groups := map[uint64][]string{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		if rel == "." {
			return nil
		}
		var st unix.Stat_t
		if err := unix.Lstat(p, &st); err != nil {
			return err
		}
		e := fsEntry{Mode: os.FileMode(st.Mode & 0o7777), UID: int(st.Uid), GID: int(st.Gid), Xattrs: xattrs(t, p)}
		switch st.Mode & syscall.S_IFMT {
		case syscall.S_IFDIR:
			e.Type = "dir"
		case syscall.S_IFREG:
			e.Type, e.Size, e.Hash = "file", st.Size, fileHash(t, p)
			if st.Nlink > 1 {
				groups[st.Ino] = append(groups[st.Ino], rel)
			}
		case syscall.S_IFLNK:
			e.Type, e.Mode = "symlink", 0
			e.Link, _ = os.Readlink(p)
		case syscall.S_IFIFO:
			e.Type = "fifo"
		case syscall.S_IFCHR, syscall.S_IFBLK:
			e.Type = "device"
		default:
			e.Type = "other"
		}
		out[rel] = e
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, names := range groups {
		if len(names) < 2 {
			continue
		}
		sort.Strings(names)
		for _, n := range names {
			e := out[n]
			e.LinkTo = names[0]
			out[n] = e
		}
	}
	return out
}

func fileHash(t *testing.T, p string) string {
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(h.Sum(nil))[:16]
}

func xattrs(t *testing.T, p string) map[string]string {
	sz, err := unix.Llistxattr(p, nil)
	if err != nil || sz == 0 {
		return nil
	}
	buf := make([]byte, sz)
	sz, err = unix.Llistxattr(p, buf)
	if err != nil {
		return nil
	}
	out := map[string]string{}
	for _, k := range strings.Split(strings.TrimRight(string(buf[:sz]), "\x00"), "\x00") {
		if k == "" || k == "security.selinux" {
			continue
		}
		v := make([]byte, 4096)
		n, err := unix.Lgetxattr(p, k, v)
		if errors.Is(err, unix.ENODATA) {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		out[k] = string(v[:n])
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

// copyTree copies a testdata directory (symlinks as symlinks).
func copyTree(t testing.TB, src, dst string) {
	t.Helper()
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		target := filepath.Join(dst, rel)
		fi, err := os.Lstat(p)
		if err != nil {
			return err
		}
		switch {
		case fi.IsDir():
			return os.MkdirAll(target, 0o755)
		case fi.Mode()&os.ModeSymlink != 0:
			l, err := os.Readlink(p)
			if err != nil {
				return err
			}
			return os.Symlink(l, target)
		default:
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			return os.WriteFile(target, b, 0o644)
		}
	})
	if err != nil {
		t.Fatal(err)
	}
}
