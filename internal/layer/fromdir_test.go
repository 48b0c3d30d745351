package layer

import (
	"archive/tar"
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/sys/unix"

	"github.com/lading-dev/lading/internal/errdefs"
)

// makeTree builds a directory with every kind of entry FromDir handles.
func makeTree(t *testing.T) (parent, dir string) {
	t.Helper()
	parent = t.TempDir()
	dir = filepath.Join(parent, "tree")
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.WriteFile(filepath.Join(parent, "outside"), []byte("outside"), 0o644))
	must(os.MkdirAll(filepath.Join(dir, "usr/bin"), 0o755))
	must(os.MkdirAll(filepath.Join(dir, "etc"), 0o700))
	must(os.MkdirAll(filepath.Join(dir, "tmp"), 0o755))
	must(os.Chmod(filepath.Join(dir, "tmp"), 0o1777))
	must(os.WriteFile(filepath.Join(dir, "usr/bin/su"), []byte("su"), 0o755))
	must(os.Chmod(filepath.Join(dir, "usr/bin/su"), 0o4755))
	must(os.WriteFile(filepath.Join(dir, "etc/passwd"), []byte("root:x:0:0"), 0o644))
	must(os.Link(filepath.Join(dir, "usr/bin/su"), filepath.Join(dir, "usr/bin/su2")))
	must(os.Link(filepath.Join(dir, "usr/bin/su"), filepath.Join(dir, "a-first-link")))
	must(os.Symlink("../outside", filepath.Join(dir, "escape")))
	must(os.Symlink("/etc/shadow", filepath.Join(dir, "abs")))
	must(os.Symlink("usr/bin", filepath.Join(dir, "bin")))
	must(unix.Mkfifo(filepath.Join(dir, "fifo"), 0o600))
	must(os.WriteFile(filepath.Join(dir, "empty"), nil, 0o640))
	must(unix.Lsetxattr(filepath.Join(dir, "etc/passwd"), "user.lading", []byte("x"), 0))
	if os.Geteuid() == 0 {
		must(unix.Mknod(filepath.Join(dir, "null"), unix.S_IFCHR|0o666, int(unix.Mkdev(1, 3))))
		must(os.Lchown(filepath.Join(dir, "etc/passwd"), 1000, 1001))
	}
	// Mtimes last: creating entries changes their directories' times.
	mt := time.Date(2020, 5, 6, 7, 8, 9, 500, time.UTC)
	filepath.Walk(dir, func(p string, _ os.FileInfo, err error) error {
		if err == nil {
			ts := []unix.Timespec{unix.NsecToTimespec(mt.UnixNano()), unix.NsecToTimespec(mt.UnixNano())}
			err = unix.UtimesNanoAt(unix.AT_FDCWD, p, ts, unix.AT_SYMLINK_NOFOLLOW)
		}
		return err
	})
	return parent, dir
}

func fromDirBytes(t *testing.T, dir string, opts ...Option) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := FromDir(context.Background(), &b, dir, opts...); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func TestFromDir(t *testing.T) {
	_, dir := makeTree(t)
	out := fromDirBytes(t, dir, WithXattrs())
	if again := fromDirBytes(t, dir, WithXattrs()); !bytes.Equal(out, again) {
		t.Error("FromDir is not deterministic")
	}

	// Header by header.
	var got []string
	tr := tar.NewReader(bytes.NewReader(out))
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		s := string(h.Typeflag) + " " + h.Name
		if h.Linkname != "" {
			s += " -> " + h.Linkname
		}
		if h.ModTime.Unix() != 1588748889 || h.ModTime.Nanosecond() != 0 || !h.AccessTime.IsZero() {
			t.Errorf("%s: times %v %v", h.Name, h.ModTime, h.AccessTime)
		}
		if h.Uname != "" || h.Gname != "" {
			t.Errorf("%s: names %q %q", h.Name, h.Uname, h.Gname)
		}
		if v, ok := h.PAXRecords["SCHILY.xattr.user.lading"]; ok {
			s += " xattr=" + v
		}
		got = append(got, s)
	}
	want := []string{
		"0 a-first-link", "2 abs -> /etc/shadow", "2 bin -> usr/bin", "0 empty",
		"2 escape -> ../outside", "5 etc/", "0 etc/passwd xattr=x", "6 fifo",
	}
	if os.Geteuid() == 0 {
		want = append(want, "3 null")
	}
	want = append(want, "5 tmp/", "5 usr/", "5 usr/bin/", "1 usr/bin/su -> a-first-link", "1 usr/bin/su2 -> a-first-link")
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("entries (-want +got):\n%s", diff)
	}

	// The round trip through Walk and Extract gives the same tree.
	if _, err := walkAll(t, out, AllowDevices()); err != nil {
		t.Fatalf("Walk of FromDir output: %v", err)
	}
	if diff := cmpLines(listDir(t, dir), extractTree(t, out, AllowDevices())); diff != "" {
		t.Errorf("FromDir+Extract differs from the tree (-tree +extracted):\n%s", diff)
	}
}

func TestFromDirZero(t *testing.T) {
	_, dir := makeTree(t)
	out := fromDirBytes(t, dir, ZeroTimes(), ZeroOwners())
	tr := tar.NewReader(bytes.NewReader(out))
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if h.ModTime.Unix() != 0 || h.Uid != 0 || h.Gid != 0 || h.PAXRecords != nil {
			t.Errorf("%s: mtime %v owner %d:%d pax %v", h.Name, h.ModTime, h.Uid, h.Gid, h.PAXRecords)
		}
	}
	sde := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	tr = tar.NewReader(bytes.NewReader(fromDirBytes(t, dir, WithModTime(sde))))
	h, err := tr.Next()
	if err != nil || !h.ModTime.Equal(sde) {
		t.Errorf("WithModTime: %v %v", h, err)
	}
}

func TestFromDirMissing(t *testing.T) {
	if err := FromDir(context.Background(), io.Discard, filepath.Join(t.TempDir(), "nope")); !os.IsNotExist(unwrapAll(err)) {
		t.Fatalf("got %v", err)
	}
}

func unwrapAll(err error) error {
	for {
		u, ok := err.(interface{ Unwrap() error })
		if !ok {
			return err
		}
		err = u.Unwrap()
	}
}

func TestFromDirWhiteoutName(t *testing.T) {
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "etc"), 0o755)
	os.WriteFile(filepath.Join(dir, "etc/.wh.motd"), nil, 0o644)
	err := FromDir(context.Background(), io.Discard, dir)
	if !errdefs.IsInvalidArgument(err) || !strings.Contains(err.Error(), `"etc/.wh.motd": a name starting with .wh. cannot be stored in a layer`) {
		t.Fatalf("got %v", err)
	}
}
