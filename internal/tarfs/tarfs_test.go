package tarfs

import (
	"archive/tar"
	"bytes"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"testing/fstest"

	"github.com/klauspost/compress/gzip"
	"go.uber.org/goleak"

	"github.com/lading-dev/lading/internal/errdefs"
)

type ent struct {
	name, body, link string
	typ              byte
}

func makeTar(t testing.TB, ents []ent) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range ents {
		h := &tar.Header{Name: e.name, Typeflag: e.typ, Mode: 0o644, Linkname: e.link}
		if e.typ == tar.TypeReg {
			h.Size = int64(len(e.body))
		}
		if e.typ == tar.TypeDir {
			h.Mode = 0o755
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		io.WriteString(tw, e.body)
	}
	tw.Close()
	return buf.Bytes()
}

func writeFile(t testing.TB, b []byte) string {
	p := filepath.Join(t.TempDir(), "a.tar")
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func gz(b []byte) []byte {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	zw.Write(b)
	zw.Close()
	return buf.Bytes()
}

var sample = []ent{
	{name: "manifest.json", body: `[{"Config":"c.json"}]`, typ: tar.TypeReg},
	{name: "./blobs/", typ: tar.TypeDir},
	{name: "blobs/sha256/aa", body: "layer-a", typ: tar.TypeReg},
	{name: "blobs/sha256/bb", body: "old", typ: tar.TypeReg},
	{name: "blobs/sha256/bb", body: "new", typ: tar.TypeReg}, // later wins
	{name: "id1/layer.tar", link: "../blobs/sha256/aa", typ: tar.TypeSymlink},
	{name: "id2/layer.tar", link: "blobs/sha256/aa", typ: tar.TypeLink},
	{name: "loop", link: "loop", typ: tar.TypeSymlink},
	{name: "escape", link: "../../etc/passwd", typ: tar.TypeSymlink},
}

func TestFS(t *testing.T) {
	raw := makeTar(t, sample)
	for _, tc := range []struct {
		name string
		data []byte
	}{{"plain", raw}, {"gzip", gz(raw)}} {
		t.Run(tc.name, func(t *testing.T) {
			a, err := Open(writeFile(t, tc.data), WithTempDir(t.TempDir()))
			if err != nil {
				t.Fatal(err)
			}
			defer a.Close()
			for name, want := range map[string]string{
				"manifest.json":   `[{"Config":"c.json"}]`,
				"blobs/sha256/bb": "new",
				"id1/layer.tar":   "layer-a",
				"id2/layer.tar":   "layer-a",
			} {
				got, err := fs.ReadFile(a, name)
				if err != nil || string(got) != want {
					t.Errorf("ReadFile(%s) = %q, %v; want %q", name, got, err, want)
				}
			}
			for _, bad := range []string{"loop", "escape", "missing", "../x"} {
				if _, err := a.Open(bad); err == nil {
					t.Errorf("Open(%q) succeeded", bad)
				}
			}
		})
	}
}

func TestFSContract(t *testing.T) {
	a, err := Open(writeFile(t, makeTar(t, sample[:7])))
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	if err := fstest.TestFS(a, "manifest.json", "blobs/sha256/aa", "id1/layer.tar", "id2/layer.tar"); err != nil {
		t.Error(err)
	}
}

func TestHostile(t *testing.T) {
	tests := []struct {
		name  string
		data  []byte
		class error
		msg   string
	}{
		{"dotdot", makeTar(t, []ent{{name: "../evil", typ: tar.TypeReg}}), errdefs.ErrInvalidArgument, `"../evil"`},
		{"absolute", makeTar(t, []ent{{name: "/etc/passwd", typ: tar.TypeReg}}), errdefs.ErrInvalidArgument, `"/etc/passwd"`},
		{"hardlink out", makeTar(t, []ent{{name: "x", link: "../../y", typ: tar.TypeLink}}), errdefs.ErrInvalidArgument, "hard link"},
		{"truncated", makeTar(t, sample)[:1100], errdefs.ErrCorrupt, "manifest.json"},
		{"not a tar", []byte("this is not a tar archive, just text that goes on for a while............"), errdefs.ErrCorrupt, ""},
		{"bad gzip", append([]byte{0x1f, 0x8b}, bytes.Repeat([]byte{1}, 40)...), errdefs.ErrCorrupt, "gzip"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, err := Open(writeFile(t, tt.data), WithTempDir(t.TempDir()))
			if err == nil {
				a.Close()
				t.Fatal("accepted")
			}
			if !errors.Is(err, tt.class) || !strings.Contains(err.Error(), tt.msg) {
				t.Fatalf("err = %v; want class %v mentioning %s", err, tt.class, tt.msg)
			}
		})
	}
}

func FuzzOpen(f *testing.F) {
	raw := makeTar(f, sample)
	f.Add(raw)
	f.Add(gz(raw))
	f.Add(raw[:700])
	f.Fuzz(func(t *testing.T, data []byte) {
		dir := t.TempDir()
		p := filepath.Join(dir, "f.tar")
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		a, err := Open(p, WithTempDir(dir))
		if err != nil {
			return
		}
		defer a.Close()
		fs.WalkDir(a, ".", func(p string, d fs.DirEntry, err error) error {
			if err == nil && !d.IsDir() {
				if f, err := a.Open(p); err == nil {
					io.Copy(io.Discard, f)
					f.Close()
				}
			}
			return nil
		})
	})
}

// FromReader stops reading its stream when it stops early (a corrupt gzip
// header, a temp dir it cannot write): no goroutine is left reading the
// stream, and nothing is read from it afterwards. Before, a copying
// goroutine stayed blocked on a pipe nobody read, forever.
func TestFromReaderStopsEarly(t *testing.T) {
	for _, tc := range []struct {
		name   string
		stream []byte
		tmpDir string
	}{
		{"corrupt gzip header", append([]byte{0x1f, 0x8b, 0xff, 0xff}, bytes.Repeat([]byte{'x'}, 1<<20)...), ""},
		{"no temp dir", makeTar(t, []ent{{name: "a", body: strings.Repeat("a", 1<<20), typ: tar.TypeReg}}), "/nonexistent/lading-tarfs"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := goleak.IgnoreCurrent()
			r := &countingReader{r: bytes.NewReader(tc.stream)}
			if fsys, err := FromReader(r, "test stream", WithTempDir(tc.tmpDir)); err == nil {
				fsys.Close()
				t.Fatal("FromReader succeeded")
			}
			n := r.n.Load()
			goleak.VerifyNone(t, before)
			if later := r.n.Load(); later != n {
				t.Errorf("%d bytes read from the stream after FromReader returned", later-n)
			}
		})
	}
}

type countingReader struct {
	r io.Reader
	n atomic.Int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n.Add(int64(n))
	return n, err
}
