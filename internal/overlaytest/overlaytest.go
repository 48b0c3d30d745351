// Package overlaytest builds the root filesystem of a layer stack the way a
// container runtime does, with the kernel's overlayfs, for tests that take
// the kernel as the truth about overlay rules: each layer is unpacked by
// GNU tar into its own directory, its whiteouts are turned into overlayfs
// form (".wh.NAME" into a 0/0 character device NAME, ".wh..wh..opq" into
// the trusted.overlay.opaque xattr of its directory), and the directories
// are mounted as the lower directories of one overlay.
//
// A hard link to a file of a lower layer gets that file copied into the
// layer first (copy-up), as a runtime applying the layer on the mounted
// layers below would. Mounting needs root; [Require] skips a test
// otherwise. The approach is the one of internal/layer's kernel tests.
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
	"testing"

	"golang.org/x/sys/unix"
)

var probe struct {
	once sync.Once
	err  error
}

// Require skips t unless this process can mount overlayfs and has GNU tar.
func Require(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root, to mount overlayfs, make whiteout devices and set trusted.* xattrs")
	}
	if _, err := exec.LookPath("tar"); err != nil {
		t.Skip("needs GNU tar: ", err)
	}
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
		t.Skip("mount -t overlay does not work here: ", probe.err)
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
	// Copy-up of the targets of hard links to lower layers.
	links, err := crossLinks(plain)
	if err != nil {
		return err
	}
	for _, target := range links.targets {
		if links.hides(target) {
			// A runtime applying the layer in archive order finds the target
			// gone, or keeps a copy the layer removes; the OCI rules say
			// the link sees it. Runtimes disagree, so the kernel is no judge.
			return fmt.Errorf("%w: hard link to %s, which its own layer removes", ErrNotApplicable, target)
		}
		fi, err := os.Lstat(filepath.Join(lower, target))
		if lower == "" || err != nil || fi.IsDir() {
			return fmt.Errorf("%w: hard link target %s: %v", ErrNotApplicable, target, err)
		}
		cmd := exec.Command("cp", "-a", "--parents", target, ld)
		cmd.Dir = lower
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("copy-up of %s: %v\n%s", target, err, out)
		}
	}
	cmd := exec.Command("tar", "--numeric-owner", "-xpf", "-", "-C", ld)
	cmd.Stdin = bytes.NewReader(plain)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("%w: tar -x: %v: %s", ErrNotApplicable, err, out)
	}
	var marks []string
	filepath.WalkDir(ld, func(p string, d fs.DirEntry, err error) error {
		if err == nil && strings.HasPrefix(d.Name(), ".wh.") {
			marks = append(marks, p)
		}
		return err
	})
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
			case err == nil:
			default:
				if err := unix.Mknod(target, unix.S_IFCHR, 0); err != nil {
					t.Fatalf("whiteout %s: %v", target, err)
				}
			}
		}
	}
	s.dirs = append(s.dirs, ld)
	return nil
}

func setOpaque(t testing.TB, dir string) {
	if err := unix.Setxattr(dir, "trusted.overlay.opaque", []byte("y"), 0); err != nil {
		t.Fatalf("opaque %s: %v", dir, err)
	}
}

// layerLinks are the hard links of a layer to lower layers, and what the
// layer itself hides of the layers below.
type layerLinks struct {
	targets   []string
	whiteouts []string
	opaques   []string
}

// hides reports whether the layer's own whiteouts or opaque markers hide p
// of the layers below.
func (l layerLinks) hides(p string) bool {
	for _, w := range l.whiteouts {
		if p == w || strings.HasPrefix(p, w+"/") {
			return true
		}
	}
	for _, o := range l.opaques {
		if o != "." && strings.HasPrefix(p, o+"/") {
			return true
		}
	}
	return false
}

// crossLinks scans a layer for hard links whose target is not an earlier
// entry of the layer.
func crossLinks(data []byte) (layerLinks, error) {
	var l layerLinks
	tr := tar.NewReader(bytes.NewReader(data))
	seen := map[string]bool{}
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return l, nil
		}
		if err != nil {
			return l, fmt.Errorf("%w: %v", ErrNotApplicable, err)
		}
		p := path.Clean(h.Name)
		switch b := path.Base(p); {
		case b == ".wh..wh..opq":
			l.opaques = append(l.opaques, path.Dir(p))
		case strings.HasPrefix(b, ".wh..wh."):
		case strings.HasPrefix(b, ".wh."):
			l.whiteouts = append(l.whiteouts, path.Join(path.Dir(p), b[len(".wh."):]))
		}
		if h.Typeflag == tar.TypeLink {
			if target := path.Clean(h.Linkname); !seen[target] {
				l.targets = append(l.targets, target)
			}
		}
		seen[p] = true
	}
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
