package layer

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/sys/unix"

	"github.com/lading-dev/lading/internal/errdefs"
	"github.com/lading-dev/lading/internal/testenv"
)

// sandbox returns a target directory inside a parent that also holds an
// "outside" directory with a secret; check fails t if anything outside the
// target changed.
func sandbox(t *testing.T) (target string, check func()) {
	t.Helper()
	parent := t.TempDir()
	target = filepath.Join(parent, "root")
	outside := filepath.Join(parent, "outside")
	for _, d := range []string{target, outside, filepath.Join(outside, "dir")} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(outside, "secret"), []byte("secret"), 0o644); err != nil {
		t.Fatal(err)
	}
	snapshot := func() []string {
		var out []string
		for _, l := range listDir(t, parent) {
			if !strings.HasPrefix(l, "root ") && !strings.HasPrefix(l, "root/") {
				out = append(out, l)
			}
		}
		return out
	}
	before := snapshot()
	return target, func() {
		t.Helper()
		if diff := cmp.Diff(before, snapshot()); diff != "" {
			t.Errorf("something outside the target changed (-before +after):\n%s", diff)
		}
	}
}

func extractLayers(dir string, layers [][]byte, opts ...Option) error {
	for _, l := range layers {
		if err := Extract(context.Background(), dir, bytes.NewReader(l), opts...); err != nil {
			return err
		}
	}
	return nil
}

func TestExtractHostile(t *testing.T) {
	for _, tc := range []struct {
		name   string
		pre    func(root string) // prepares the target
		layers [][]ent
		apply  bool
		class  error  // nil: must succeed
		want   string // error text it contains
		tree   []string
	}{
		{
			name:   "dotdot",
			layers: [][]ent{{file("../outside/secret", "pwned")}},
			class:  errdefs.ErrInvalidArgument, want: `entry "../outside/secret": path escapes the layer root`,
		},
		{
			name:   "absolute",
			layers: [][]ent{{file("/tmp/pwned", "pwned")}},
			class:  errdefs.ErrInvalidArgument, want: `absolute path not allowed`,
		},
		{
			name:   "symlink then write through it in one layer",
			layers: [][]ent{{symlink("evil", "../outside"), file("evil/secret", "pwned")}},
			class:  errdefs.ErrInvalidArgument, want: `entry "evil/secret": parent "evil" is a symlink in this layer`,
		},
		{
			name:   "absolute symlink then write through it",
			layers: [][]ent{{symlink("evil", "/etc"), file("evil/passwd", "pwned")}},
			class:  errdefs.ErrInvalidArgument, want: `parent "evil" is a symlink in this layer`,
		},
		{
			name:   "hard link out",
			layers: [][]ent{{hardlink("x", "../outside/secret")}},
			class:  errdefs.ErrInvalidArgument, want: `hard link target "../outside/secret": path escapes the layer root`,
		},
		{
			name:   "hard link through an existing symlink",
			pre:    func(root string) { os.Symlink("../outside", filepath.Join(root, "esc")) },
			layers: [][]ent{{hardlink("x", "esc/secret")}},
			class:  errdefs.ErrInvalidArgument, want: `entry "x"`,
		},
		{
			name:   "write through an existing symlink",
			pre:    func(root string) { os.Symlink("../outside", filepath.Join(root, "evil")) },
			layers: [][]ent{{file("evil/secret", "pwned")}},
			class:  errdefs.ErrInvalidArgument, want: `entry "evil/secret": parent "evil" exists and is not a directory (refusing to write through it)`,
		},
		{
			name:   "symlink of a lower layer, write in the next (overlay: the dir wins)",
			layers: [][]ent{{symlink("evil", "../outside")}, {file("evil/secret", "mine")}},
			apply:  true,
			tree:   []string{"evil dir 0755", "evil/secret file 0644 mine"},
		},
		{
			name:   "absolute symlink of a lower layer, write in the next",
			layers: [][]ent{{symlink("etc", "/etc")}, {file("etc/passwd", "mine")}},
			apply:  true,
			tree:   []string{"etc dir 0755", "etc/passwd file 0644 mine"},
		},
		{
			name:   "file over a symlink to outside",
			layers: [][]ent{{symlink("f", "../outside/secret")}, {file("f", "mine")}},
			tree:   []string{"f file 0644 mine"},
		},
		{
			name:   "symlink over a dangling symlink to outside",
			layers: [][]ent{{symlink("f", "../outside/new")}, {symlink("f", "x")}},
			tree:   []string{"f sym 0777 x"},
		},
		{
			name:   "whiteout through a symlink",
			layers: [][]ent{{symlink("lib", "../outside")}, {whiteout("lib/secret")}},
			apply:  true,
			tree:   []string{"lib dir 0755"},
		},
		{
			name:   "opaque through a symlink",
			layers: [][]ent{{symlink("d", "../outside")}, {opaque("d")}},
			apply:  true,
			tree:   []string{"d dir 0755"},
		},
		{
			name:   "whiteout of a symlink to a directory outside",
			layers: [][]ent{{symlink("w", "../outside"), file("keep", "k")}, {whiteout("w")}},
			apply:  true,
			tree:   []string{"keep file 0644 k"},
		},
		{
			name:   "device without AllowDevices",
			layers: [][]ent{{chardev("null", 1, 3)}},
			class:  errdefs.ErrInvalidArgument, want: `entry "null": device nodes are not allowed`,
		},
		{
			name:   "the same path twice: the last entry wins",
			layers: [][]ent{{file("a", "1"), file("a", "2")}},
			tree:   []string{"a file 0644 2"},
		},
		{
			name:   "a directory, then a file of the same name",
			layers: [][]ent{{dir("d", mode(0o700)), file("d/x", "x"), file("d", "f")}},
			tree:   []string{"d file 0644 f"},
		},
		{
			name:   "a file, then a directory of the same name",
			layers: [][]ent{{file("d", "f"), dir("d", mode(0o700)), file("d/x", "x")}},
			tree:   []string{"d dir 0700", "d/x file 0644 x"},
		},
		{
			name:   "hard link to a missing file",
			layers: [][]ent{{hardlink("x", "nothing")}},
			class:  errdefs.ErrInvalidArgument, want: `entry "x": hard link target "nothing" does not exist`,
		},
		{
			name:   "file replaces a directory tree",
			layers: [][]ent{{file("a/b/c", "c")}, {file("a", "a")}},
			tree:   []string{"a file 0644 a"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root, check := sandbox(t)
			defer check()
			if tc.pre != nil {
				tc.pre(root)
			}
			var opts []Option
			if tc.apply {
				opts = append(opts, ApplyWhiteouts())
			}
			err := extractLayers(root, stackOf(t, tc.layers...), opts...)
			if tc.class == nil {
				if err != nil {
					t.Fatal(err)
				}
				if diff := cmpLines(tc.tree, withoutOwners(listDir(t, root))); diff != "" {
					t.Errorf("tree (-want +got):\n%s", diff)
				}
				return
			}
			if !errors.Is(err, tc.class) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error\n got %v\nwant %s (%v)", err, tc.want, tc.class)
			}
		})
	}
}

func TestExtractTruncated(t *testing.T) {
	root, check := sandbox(t)
	defer check()
	layer := truncate(tarOf(t, file("a", "a"), file("big", strings.Repeat("x", 5000))), 2000)
	err := Extract(context.Background(), root, bytes.NewReader(layer), WithName("layer 1/1 sha256:ab"))
	if !errdefs.IsCorrupt(err) || err.Error() != `layer 1/1 sha256:ab: entry "big": content truncated: unexpected EOF` {
		t.Fatalf("got %v", err)
	}
}

func TestExtractMissingDir(t *testing.T) {
	err := Extract(context.Background(), filepath.Join(t.TempDir(), "nope"), bytes.NewReader(nil))
	if !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("got %v", err)
	}
}

func TestExtractMetadata(t *testing.T) {
	root := t.TempDir()
	mtime := time.Date(2001, 2, 3, 4, 5, 6, 0, time.UTC)
	at := func(e ent) ent { e.h.ModTime = mtime; return e }
	layer := tarOf(t,
		at(dir("ro", mode(0o555))),
		at(file("ro/f", "f", mode(0o4750), owner(1000, 50))),
		at(symlink("ro/s", "f", owner(7, 8))),
		at(fifo("ro/p", mode(0o600))),
		at(dir("sticky", mode(0o1777))),
		at(file("x", "x", xattr("user.lading", "yes"))),
		at(dir("./", mode(0o750))),
	)
	if err := Extract(context.Background(), root, bytes.NewReader(layer), WithXattrs()); err != nil {
		t.Fatal(err)
	}
	want := []string{
		"ro dir 0555", "ro/f file 4750 @1000:50 f", "ro/p fifo 0600", "ro/s sym 0777 @7:8 f",
		"sticky dir 1777", "x file 0644 x",
	}
	got := listDir(t, root)
	if os.Geteuid() != 0 {
		want, got = withoutOwners(want), withoutOwners(got)
	}
	if diff := cmpLines(want, got); diff != "" {
		t.Errorf("tree (-want +got):\n%s", diff)
	}
	for _, p := range []string{"ro", "ro/f", "ro/s", "ro/p", "sticky", "x", "."} {
		fi, err := os.Lstat(filepath.Join(root, p))
		if err != nil {
			t.Fatal(err)
		}
		if !fi.ModTime().Equal(mtime) {
			t.Errorf("%s: mtime %v, want %v", p, fi.ModTime(), mtime)
		}
	}
	if fi, _ := os.Stat(root); fi.Mode().Perm() != 0o750 {
		t.Errorf("root mode %v", fi.Mode())
	}
	buf := make([]byte, 16)
	n, err := unix.Lgetxattr(filepath.Join(root, "x"), "user.lading", buf)
	if err != nil || string(buf[:n]) != "yes" {
		t.Errorf("xattr: %q %v", buf[:n], err)
	}
}

func TestExtractIgnoreOwners(t *testing.T) {
	testenv.Root(t, "files owned by another user")
	root := t.TempDir()
	layer := tarOf(t, file("f", "f", owner(1000, 1000)))
	if err := Extract(context.Background(), root, bytes.NewReader(layer), IgnoreOwners()); err != nil {
		t.Fatal(err)
	}
	fi, _ := os.Lstat(filepath.Join(root, "f"))
	if st := fi.Sys().(*syscall.Stat_t); st.Uid != 0 {
		t.Errorf("uid %d", st.Uid)
	}
}

func TestExtractDevices(t *testing.T) {
	root := t.TempDir()
	layer := tarOf(t, chardev("dev/null", 1, 3), mk(tarHeaderBlock("dev/loop0", 7, 0), "", nil))
	if err := Extract(context.Background(), root, bytes.NewReader(layer), AllowDevices()); err != nil {
		t.Fatal(err)
	}
	got := listDir(t, root)
	want := []string{"dev dir 0755", "dev/loop0 block 0660 7:0", "dev/null char 0666 1:3"}
	if os.Geteuid() != 0 {
		want = []string{"dev dir 0755"} // skipped with a warning
	}
	if diff := cmpLines(want, got); diff != "" {
		t.Errorf("tree (-want +got):\n%s", diff)
	}
}
