package layer

import (
	"archive/tar"
	"bytes"
	"context"
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
)

// The kernel is the truth for overlay rules: each layer is unpacked into
// its own directory by GNU tar, its whiteouts converted to overlayfs form
// (a 0/0 character device for ".wh.NAME", the trusted.overlay.opaque xattr
// for ".wh..wh..opq"), the directories are mounted read-only as the lower
// directories of one overlay, and the merged tree is compared entry for
// entry with what Export gives.
//
// Two steps make each layer directory what a container runtime makes of
// it when it applies a layer on top of the mounted layers below (copy-up):
// a directory the layer's tar only implies takes the mode and owner of that
// directory below, and a hard link to a file of a lower layer gets that file
// copied into the layer first (cp -a --parents from the merged layers below).

var overlayProbe struct {
	once sync.Once
	err  error
}

// requireOverlay skips t unless this process can mount overlayfs and has
// GNU tar.
func requireOverlay(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("kernel comparison needs root (overlay mounts, mknod, trusted.* xattrs)")
	}
	if _, err := exec.LookPath("tar"); err != nil {
		t.Skip("kernel comparison needs GNU tar: ", err)
	}
	overlayProbe.once.Do(func() {
		base, err := os.MkdirTemp("", "lading-ovl-probe-")
		if err != nil {
			overlayProbe.err = err
			return
		}
		defer os.RemoveAll(base)
		for _, d := range []string{"a", "b", "m"} {
			os.Mkdir(filepath.Join(base, d), 0o755)
		}
		opt := "lowerdir=" + filepath.Join(base, "a") + ":" + filepath.Join(base, "b")
		if err := unix.Mount("overlay", filepath.Join(base, "m"), "overlay", unix.MS_RDONLY, opt); err != nil {
			overlayProbe.err = err
			return
		}
		unix.Unmount(filepath.Join(base, "m"), 0)
	})
	if overlayProbe.err != nil {
		t.Skip("mount -t overlay does not work here: ", overlayProbe.err)
	}
}

type kernelStack struct {
	t    *testing.T
	base string
	dirs []string // layer directories, bottom first
	n    int
}

func newKernelStack(t *testing.T) *kernelStack {
	base, err := os.MkdirTemp("", "lading-kernel-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(base) })
	return &kernelStack{t: t, base: base}
}

func (k *kernelStack) mkdir(prefix string) string {
	k.n++
	d := filepath.Join(k.base, fmt.Sprintf("%s%d", prefix, k.n))
	if err := os.Mkdir(d, 0o755); err != nil {
		k.t.Fatal(err)
	}
	return d
}

// mount mounts dirs (bottom first) read-only and returns the merged tree;
// unmount undoes it.
func (k *kernelStack) mount(dirs []string) (merged string, unmount func()) {
	k.t.Helper()
	lower := slices.Clone(dirs)
	slices.Reverse(lower)
	lower = append(lower, k.mkdir("empty")) // overlayfs wants two lower dirs at least
	m := k.mkdir("merged")
	if err := unix.Mount("overlay", m, "overlay", unix.MS_RDONLY, "lowerdir="+strings.Join(lower, ":")); err != nil {
		k.t.Fatalf("mount overlay: %v", err)
	}
	done := false
	unmount = func() {
		if !done {
			done = true
			if err := unix.Unmount(m, 0); err != nil {
				k.t.Errorf("unmount %s: %v", m, err)
			}
		}
	}
	k.t.Cleanup(unmount)
	return m, unmount
}

type layerInfo struct {
	explicit map[string]bool // directories with their own header
	cross    []string        // hard link targets that are not earlier in the layer
}

func scanLayer(t *testing.T, data io.Reader) layerInfo {
	info := layerInfo{explicit: map[string]bool{}}
	seen := map[string]bool{}
	tr := tar.NewReader(data)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return info
		}
		if err != nil {
			t.Fatalf("scan layer: %v", err)
		}
		p := path.Clean(h.Name)
		switch h.Typeflag {
		case tar.TypeDir:
			info.explicit[p] = true
		case tar.TypeLink:
			if target := path.Clean(h.Linkname); !seen[target] {
				info.cross = append(info.cross, target)
			}
		}
		seen[p] = true
	}
}

// add unpacks one layer (tar bytes, or with gz a gzip blob) on the stack.
func (k *kernelStack) add(data []byte, gz bool) {
	t := k.t
	t.Helper()
	ld := k.mkdir("layer")
	var lower string
	if len(k.dirs) > 0 {
		var unmount func()
		lower, unmount = k.mount(k.dirs)
		defer unmount()
	}
	plain := data
	if gz {
		rc, _, err := Decompress(bytes.NewReader(data))
		if err != nil {
			t.Fatal(err)
		}
		plain, err = io.ReadAll(rc)
		if err != nil {
			t.Fatal(err)
		}
	}
	info := scanLayer(t, bytes.NewReader(plain))
	for _, target := range info.cross {
		cmd := exec.Command("cp", "-a", "--parents", target, ld)
		cmd.Dir = lower
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("copy-up of hard link target %s: %v\n%s", target, err, out)
		}
	}
	flags := "-xpf"
	if gz {
		flags = "-xzpf"
	}
	cmd := exec.Command("sh", "-c", `umask 022 && exec tar --numeric-owner `+flags+` - -C "$1"`, "sh", ld)
	cmd.Stdin = bytes.NewReader(data)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("tar -x of layer %d: %v\n%s", len(k.dirs), err, out)
	}

	// Whiteouts to overlayfs form.
	var marks []string
	filepath.WalkDir(ld, func(p string, d fs.DirEntry, err error) error {
		if err == nil && strings.HasPrefix(d.Name(), whPrefix) {
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
		case name == whOpaque:
			setOpaque(t, dir)
		case strings.HasPrefix(name, whMeta):
		default:
			target := filepath.Join(dir, name[len(whPrefix):])
			fi, err := os.Lstat(target)
			switch {
			case err == nil && fi.IsDir():
				// The layer whites out and makes the directory: opaque.
				setOpaque(t, target)
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

	// Implied directories keep the metadata of the directory below (copy-up).
	if lower != "" {
		filepath.WalkDir(ld, func(p string, d fs.DirEntry, err error) error {
			if err != nil || !d.IsDir() || p == ld {
				return err
			}
			rel, _ := filepath.Rel(ld, p)
			rel = filepath.ToSlash(rel)
			if info.explicit[rel] || sameLayer[rel] {
				return nil
			}
			fi, err := os.Lstat(filepath.Join(lower, rel))
			if err != nil || !fi.IsDir() {
				return nil
			}
			st := fi.Sys().(*syscall.Stat_t)
			if err := os.Lchown(p, int(st.Uid), int(st.Gid)); err != nil {
				return err
			}
			return unix.Chmod(p, st.Mode&0o7777)
		})
	}
	k.dirs = append(k.dirs, ld)
}

func setOpaque(t *testing.T, dir string) {
	if err := unix.Setxattr(dir, "trusted.overlay.opaque", []byte("y"), 0); err != nil {
		t.Fatalf("opaque %s: %v", dir, err)
	}
}

// kernelTree returns the listing of the merged overlay of layers.
func kernelTree(t *testing.T, layers [][]byte, gz bool) []string {
	k := newKernelStack(t)
	for _, l := range layers {
		k.add(l, gz)
	}
	merged, unmount := k.mount(k.dirs)
	defer unmount()
	return listDir(t, merged)
}

// extractTree extracts a merged tar with Extract and lists the result.
func extractTree(t testing.TB, merged []byte, opts ...Option) []string {
	t.Helper()
	d := t.TempDir()
	if err := Extract(context.Background(), d, bytes.NewReader(merged), opts...); err != nil {
		t.Fatalf("Extract: %v", err)
	}
	return listDir(t, d)
}

// gnuTarTree extracts a merged tar with GNU tar and lists the result.
func gnuTarTree(t testing.TB, merged []byte) []string {
	t.Helper()
	d := t.TempDir()
	cmd := exec.Command("tar", "--numeric-owner", "-xpf", "-", "-C", d)
	cmd.Stdin = bytes.NewReader(merged)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("tar -x: %v\n%s", err, out)
	}
	return listDir(t, d)
}

// layerwiseTree applies layers one by one with Extract(ApplyWhiteouts).
func layerwiseTree(t testing.TB, layers [][]byte, opts ...Option) []string {
	t.Helper()
	d := t.TempDir()
	for i, l := range layers {
		o := append([]Option{ApplyWhiteouts(), WithName(fmt.Sprintf("layer %d/%d", i+1, len(layers)))}, opts...)
		if err := Extract(context.Background(), d, bytes.NewReader(l), o...); err != nil {
			t.Fatalf("Extract: %v", err)
		}
	}
	return listDir(t, d)
}

func TestKernelOverlay(t *testing.T) {
	requireOverlay(t)
	for _, tc := range stackCases() {
		t.Run(tc.name, func(t *testing.T) {
			if tc.noKernel != "" {
				t.Skip(tc.noKernel)
			}
			layers := stackOf(t, tc.layers...)
			kernel := kernelTree(t, layers, false)
			if diff := cmpLines(tc.want, kernel); diff != "" {
				t.Errorf("the test's expectation differs from the kernel (-want +kernel):\n%s", diff)
			}
			merged, err := export(t, layers)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmpLines(kernel, extractTree(t, merged)); diff != "" {
				t.Errorf("Export+Extract differs from the kernel (-kernel +ours):\n%s", diff)
			}
			if diff := cmpLines(kernel, gnuTarTree(t, merged)); diff != "" {
				t.Errorf("Export+tar -x differs from the kernel (-kernel +ours):\n%s", diff)
			}
			if diff := cmpLines(kernel, layerwiseTree(t, layers)); diff != "" {
				t.Errorf("Extract(ApplyWhiteouts) layer by layer differs from the kernel (-kernel +ours):\n%s", diff)
			}
		})
	}
}

var _ = errors.New
