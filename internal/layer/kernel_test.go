package layer

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
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
// directory below (unless the layer's own whiteouts hide it), and a hard
// link to a file of a lower layer gets that file copied into the layer first
// (cp -a --parents from the merged layers below). Stacks where runtimes
// themselves disagree, because they apply a layer in archive order and the
// OCI rules do not, are left out (errNoKernel).

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
		if err := mountOverlay(filepath.Join(base, "m"), opt); err != nil {
			overlayProbe.err = err
			return
		}
		unmountOverlay(filepath.Join(base, "m"))
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
	if err := mountOverlay(m, "lowerdir="+strings.Join(lower, ":")); err != nil {
		k.t.Fatalf("mount overlay: %v", err)
	}
	done := false
	unmount = func() {
		if !done {
			done = true
			if err := unmountOverlay(m); err != nil {
				k.t.Errorf("unmount %s: %v", m, err)
			}
		}
	}
	k.t.Cleanup(unmount)
	return m, unmount
}

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
		if isUnder(p, w) {
			return true
		}
	}
	for _, o := range l.opaques {
		if o != "." && p != o && isUnder(p, o) { // overlayfs ignores an opaque root
			return true
		}
	}
	return false
}

func scanLayer(t *testing.T, data io.Reader) layerInfo {
	info := layerInfo{explicit: map[string]*tar.Header{}}
	seen := map[string]bool{}
	isDir := map[string]bool{}
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
		switch b := path.Base(p); {
		case b == whOpaque:
			info.opaques = append(info.opaques, path.Dir(p))
		case strings.HasPrefix(b, whMeta):
		case strings.HasPrefix(b, whPrefix):
			info.whiteouts = append(info.whiteouts, path.Join(path.Dir(p), b[len(whPrefix):]))
		}
		for d := path.Dir(p); d != "."; d = path.Dir(d) {
			if seen[d] && !isDir[d] && info.replaced == "" {
				info.replaced = d
			}
			seen[d], isDir[d] = true, true
		}
		if seen[p] && isDir[p] != (h.Typeflag == tar.TypeDir) && info.replaced == "" {
			info.replaced = p
		}
		isDir[p] = h.Typeflag == tar.TypeDir
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

// errNoKernel says the kernel comparison does not apply to a stack.
var errNoKernel = errors.New("kernel comparison does not apply")

// add unpacks one layer (tar bytes, or with gz a gzip blob) on the stack.
// It returns an errNoKernel error when the layer cannot be laid out for
// overlayfs the way a runtime would (a hard link to a missing name) or when
// copy-up would break a hard-link group of a lower layer (overlayfs without
// index=on), where the kernel and the image's intent part.
func (k *kernelStack) add(data []byte, gz bool) error {
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
	if info.replaced != "" {
		// A runtime applies the layer in archive order, removing what is
		// there below to make way; GNU tar into an empty directory
		// cannot show that.
		return fmt.Errorf("%w: the layer has %s as a directory and as a non-directory", errNoKernel, info.replaced)
	}
	if len(k.dirs) > 0 && slices.Contains(info.opaques, ".") {
		return fmt.Errorf("%w: an opaque marker at the root (the kernel ignores it there; containerd and umoci apply it)", errNoKernel)
	}
	for _, target := range info.cross {
		fi, err := os.Lstat(filepath.Join(lower, target))
		if lower == "" || err != nil || fi.IsDir() {
			return fmt.Errorf("%w: hard link target %s: %v", errNoKernel, target, err)
		}
		if fi.Sys().(*syscall.Stat_t).Nlink > 1 {
			return fmt.Errorf("%w: copy-up of %s breaks its hard-link group", errNoKernel, target)
		}
		if info.hides(target) {
			// A runtime applying the layer in order finds the target gone
			// or keeps a copy the layer removes; OCI says the link sees it.
			return fmt.Errorf("%w: hard link to %s, which its own layer removes", errNoKernel, target)
		}
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
		// For example a hard link to a lower file followed by an entry
		// below that name: no runtime can apply such a layer either.
		return fmt.Errorf("%w: tar -x of layer %d: %v: %s", errNoKernel, len(k.dirs), err, out)
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

	// Directory metadata: an explicit header's (GNU tar 1.34 sometimes
	// leaves the mode of a directory whose header comes after a symlink
	// below it at the implied default), else the directory's below unless
	// the layer hides that (copy-up), else the default.
	werr := filepath.WalkDir(ld, func(p string, d fs.DirEntry, err error) error {
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
	if werr != nil {
		t.Fatalf("directory metadata: %v", werr)
	}
	k.dirs = append(k.dirs, ld)
	return nil
}

func setOpaque(t *testing.T, dir string) {
	if err := unix.Setxattr(dir, "trusted.overlay.opaque", []byte("y"), 0); err != nil {
		t.Fatalf("opaque %s: %v", dir, err)
	}
}

// kernelTree returns the listing of the merged overlay of layers.
func kernelTree(t *testing.T, layers [][]byte, gz bool) ([]string, error) {
	k := newKernelStack(t)
	for _, l := range layers {
		if err := k.add(l, gz); err != nil {
			return nil, err
		}
	}
	merged, unmount := k.mount(k.dirs)
	defer unmount()
	return listDir(t, merged), nil
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
			kernel, err := kernelTree(t, layers, false)
			if err != nil {
				t.Fatal(err)
			}
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

// TestKernelRandomStacks compares Export with the kernel on stacks made from
// a fixed random sequence by the generator FuzzOverlay uses.
func TestKernelRandomStacks(t *testing.T) {
	requireOverlay(t)
	n := 300
	if testing.Short() {
		n = 30
	}
	r := rand.New(rand.NewPCG(2024, 1))
	var compared, exportErr, noKernel int
	for i := range n {
		data := make([]byte, 3*(3+r.IntN(18)))
		for j := range data {
			data[j] = byte(r.UintN(256))
		}
		layers := opStack(t, data)
		merged, err := export(t, layers, AllowDevices())
		if err != nil {
			exportErr++
			continue
		}
		kernel, err := kernelTree(t, layers, false)
		if errors.Is(err, errNoKernel) {
			if testing.Verbose() {
				t.Logf("stack %d: %v", i, err)
			}
			noKernel++
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		compared++
		if diff := cmpLines(kernel, extractTree(t, merged, AllowDevices())); diff != "" {
			t.Errorf("stack %d (fuzz input %v): Export+Extract differs from the kernel (-kernel +ours):\n%s", i, data, diff)
		}
	}
	t.Logf("%d stacks: %d compared with the kernel, %d refused by Export, %d not applicable", n, compared, exportErr, noKernel)
	if compared < n/2 {
		t.Errorf("only %d of %d stacks compared", compared, n)
	}
}
