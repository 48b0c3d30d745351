// Package overlaytest builds the root filesystem of a layer stack the way a
// container runtime does, with the kernel's overlayfs, for tests that take
// the kernel as the truth about overlay rules: each layer is unpacked by
// GNU tar into its own directory, its whiteouts are turned into overlayfs
// form (".wh.NAME" into a 0/0 character device NAME, ".wh..wh..opq" into
// the trusted.overlay.opaque xattr of its directory), and the directories
// are mounted as the lower directories of one overlay.
//
// Two steps make each layer directory what a runtime makes of it when it
// applies the layer on top of the mounted layers below (copy-up): a
// directory the layer's tar only implies takes the mode and owner of that
// directory below (unless the layer's own whiteouts hide it), and a hard
// link to a file of a lower layer gets that file copied into the layer
// first (cp -a --parents from the merged layers below). Stacks where
// runtimes themselves disagree, because they apply a layer in archive order
// and the OCI rules do not, or where copy-up would break a lower hard-link
// group (overlayfs without index=on), are refused with ErrNotApplicable.
//
// Mounting needs root; [Require] skips a test otherwise (and fails it under
// LADING_CI=1, see internal/testenv). internal/layer and internal/analyze
// compare their overlay merges with it.
package overlaytest

import (
	"archive/tar"
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/lading-dev/lading/internal/testenv"
)

var probe struct {
	once sync.Once
	err  error
}

// Require skips t unless this process can mount overlayfs and has GNU tar.
func Require(t testing.TB) {
	t.Helper()
	testenv.Root(t, "to mount overlayfs, make whiteout devices and set trusted.* xattrs")
	testenv.Tool(t, "tar", "GNU tar")
	probe.once.Do(func() {
		base, err := os.MkdirTemp("", "lading-ovl-probe-")
		if err != nil {
			probe.err = err
			return
		}
		defer os.RemoveAll(base)
		for _, d := range []string{"a", "b", "m"} {
			os.Mkdir(filepath.Join(base, d), 0o755)
		}
		opt := "lowerdir=" + filepath.Join(base, "a") + ":" + filepath.Join(base, "b")
		if err := unix.Mount("overlay", filepath.Join(base, "m"), "overlay", unix.MS_RDONLY, opt); err != nil {
			probe.err = err
			return
		}
		unix.Unmount(filepath.Join(base, "m"), 0)
	})
	if probe.err != nil {
		testenv.Skip(t, "mount -t overlay does not work here: %v", probe.err)
	}
}

// Stack is a stack of unpacked layers.
type Stack struct {
	t    testing.TB
	base string
	dirs []string // bottom first
	n    int
}

// New returns an empty stack whose files are removed when t ends.
func New(t testing.TB) *Stack {
	Require(t)
	base, err := os.MkdirTemp("", "lading-overlay-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(base) })
	return &Stack{t: t, base: base}
}

func (s *Stack) mkdir(prefix string) string {
	s.n++
	d := filepath.Join(s.base, fmt.Sprintf("%s%d", prefix, s.n))
	if err := os.Mkdir(d, 0o755); err != nil {
		s.t.Fatal(err)
	}
	return d
}

// Mount mounts the stack and returns the merged directory. With writable,
// the overlay has an upper directory, so that tools run on it can write
// (lock files); the layers are never changed. It is unmounted when the
// test ends, or by calling the returned function.
func (s *Stack) Mount(writable bool) (merged string, unmount func()) {
	s.t.Helper()
	lower := slices.Clone(s.dirs)
	slices.Reverse(lower)
	lower = append(lower, s.mkdir("empty")) // overlayfs wants two lower dirs at least
	m := s.mkdir("merged")
	opts := "lowerdir=" + strings.Join(lower, ":")
	flags := uintptr(unix.MS_RDONLY)
	if writable {
		opts += ",upperdir=" + s.mkdir("upper") + ",workdir=" + s.mkdir("work")
		flags = 0
	}
	if err := unix.Mount("overlay", m, "overlay", flags, opts); err != nil {
		s.t.Fatalf("mount overlay: %v", err)
	}
	done := false
	unmount = func() {
		if !done {
			done = true
			if err := unix.Unmount(m, unix.MNT_DETACH); err != nil {
				s.t.Errorf("unmount %s: %v", m, err)
			}
		}
	}
	s.t.Cleanup(unmount)
	return m, unmount
}

// ErrNotApplicable says a layer cannot be laid out for overlayfs the way a
// runtime would (a hard link to a name no layer below has).
var ErrNotApplicable = errors.New("layer cannot be applied")

// Add unpacks a layer: an uncompressed tar stream, or with gz a gzip blob.
// It returns an ErrNotApplicable error when the layer cannot be laid out
// for overlayfs the way a runtime would.
func (s *Stack) Add(r io.Reader, gz bool) error {
	t := s.t
	t.Helper()
	data, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	ld := s.mkdir("layer")
	var lower string
	if len(s.dirs) > 0 {
		var unmount func()
		lower, unmount = s.Mount(false)
		defer unmount()
	}
	plain := data
	if gz {
		cmd := exec.Command("gzip", "-dc")
		cmd.Stdin = bytes.NewReader(data)
		if plain, err = cmd.Output(); err != nil {
			return fmt.Errorf("gzip -dc: %w", err)
		}
	}
	info, err := scanLayer(plain)
	if err != nil {
		return err
	}
	if info.replaced != "" {
		// A runtime applies the layer in archive order, removing what is
		// there to make way; GNU tar into an empty directory cannot show
		// that.
		return fmt.Errorf("%w: the layer has %s as a directory and as a non-directory", ErrNotApplicable, info.replaced)
	}
	if len(s.dirs) > 0 && slices.Contains(info.opaques, ".") {
		return fmt.Errorf("%w: an opaque marker at the root (the kernel ignores it there; containerd and umoci apply it)", ErrNotApplicable)
	}
	if err := copyUp(t, info, lower, ld); err != nil {
		return err
	}
	cmd := exec.Command("sh", "-c", `umask 022 && exec tar --numeric-owner -xpf - -C "$1"`, "sh", ld)
	cmd.Stdin = bytes.NewReader(plain)
	if out, err := cmd.CombinedOutput(); err != nil {
		// For example a hard link to a lower file followed by an entry
		// below that name: no runtime can apply such a layer either.
		return fmt.Errorf("%w: tar -x of layer %d: %v: %s", ErrNotApplicable, len(s.dirs), err, out)
	}
	sameLayer := convertWhiteouts(t, ld)
	if err := dirMetadata(info, lower, ld, sameLayer); err != nil {
		t.Fatalf("directory metadata: %v", err)
	}
	s.dirs = append(s.dirs, ld)
	return nil
}

// copyUp copies into the layer directory ld the lower files that the
// layer's hard links point to.
func copyUp(t testing.TB, info layerInfo, lower, ld string) error {
	for _, target := range info.cross {
		fi, err := os.Lstat(filepath.Join(lower, target))
		if lower == "" || err != nil || fi.IsDir() {
			return fmt.Errorf("%w: hard link target %s: %v", ErrNotApplicable, target, err)
		}
		if fi.Sys().(*syscall.Stat_t).Nlink > 1 {
			return fmt.Errorf("%w: copy-up of %s breaks its hard-link group", ErrNotApplicable, target)
		}
		if info.hides(target) {
			// A runtime applying the layer in archive order finds the target
			// gone, or keeps a copy the layer removes; the OCI rules say
			// the link sees it. Runtimes disagree, so the kernel is no judge.
			return fmt.Errorf("%w: hard link to %s, which its own layer removes", ErrNotApplicable, target)
		}
		cmd := exec.Command("cp", "-a", "--parents", target, ld)
		cmd.Dir = lower
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("copy-up of %s: %v\n%s", target, err, out)
		}
	}
	return nil
}

// convertWhiteouts turns the whiteouts unpacked in ld into overlayfs form,
// and returns the directories the layer both whites out and makes again.
func convertWhiteouts(t testing.TB, ld string) map[string]bool {
	var marks []string
	filepath.WalkDir(ld, func(p string, d fs.DirEntry, err error) error {
		if err == nil && strings.HasPrefix(d.Name(), ".wh.") {
			marks = append(marks, p)
		}
		return err
	})
	sameLayer := map[string]bool{}
	for _, m := range marks {
		if _, err := os.Lstat(m); err != nil {
			continue // below an aufs directory removed already
		}
		name, dir := filepath.Base(m), filepath.Dir(m)
		if err := os.RemoveAll(m); err != nil {
			t.Fatal(err)
		}
		switch {
		case name == ".wh..wh..opq":
			if dir != ld { // overlayfs ignores an opaque root
				setOpaque(t, dir)
			}
		case strings.HasPrefix(name, ".wh..wh."):
		default:
			target := filepath.Join(dir, name[len(".wh."):])
			fi, err := os.Lstat(target)
			switch {
			case err == nil && fi.IsDir():
				setOpaque(t, target) // whited out and made again by this layer
				rel, _ := filepath.Rel(ld, target)
				sameLayer[filepath.ToSlash(rel)] = true
			case err == nil:
				// The layer's own entry hides the lower one anyway.
			default:
				if err := unix.Mknod(target, unix.S_IFCHR, 0); err != nil {
					t.Fatalf("whiteout %s: %v", target, err)
				}
			}
		}
	}
	return sameLayer
}

// dirMetadata gives each directory of ld its explicit header's mode and
// owner (GNU tar 1.34 sometimes leaves the mode of a directory whose header
// comes after a symlink below it at the implied default), else the
// directory's below unless the layer hides that (copy-up), else leaves the
// default.
func dirMetadata(info layerInfo, lower, ld string, sameLayer map[string]bool) error {
	return filepath.WalkDir(ld, func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.IsDir() || p == ld {
			return err
		}
		rel, _ := filepath.Rel(ld, p)
		rel = filepath.ToSlash(rel)
		var uid, gid int
		var mode uint32
		if h := info.explicit[rel]; h != nil {
			uid, gid, mode = h.Uid, h.Gid, uint32(h.Mode&0o7777)
		} else {
			if lower == "" || sameLayer[rel] || info.hides(rel) {
				return nil
			}
			fi, err := os.Lstat(filepath.Join(lower, rel))
			if err != nil || !fi.IsDir() {
				return nil
			}
			st := fi.Sys().(*syscall.Stat_t)
			uid, gid, mode = int(st.Uid), int(st.Gid), uint32(st.Mode&0o7777)
		}
		if err := os.Lchown(p, uid, gid); err != nil {
			return err
		}
		return unix.Chmod(p, mode)
	})
}

func setOpaque(t testing.TB, dir string) {
	if err := unix.Setxattr(dir, "trusted.overlay.opaque", []byte("y"), 0); err != nil {
		t.Fatalf("opaque %s: %v", dir, err)
	}
}

// layerInfo is what Add needs to know of a layer before unpacking it.
type layerInfo struct {
	explicit  map[string]*tar.Header // directories with their own header (the last one)
	cross     []string               // hard link targets that are not earlier in the layer
	whiteouts []string               // paths whited out by the layer
	opaques   []string               // directories made opaque by the layer
	// replaced is a path the layer has twice, once as a directory (its
	// entry or one implied) and once as a non-directory.
	replaced string
}

// hides reports whether the layer's own whiteouts or opaque markers hide p
// of the layers below (a whiteout of p or above, an opaque dir above p).
func (l layerInfo) hides(p string) bool {
	for _, w := range l.whiteouts {
		if p == w || strings.HasPrefix(p, w+"/") {
			return true
		}
	}
	for _, o := range l.opaques {
		if o != "." && strings.HasPrefix(p, o+"/") { // overlayfs ignores an opaque root
			return true
		}
	}
	return false
}

// scanLayer reads a layer's headers.
func scanLayer(data []byte) (layerInfo, error) {
	info := layerInfo{explicit: map[string]*tar.Header{}}
	tr := tar.NewReader(bytes.NewReader(data))
	seen := map[string]bool{}
	isDir := map[string]bool{}
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return info, nil
		}
		if err != nil {
			return info, fmt.Errorf("%w: %v", ErrNotApplicable, err)
		}
		p := path.Clean(h.Name)
		switch b := path.Base(p); {
		case b == ".wh..wh..opq":
			info.opaques = append(info.opaques, path.Dir(p))
		case strings.HasPrefix(b, ".wh..wh."):
		case strings.HasPrefix(b, ".wh."):
			info.whiteouts = append(info.whiteouts, path.Join(path.Dir(p), b[len(".wh."):]))
		}
		info.noteReplaced(p, h.Typeflag == tar.TypeDir, seen, isDir)
		switch h.Typeflag {
		case tar.TypeDir:
			info.explicit[p] = h
		case tar.TypeLink:
			if target := path.Clean(h.Linkname); !seen[target] {
				info.cross = append(info.cross, target)
			}
		}
		seen[p] = true
	}
}

// noteReplaced records in l.replaced the first path of the layer seen both
// as a directory (its own entry or implied by one below it) and as a
// non-directory.
func (l *layerInfo) noteReplaced(p string, dir bool, seen, isDir map[string]bool) {
	for d := path.Dir(p); d != "." && d != "/"; d = path.Dir(d) {
		if seen[d] && !isDir[d] && l.replaced == "" {
			l.replaced = d
		}
		seen[d], isDir[d] = true, true
	}
	if seen[p] && isDir[p] != dir && l.replaced == "" {
		l.replaced = p
	}
	isDir[p] = dir
}

// OpenInRoot opens p, a path relative to the merged root, the way a process
// chrooted into root would: every symlink on the way is followed, absolute
// targets start again at root and ".." never leaves it
// (openat2(RESOLVE_IN_ROOT)). A symlink loop is an error wrapping
// unix.ELOOP. It is how tests ask the kernel what a path of the merged
// filesystem leads to.
func OpenInRoot(root, p string) (*os.File, error) {
	dir, err := unix.Open(root, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: root, Err: err}
	}
	defer unix.Close(dir)
	fd, err := unix.Openat2(dir, p, &unix.OpenHow{Flags: unix.O_RDONLY | unix.O_CLOEXEC, Resolve: unix.RESOLVE_IN_ROOT})
	if err != nil {
		return nil, &os.PathError{Op: "openat2", Path: p, Err: err}
	}
	return os.NewFile(uintptr(fd), filepath.Join(root, p)), nil
}
