package layer

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/lading-dev/lading/internal/errdefs"
)

type seen struct {
	Name, Kind, Link, Content string
}

func walkAll(t testing.TB, data []byte, opts ...Option) ([]seen, error) {
	t.Helper()
	var got []seen
	err := Walk(context.Background(), bytes.NewReader(data), func(e *Entry) error {
		b, err := io.ReadAll(e)
		if err != nil {
			return err
		}
		got = append(got, seen{e.Name, e.Kind.String(), e.Linkname, string(b)})
		return nil
	}, opts...)
	return got, err
}

func TestWalkEntries(t *testing.T) {
	layer := tarOf(t,
		dir("./"),
		dir("./etc/"),
		file("./etc/passwd", "root:x:0:0"),
		file("etc//group", "root:x:0:"),
		file("a/../b", "b"),
		mk(tar.Header{Typeflag: tar.TypeCont, Name: "cont", Mode: 0o644}, "c", []mod{size(1)}),
		mk(tar.Header{Typeflag: tar.TypeRegA, Name: "rega", Mode: 0o644}, "r", []mod{size(1)}),
		symlink("etc/lnk", "../../../abs/../x"),
		hardlink("etc/hard", "./etc/passwd"),
		fifo("run/f"),
		whiteout("etc/motd"),
		opaque("var/cache"),
		opaque("."),
		dir(".wh..wh.plnk"),
		file(".wh..wh.plnk/1.2", "aufs"),
		ent{h: tar.Header{Typeflag: tar.TypeXGlobalHeader, PAXRecords: map[string]string{"comment": "x"}}},
		file("last", ""),
	)
	got, err := walkAll(t, layer)
	if err != nil {
		t.Fatal(err)
	}
	want := []seen{
		{".", "dir", "", ""},
		{"etc", "dir", "", ""},
		{"etc/passwd", "regular", "", "root:x:0:0"},
		{"etc/group", "regular", "", "root:x:0:"},
		{"b", "regular", "", "b"},
		{"cont", "regular", "", "c"},
		{"rega", "regular", "", "r"},
		{"etc/lnk", "symlink", "../../../abs/../x", ""},
		{"etc/hard", "hardlink", "etc/passwd", ""},
		{"run/f", "fifo", "", ""},
		{"etc/motd", "whiteout", "", ""},
		{"var/cache", "opaque", "", ""},
		{".", "opaque", "", ""},
		{"last", "regular", "", ""},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("entries (-want +got):\n%s", diff)
	}
}

func TestWalkPartialReads(t *testing.T) {
	big := strings.Repeat("0123456789", 10000)
	layer := tarOf(t, file("a", big), file("b", "bee"), file("c", big))
	var names []string
	err := Walk(context.Background(), bytes.NewReader(layer), func(e *Entry) error {
		names = append(names, e.Name)
		switch e.Name {
		case "a":
			buf := make([]byte, 7)
			if _, err := io.ReadFull(e, buf); err != nil || string(buf) != "0123456" {
				t.Errorf("a: %q %v", buf, err)
			}
		case "b":
			b, _ := io.ReadAll(e)
			if string(b) != "bee" || e.Size() != 3 {
				t.Errorf("b: %q size %d", b, e.Size())
			}
		}
		return nil // c is skipped unread
	})
	if err != nil || strings.Join(names, ",") != "a,b,c" {
		t.Fatalf("names %v, err %v", names, err)
	}
}

func TestWalkStop(t *testing.T) {
	layer := tarOf(t, file("a", "a"), file("b", "b"), file("../bad", "x"))
	n := 0
	err := Walk(context.Background(), bytes.NewReader(layer), func(e *Entry) error {
		n++
		return fs.SkipAll
	})
	if err != nil || n != 1 {
		t.Fatalf("SkipAll: n=%d err=%v", n, err)
	}

	boom := errors.New("boom")
	err = Walk(context.Background(), bytes.NewReader(layer), func(e *Entry) error {
		if e.Name == "b" {
			return boom
		}
		return nil
	}, WithName("layer 1/1"))
	if !errors.Is(err, boom) || err.Error() != `layer 1/1: entry "b": boom` {
		t.Fatalf("callback error: %v", err)
	}

	ctx, cancel := context.WithCancel(context.Background())
	err = Walk(ctx, bytes.NewReader(layer), func(e *Entry) error { cancel(); return nil })
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("cancel: %v", err)
	}
}

// truncate cuts a layer at n bytes.
func truncate(b []byte, n int) []byte { return b[:n:n] }

func TestWalkRejects(t *testing.T) {
	long := strings.Repeat("x/", MaxNameLen/2) + "x"
	good := tarOf(t, file("etc/passwd", strings.Repeat("r", 1000)), file("etc/shadow", "s"))
	huge := tarOf(t, file("small", "s"))
	{
		// A header that declares 1 TiB of content in a stream of a few bytes.
		var b bytes.Buffer
		tw := tar.NewWriter(&b)
		tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: "huge", Size: 1 << 40, Mode: 0o644})
		tw.Write([]byte("only this"))
		tw.Flush()
		huge = b.Bytes()[:b.Len()]
	}
	for _, tc := range []struct {
		name  string
		layer []byte
		opts  []Option
		class error
		want  string // the whole error text
	}{
		{"dotdot", tarOf(t, file("../etc/passwd", "x")), nil, errdefs.ErrInvalidArgument,
			`layer 2/5 sha256:abcd: entry "../etc/passwd": path escapes the layer root`},
		{"dotdot inside", tarOf(t, file("a/b/../../../x", "x")), nil, errdefs.ErrInvalidArgument,
			`layer 2/5 sha256:abcd: entry "a/b/../../../x": path escapes the layer root`},
		{"absolute", tarOf(t, file("/etc/passwd", "x")), nil, errdefs.ErrInvalidArgument,
			`layer 2/5 sha256:abcd: entry "/etc/passwd": absolute path not allowed`},
		{"long name", tarOf(t, file(long, "x")), nil, errdefs.ErrInvalidArgument,
			`name longer than 65536 bytes`},
		{"hard link escapes", tarOf(t, hardlink("x", "../../etc/shadow")), nil, errdefs.ErrInvalidArgument,
			`layer 2/5 sha256:abcd: entry "x": hard link target "../../etc/shadow": path escapes the layer root`},
		{"hard link absolute", tarOf(t, hardlink("x", "/etc/shadow")), nil, errdefs.ErrInvalidArgument,
			`entry "x": hard link target "/etc/shadow": absolute path not allowed`},
		{"hard link long", tarOf(t, hardlink("x", long)), nil, errdefs.ErrInvalidArgument,
			`name longer than 65536 bytes`},
		{"hard link to itself", tarOf(t, hardlink("./x", "x")), nil, errdefs.ErrInvalidArgument,
			`entry "./x": hard link to itself`},
		{"hard link to root", tarOf(t, hardlink("x", "./")), nil, errdefs.ErrInvalidArgument,
			`entry "x": hard link to the root directory`},
		{"hard link to a dir", tarOf(t, dir("d"), hardlink("x", "d")), nil, errdefs.ErrInvalidArgument,
			`entry "x": hard link to directory "d"`},
		{"hard link through a symlink", tarOf(t, symlink("evil", "/etc"), hardlink("x", "evil/shadow")), nil, errdefs.ErrInvalidArgument,
			`entry "x": hard link target "evil/shadow" goes through symlink "evil" of this layer`},
		{"symlink parent", tarOf(t, symlink("evil", "/etc"), file("evil/passwd", "x")), nil, errdefs.ErrInvalidArgument,
			`entry "evil/passwd": parent "evil" is a symlink in this layer (writing through it is not allowed)`},
		{"symlink grandparent", tarOf(t, symlink("evil", "."), file("evil/a/b", "x")), nil, errdefs.ErrInvalidArgument,
			`parent "evil" is a symlink in this layer`},
		{"whiteout below a symlink", tarOf(t, symlink("evil", "/etc"), whiteout("evil/passwd")), nil, errdefs.ErrInvalidArgument,
			`parent "evil" is a symlink in this layer`},
		{"file parent", tarOf(t, file("a", "x"), file("a/b", "x")), nil, errdefs.ErrInvalidArgument,
			`entry "a/b": parent "a" is not a directory in this layer`},
		{"file over implied dir", tarOf(t, file("a/b", "x"), file("a", "x")), nil, errdefs.ErrInvalidArgument,
			`entry "a": a regular where this layer has a directory`},
		{"symlink over dir", tarOf(t, dir("a"), symlink("a", "/")), nil, errdefs.ErrInvalidArgument,
			`entry "a": a symlink where this layer has a directory`},
		{"duplicate file", tarOf(t, file("a", "1"), file("./a", "2")), nil, errdefs.ErrInvalidArgument,
			`entry "./a": duplicate entry`},
		{"dir after file", tarOf(t, file("a", "1"), dir("a")), nil, errdefs.ErrInvalidArgument,
			`entry "a": duplicate entry (a directory replaces an earlier non-directory)`},
		{"duplicate whiteout", tarOf(t, whiteout("a"), whiteout("a")), nil, errdefs.ErrInvalidArgument,
			`entry ".wh.a": duplicate entry`},
		{"char device", tarOf(t, chardev("dev/null", 1, 3)), nil, errdefs.ErrInvalidArgument,
			`entry "dev/null": device nodes are not allowed`},
		{"block device", tarOf(t, mk(tar.Header{Typeflag: tar.TypeBlock, Name: "sda", Mode: 0o600}, "", nil)), nil, errdefs.ErrInvalidArgument,
			`entry "sda": device nodes are not allowed`},
		{"symlink target long", tarOf(t, symlink("l", long)), nil, errdefs.ErrInvalidArgument,
			`entry "l": symlink target longer than 4096 bytes`},
		{"symlink target empty", tarOf(t, symlink("l", "")), nil, errdefs.ErrInvalidArgument,
			`entry "l": symlink with an empty target`},
		{"root as file", tarOf(t, file(".", "")), nil, errdefs.ErrInvalidArgument,
			`entry ".": the root must be a directory, not a regular`},
		{"whiteout with children", tarOf(t, file(".wh.a/b", "")), nil, errdefs.ErrInvalidArgument,
			`entry ".wh.a/b": whiteout ".wh.a" has entries below it`},
		{"whiteout of nothing", tarOf(t, file("d/.wh.", "")), nil, errdefs.ErrInvalidArgument,
			`entry "d/.wh.": whiteout of an invalid name`},
		{"whiteout of dotdot", tarOf(t, file("d/.wh..", "")), nil, errdefs.ErrInvalidArgument,
			`entry "d/.wh..": whiteout of an invalid name`},
		{"unknown type", tarOf(t, mk(tar.Header{Typeflag: 'V', Name: "vol"}, "", nil)), nil, errdefs.ErrInvalidArgument,
			`entry "vol": unsupported entry type 'V'`},
		{"truncated content", truncate(good, 512+300), nil, errdefs.ErrCorrupt,
			`layer 2/5 sha256:abcd: entry "etc/passwd": content truncated: unexpected EOF`},
		{"truncated header", truncate(good, 512+1024+100), nil, errdefs.ErrCorrupt,
			`entry "etc/passwd": stream truncated: unexpected EOF`},
		{"truncated second content", truncate(good, 512+1024+512), nil, errdefs.ErrCorrupt,
			`entry "etc/shadow": content truncated: unexpected EOF`},
		{"huge declared size", huge, nil, errdefs.ErrCorrupt,
			`entry "huge": content truncated: unexpected EOF`},
		{"garbage", bytes.Repeat([]byte("garbage!"), 100), nil, errdefs.ErrInvalidArgument,
			`layer 2/5 sha256:abcd: unreadable header: archive/tar: invalid tar header`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			opts := append([]Option{WithName("layer 2/5 sha256:abcd")}, tc.opts...)
			_, err := walkAll(t, tc.layer, opts...)
			if err == nil {
				t.Fatal("no error")
			}
			if !errors.Is(err, tc.class) {
				t.Errorf("error %q is not of class %v", err, tc.class)
			}
			var le *Error
			if !errors.As(err, &le) {
				t.Errorf("error %q is not an *Error", err)
			}
			if got := err.Error(); got != tc.want && !strings.Contains(got, tc.want) {
				t.Errorf("error\n got %s\nwant %s", got, tc.want)
			}
		})
	}
}

// Truncation found while skipping unread content names the entry too.
func TestWalkTruncatedSkip(t *testing.T) {
	layer := truncate(tarOf(t, file("a", "a"), file("big", strings.Repeat("x", 5000))), 2000)
	err := Walk(context.Background(), bytes.NewReader(layer), func(e *Entry) error { return nil }, WithName("L"))
	if !errdefs.IsCorrupt(err) || !errors.Is(err, io.ErrUnexpectedEOF) || err.Error() != `L: entry "big": stream truncated: unexpected EOF` {
		t.Fatalf("walk error: %v", err)
	}
}

func TestWalkDevicesAllowed(t *testing.T) {
	got, err := walkAll(t, tarOf(t, chardev("dev/null", 1, 3)), AllowDevices())
	if err != nil || len(got) != 1 || got[0].Kind != "chardev" {
		t.Fatalf("got %v, %v", got, err)
	}
}

// A callback that reads content of a truncated entry gets the classed error.
func TestWalkTruncatedRead(t *testing.T) {
	layer := truncate(tarOf(t, file("big", strings.Repeat("x", 5000))), 2000)
	err := Walk(context.Background(), bytes.NewReader(layer), func(e *Entry) error {
		_, err := io.Copy(io.Discard, e)
		if !errdefs.IsCorrupt(err) || !strings.Contains(err.Error(), `entry "big": content truncated: unexpected EOF`) {
			t.Errorf("read error: %v", err)
		}
		return err
	}, WithName("L"))
	if !errdefs.IsCorrupt(err) || err.Error() != `L: entry "big": content truncated: unexpected EOF` {
		t.Fatalf("walk error: %v", err)
	}
}

func TestKindString(t *testing.T) {
	var names []string
	for k := Kind(0); k <= KindOpaque+1; k++ {
		names = append(names, k.String())
	}
	if got := fmt.Sprint(names); got != "[invalid regular dir symlink hardlink fifo chardev blockdev whiteout opaque invalid]" {
		t.Error(got)
	}
}
