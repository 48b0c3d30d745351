package rootfs_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"golang.org/x/sys/unix"

	"github.com/lading-dev/lading/internal/errdefs"
	"github.com/lading-dev/lading/internal/overlaytest"
	"github.com/lading-dev/lading/internal/rootfs"
	"github.com/lading-dev/lading/internal/treetest"
)

// stack is three layers with what overlay rules act on: whiteouts, an
// opaque directory, a directory made again, hard links, symlinks, special
// modes, owners, xattrs, and a layer that tries to set an overlayfs xattr
// itself.
func stack(t testing.TB) [][]byte {
	return [][]byte{
		tarOf(t,
			dir("etc"), file("etc/passwd", "root:x:0:0::/root:/bin/sh\n"), file("etc/group", "root:x:0:\n"),
			dir("bin"), file("bin/busybox", "#!binary").withMode(0o755).withXattr("user.origin", "layer1"),
			hardlink("bin/sh", "bin/busybox"), symlink("bin/ls", "busybox"),
			dir("usr"), dir("usr/lib"), file("usr/lib/a", "a"), file("usr/lib/b", "b"),
			dir("usr/share"), dir("usr/share/doc"), file("usr/share/doc/x", "x"),
			dir("usr/bin"), file("usr/bin/su", "su").withMode(0o4755), file("usr/bin/owned", "o").withOwner(1000, 50),
			dir("tmp").withMode(0o1777), dir("opt"), file("opt/x", "x"),
			symlink("lnk", "/etc/passwd"),
		),
		tarOf(t,
			dir("usr"), dir("usr/lib"), whiteout("usr/lib/.wh.a"),
			dir("usr/share"), whiteout("usr/share/.wh..wh..opq"), file("usr/share/new", "n"),
			dir("etc"), file("etc/passwd", "root:x:0:0::/root:/bin/ash\n"),
			dir("opt").withXattr("trusted.overlay.opaque", "y"), file("opt/y", "y"),
		),
		tarOf(t, whiteout(".wh.tmp"), dir("newdir"), file("newdir/f", "f"), file("newdir/g", "g")),
	}
}

func layers(t testing.TB, tars [][]byte) []v1.Layer {
	var out []v1.Layer
	for _, b := range tars {
		out = append(out, layerOf(t, b))
	}
	return out
}

// kernel returns the merged tree the kernel's overlayfs shows for tars
// (each unpacked by GNU tar, whiteouts in overlayfs form).
func kernel(t *testing.T, tars ...[]byte) string {
	t.Helper()
	s := overlaytest.New(t)
	for i, b := range tars {
		if err := s.Add(bytes.NewReader(b), false); err != nil {
			t.Fatalf("layer %d: %v", i+1, err)
		}
	}
	m, _ := s.Mount(false)
	return m
}

// noXattrs compares without xattrs (GNU tar in overlaytest does not set
// them), without directory times, and without the root itself.
func snap(t *testing.T, dir string) map[string]treetest.Entry {
	s := treetest.Snapshot(t, dir, treetest.NoDirTimes(), treetest.Xattrs(func(string) bool { return false }))
	delete(s, ".")
	return s
}

var modes = []rootfs.Mode{rootfs.Overlay, rootfs.Copy}

func newFS(t *testing.T, mode rootfs.Mode, ls []v1.Layer, cache string) *rootfs.FS {
	t.Helper()
	f, err := rootfs.New(context.Background(), ls, rootfs.WithCache(cache), rootfs.WithDir(filepath.Join(t.TempDir(), "fs")), rootfs.WithMode(mode))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Remove() })
	return f
}

func TestNewMatchesKernel(t *testing.T) {
	overlaytest.Require(t)
	tars := stack(t)
	want := snap(t, kernel(t, tars...))
	cache := t.TempDir()
	for _, mode := range modes {
		t.Run(string(mode), func(t *testing.T) {
			f := newFS(t, mode, layers(t, tars), cache)
			if f.Mode() != mode {
				t.Fatalf("mode %s, want %s", f.Mode(), mode)
			}
			treetest.Equal(t, want, snap(t, f.Dir()), "tree")
			var v [16]byte
			n, err := unix.Lgetxattr(filepath.Join(f.Dir(), "bin/busybox"), "user.origin", v[:])
			if err != nil || string(v[:n]) != "layer1" {
				t.Errorf("xattr user.origin: %q, %v", v[:n], err)
			}
			if ch, err := f.Changes(context.Background()); err != nil || len(ch) != 0 {
				t.Errorf("changes of a new FS: %v, %v", ch, err)
			}
		})
	}
}

// change makes the same changes in a tree: what each kind of change in a
// layer needs.
func change(t *testing.T, root string) {
	t.Helper()
	p := func(s string) string { return filepath.Join(root, s) }
	steps := []func() error{
		func() error { return os.Remove(p("etc/group")) },
		func() error { return os.WriteFile(p("etc/passwd"), []byte("changed\n"), 0o644) },
		func() error { return os.Chmod(p("bin/busybox"), 0o700) },
		func() error { return os.RemoveAll(p("usr/lib")) },
		func() error { return os.Mkdir(p("usr/lib"), 0o755) },
		func() error { return os.WriteFile(p("usr/lib/c"), []byte("c"), 0o644) },
		func() error { return os.RemoveAll(p("usr/share")) },
		func() error { return os.Symlink("/etc/shadow", p("newlink")) },
		func() error { return os.Link(p("newdir/f"), p("newdir/h")) },
		func() error { return os.MkdirAll(p("a/b/c"), 0o750) },
		func() error { return os.WriteFile(p("a/b/c/d"), []byte("deep"), 0o600) },
		func() error { return unix.Mkfifo(p("a/fifo"), 0o640) },
		func() error { return os.Lchown(p("usr/bin/owned"), 7, 8) },
		func() error { return os.Chmod(p("usr/bin/owned"), 0o2755) },
		func() error { return unix.Lsetxattr(p("a/b/c/d"), "user.new", []byte("v"), 0) },
		func() error { return os.Remove(p("lnk")) },
		func() error { return os.Symlink("etc/group", p("lnk")) },
	}
	for i, s := range steps {
		if err := s(); err != nil {
			t.Fatalf("change %d: %v", i, err)
		}
	}
	// A time in the past, so that it does not depend on when the test runs.
	os.Chtimes(p("a/b/c/d"), t0, t0)
}

var wantChanges = []string{
	"A /a", "A /a/b", "A /a/b/c", "A /a/b/c/d", "A /a/fifo",
	"C /bin", "C /bin/busybox",
	"C /etc", "D /etc/group", "C /etc/passwd",
	"C /lnk",
	"C /newdir", "C /newdir/f", "A /newdir/h",
	"A /newlink",
	"C /usr", "C /usr/bin", "C /usr/bin/owned",
	"C /usr/lib", "D /usr/lib/b", "A /usr/lib/c",
	"D /usr/share",
}

func TestChangesAndDiff(t *testing.T) {
	overlaytest.Require(t)
	tars := stack(t)
	cache := t.TempDir()
	for _, mode := range modes {
		t.Run(string(mode), func(t *testing.T) {
			f := newFS(t, mode, layers(t, tars), cache)
			change(t, f.Dir())
			ch, err := f.Changes(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, c := range ch {
				got = append(got, c.String())
			}
			want := wantChanges
			if mode == rootfs.Copy {
				// chmod of bin/busybox changes its hard link bin/sh too;
				// overlayfs copies up one name only, breaking the link.
				want = append([]string(nil), want[:7]...)
				want = append(want, "C /bin/sh")
				want = append(want, wantChanges[7:]...)
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("Changes (-want +got):\n%s", diff)
			}
			var diff bytes.Buffer
			if err := f.Diff(context.Background(), &diff, rootfs.DiffOptions{}); err != nil {
				t.Fatal(err)
			}
			names := tarNames(t, diff.Bytes())
			// Overlay keeps "rm -rf usr/lib && mkdir usr/lib" as an opaque
			// directory; a copy whites out each name it lost.
			deleted := "usr/lib/.wh.b"
			if mode == rootfs.Overlay {
				deleted = "usr/lib/.wh..wh..opq"
			}
			for _, n := range []string{"etc/.wh.group", "usr/.wh.share", deleted, "newdir/h link to newdir/f", "a/fifo fifo", "newlink -> /etc/shadow"} {
				if !contains(names, n) {
					t.Errorf("diff has no %q: %q", n, names)
				}
			}
			// The truth: the kernel's overlayfs with the diff as a new
			// layer shows the changed tree.
			treetest.Equal(t, snap(t, f.Dir()), snap(t, kernel(t, append(tars, diff.Bytes())...)), "layers + diff vs the changed tree")
		})
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func TestDiffReproducible(t *testing.T) {
	overlaytest.Require(t)
	tars := stack(t)
	epoch := time.Date(2023, 6, 1, 0, 0, 0, 0, time.UTC)
	for _, mode := range modes {
		t.Run(string(mode), func(t *testing.T) {
			var outs [][]byte
			for i := 0; i < 2; i++ {
				f := newFS(t, mode, layers(t, tars), t.TempDir())
				change(t, f.Dir())
				if i == 1 {
					// Later times and other inode numbers must not matter.
					time.Sleep(1100 * time.Millisecond)
					os.WriteFile(filepath.Join(f.Dir(), "etc/passwd"), []byte("changed\n"), 0o644)
				}
				var b bytes.Buffer
				if err := f.Diff(context.Background(), &b, rootfs.DiffOptions{SourceDateEpoch: &epoch}); err != nil {
					t.Fatal(err)
				}
				outs = append(outs, b.Bytes())
			}
			if !bytes.Equal(outs[0], outs[1]) {
				t.Errorf("two diffs of the same changes differ:\n%q\n%q", tarNames(t, outs[0]), tarNames(t, outs[1]))
			}
		})
	}
}

func TestReopen(t *testing.T) {
	overlaytest.Require(t)
	tars := stack(t)
	cache := t.TempDir()
	for _, mode := range modes {
		t.Run(string(mode), func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "fs")
			f, err := rootfs.New(context.Background(), layers(t, tars), rootfs.WithCache(cache), rootfs.WithDir(dir), rootfs.WithMode(mode))
			if err != nil {
				t.Fatal(err)
			}
			change(t, f.Dir())
			if err := f.Close(); err != nil {
				t.Fatal(err)
			}
			g, err := rootfs.Open(context.Background(), dir, rootfs.WithCache(cache), rootfs.WithoutMount())
			if err != nil {
				t.Fatal(err)
			}
			defer g.Remove()
			ch, err := g.Changes(context.Background())
			if err != nil || len(ch) < len(wantChanges) {
				t.Errorf("reopened: %d changes (%v), want %d", len(ch), err, len(wantChanges))
			}
			if _, err := rootfs.New(context.Background(), layers(t, tars[:1]), rootfs.WithCache(cache), rootfs.WithDir(dir)); !errors.Is(err, errdefs.ErrConflict) {
				t.Errorf("New over other layers in the same dir: %v, want a conflict", err)
			}
		})
	}
}

func TestFromDir(t *testing.T) {
	overlaytest.Require(t)
	tars := stack(t)
	for _, mode := range modes {
		t.Run(string(mode), func(t *testing.T) {
			// A root file system made outside lading: the kernel's merged
			// tree, copied by cp -a, then changed.
			dir := filepath.Join(t.TempDir(), "rootfs")
			cp(t, kernel(t, tars...), dir)
			change(t, dir)
			f, err := rootfs.FromDir(context.Background(), dir, layers(t, tars), rootfs.WithCache(t.TempDir()), rootfs.WithMode(mode))
			if err != nil {
				t.Fatal(err)
			}
			var diff bytes.Buffer
			if err := f.Diff(context.Background(), &diff, rootfs.DiffOptions{}); err != nil {
				t.Fatal(err)
			}
			treetest.Equal(t, snap(t, dir), snap(t, kernel(t, append(tars, diff.Bytes())...)), "layers + diff vs the changed directory")
			if err := f.Remove(); err != nil {
				t.Fatal(err)
			}
			if _, err := os.Stat(dir); err != nil {
				t.Errorf("Remove of a FromDir FS removed the caller's directory: %v", err)
			}
		})
	}
}

// badLayer reports a diffID its content does not have.
type badLayer struct{ v1.Layer }

func (badLayer) DiffID() (v1.Hash, error) {
	return v1.NewHash("sha256:" + strings.Repeat("ab", 32))
}

func TestCorruptLayer(t *testing.T) {
	overlaytest.Require(t)
	cache := t.TempDir()
	for _, mode := range modes {
		l := badLayer{layerOf(t, tarOf(t, file("x", "x")))}
		_, err := rootfs.New(context.Background(), []v1.Layer{l}, rootfs.WithCache(cache), rootfs.WithMode(mode))
		if !errors.Is(err, errdefs.ErrCorrupt) {
			t.Errorf("%s: %v, want ErrCorrupt", mode, err)
		}
	}
	for _, d := range []string{"sha256", "chains/sha256", "tmp"} {
		es, _ := os.ReadDir(filepath.Join(cache, d))
		if d == "tmp" {
			// New made its FS directory there before it failed.
			continue
		}
		if len(es) != 0 {
			t.Errorf("cache %s holds %d entries after a corrupt layer", d, len(es))
		}
	}
}

func cp(t *testing.T, src, dst string) {
	t.Helper()
	if out, err := execCommand("cp", "-a", src, dst); err != nil {
		t.Fatalf("cp -a: %v\n%s", err, out)
	}
}

// TestCacheCleansLeftovers: what a killed process left under tmp/ goes;
// what a live one is working on stays.
func TestCacheCleansLeftovers(t *testing.T) {
	overlaytest.Require(t)
	cache := t.TempDir()
	dead := filepath.Join(cache, "tmp", "layer-99999999-abc")
	live := filepath.Join(cache, "tmp", fmt.Sprintf("layer-%d-abc", os.Getpid()))
	for _, d := range []string{dead, live} {
		if err := os.MkdirAll(filepath.Join(d, "x"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	newFS(t, rootfs.Overlay, layers(t, stack(t)[:1]), cache)
	if _, err := os.Stat(dead); err == nil {
		t.Errorf("the dead process's %s is still there", dead)
	}
	if _, err := os.Stat(live); err != nil {
		t.Errorf("a live process's directory went: %v", err)
	}
}

// TestManyLayers mounts more layers than one page of mount options holds
// (overlayfs then gets them one by one through fsconfig).
func TestManyLayers(t *testing.T) {
	overlaytest.Require(t)
	var ls []v1.Layer
	for i := 0; i < 60; i++ {
		ls = append(ls, layerOf(t, tarOf(t, file(fmt.Sprintf("f%02d", i), "x"), file("top", fmt.Sprint(i)))))
	}
	f := newFS(t, rootfs.Overlay, ls, t.TempDir())
	b, err := os.ReadFile(filepath.Join(f.Dir(), "top"))
	if err != nil || string(b) != "59" {
		t.Errorf("top: %q, %v", b, err)
	}
	es, _ := os.ReadDir(f.Dir())
	if len(es) != 61 {
		t.Errorf("%d entries, want 61", len(es))
	}
}
