package layer

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/lading-dev/lading/internal/errdefs"
)

func TestExportErrors(t *testing.T) {
	for _, tc := range []struct {
		name   string
		layers [][]ent
		opts   []Option
		class  error
		want   string
	}{
		{
			name:   "hostile entry names the layer",
			layers: [][]ent{{file("a", "a")}, {file("../../etc/passwd", "x")}, {file("b", "b")}},
			class:  errdefs.ErrInvalidArgument,
			want:   `layer 2/3: entry "../../etc/passwd": path escapes the layer root`,
		},
		{
			name:   "hard link to nothing",
			layers: [][]ent{{file("a", "a")}, {hardlink("p", "missing")}},
			class:  errdefs.ErrInvalidArgument,
			want:   `layer 2/2: entry "p": hard link target "missing" not found in the layers below`,
		},
		{
			name:   "hard link to a removed target",
			layers: [][]ent{{file("t", "t")}, {whiteout("t")}, {hardlink("p", "t")}},
			class:  errdefs.ErrInvalidArgument,
			want:   `layer 3/3: entry "p": hard link target "t" is removed by layer 2/3`,
		},
		{
			name:   "hard link to a target below an opaque dir",
			layers: [][]ent{{file("d/t", "t")}, {opaque("d")}, {hardlink("p", "d/t")}},
			class:  errdefs.ErrInvalidArgument,
			want:   `layer 3/3: entry "p": hard link target "d/t" is removed by layer 2/3`,
		},
		{
			name:   "hard link to a lower directory",
			layers: [][]ent{{dir("t")}, {hardlink("p", "t")}},
			class:  errdefs.ErrInvalidArgument,
			want:   `layer 2/2: entry "p": hard link target "t" is a directory in layer 1/2`,
		},
		{
			name:   "hard link to an implied lower directory",
			layers: [][]ent{{file("t/x", "x")}, {hardlink("p", "t")}},
			class:  errdefs.ErrInvalidArgument,
			want:   `layer 2/2: entry "p": hard link target "t" is a directory in layer 1/2`,
		},
		{
			name:   "hard link to a name a later entry of its layer removed",
			layers: [][]ent{{file("d/t", "t"), file("d", "now a file"), dir("d"), hardlink("p", "d/t")}},
			class:  errdefs.ErrInvalidArgument,
			want:   `layer 1/1: entry "p": hard link target "d/t" was removed by a later entry of the layer`,
		},
		{
			name:   "truncated layer",
			layers: nil, // filled below
			class:  errdefs.ErrCorrupt,
			want:   `layer 1/2: entry "big": content truncated: unexpected EOF`,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			layers := stackOf(t, tc.layers...)
			if tc.layers == nil {
				layers = [][]byte{truncate(tarOf(t, file("big", strings.Repeat("x", 3000))), 1500), tarOf(t, whiteout("big"))}
			}
			_, err := export(t, layers, tc.opts...)
			if !errors.Is(err, tc.class) || err.Error() != tc.want {
				t.Fatalf("error\n got %v\nwant %s (%v)", err, tc.want, tc.class)
			}
		})
	}
}

func TestExportHiddenBrokenLinkIsFine(t *testing.T) {
	// A hard link nobody sees needs no target.
	layers := stackOf(t, []ent{file("a", "a")}, []ent{hardlink("p", "missing")}, []ent{whiteout("p")})
	out, err := export(t, layers)
	if err != nil {
		t.Fatal(err)
	}
	if got := listTar(t, out); len(got) != 1 {
		t.Fatalf("got %v", got)
	}
}

func TestExportOpenError(t *testing.T) {
	boom := errdefs.NotFound(errors.New("blob sha256:ab not found"))
	src := []Source{{Name: "layer 1/1 sha256:ab", Open: func(context.Context) (io.ReadCloser, error) { return nil, boom }}}
	err := Export(context.Background(), io.Discard, src)
	if !errdefs.IsNotFound(err) || err.Error() != "layer 1/1 sha256:ab: blob sha256:ab not found" {
		t.Fatalf("got %v", err)
	}
}

func TestExportHeaders(t *testing.T) {
	layers := stackOf(t,
		[]ent{
			dir("d", xattr("user.dir", "1"), owner(10, 20)),
			file("d/f", "data", xattr("user.a", "b"), xattr("security.capability", "\x01\x02")),
			hardlink("d/g", "d/f"),
			chardev("dev/null", 1, 3),
			mk(tar.Header{Typeflag: tar.TypeReg, Name: "pax", Mode: 0o100644, Uname: "root", Gname: "wheel",
				AccessTime: testTime.Add(5), ChangeTime: testTime.Add(7), PAXRecords: map[string]string{"LIBARCHIVE.creationtime": "1"}}, "p", nil),
		},
		[]ent{file("top", "t")},
	)
	out, err := export(t, layers) // devices pass, as docker export writes them
	if err != nil {
		t.Fatal(err)
	}
	var got []tar.Header
	tr := tar.NewReader(bytes.NewReader(out))
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		h.Format = 0
		got = append(got, *h)
	}
	want := []tar.Header{
		{Typeflag: tar.TypeReg, Name: "top", Mode: 0o644, Size: 1, ModTime: testTime},
		{Typeflag: tar.TypeReg, Name: "d/f", Mode: 0o644, Size: 4, ModTime: testTime,
			PAXRecords: map[string]string{"SCHILY.xattr.user.a": "b", "SCHILY.xattr.security.capability": "\x01\x02"},
			Xattrs:     map[string]string{"user.a": "b", "security.capability": "\x01\x02"}},
		// A hard link carries its file's header, as GNU tar writes it.
		{Typeflag: tar.TypeLink, Name: "d/g", Linkname: "d/f", Mode: 0o644, ModTime: testTime,
			PAXRecords: map[string]string{"SCHILY.xattr.user.a": "b", "SCHILY.xattr.security.capability": "\x01\x02"},
			Xattrs:     map[string]string{"user.a": "b", "security.capability": "\x01\x02"}},
		{Typeflag: tar.TypeChar, Name: "dev/null", Mode: 0o666, Devmajor: 1, Devminor: 3, ModTime: testTime},
		{Typeflag: tar.TypeReg, Name: "pax", Mode: 0o644, Size: 1, Uname: "root", Gname: "wheel", ModTime: testTime},
		{Typeflag: tar.TypeDir, Name: "d/", Mode: 0o755, Uid: 10, Gid: 20, ModTime: testTime,
			PAXRecords: map[string]string{"SCHILY.xattr.user.dir": "1"}, Xattrs: map[string]string{"user.dir": "1"}},
		{Typeflag: tar.TypeDir, Name: "dev/", Mode: 0o755, ModTime: time.Unix(0, 0)},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("headers (-want +got):\n%s", diff)
	}
	again, err := export(t, layers)
	if err != nil || !bytes.Equal(out, again) {
		t.Errorf("Export is not deterministic (err %v)", err)
	}
}

func TestExportEmpty(t *testing.T) {
	out, err := export(t, nil)
	if err != nil || len(out) != 1024 {
		t.Fatalf("empty export: %d bytes, %v", len(out), err)
	}
	out, err = export(t, [][]byte{nil, {}})
	if err != nil || len(out) != 1024 {
		t.Fatalf("export of empty layers: %d bytes, %v", len(out), err)
	}
}
