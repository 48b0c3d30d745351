package layer

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
	"unicode"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"golang.org/x/sys/unix"
)

// Test fixtures: layers built in memory with archive/tar.

var testTime = time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)

type ent struct {
	h    tar.Header
	body string
}

type mod func(*ent)

func mode(m int64) mod       { return func(e *ent) { e.h.Mode = m } }
func owner(uid, gid int) mod { return func(e *ent) { e.h.Uid, e.h.Gid = uid, gid } }
func size(n int64) mod       { return func(e *ent) { e.h.Size = n } }
func typ(t byte) mod         { return func(e *ent) { e.h.Typeflag = t } }
func xattr(k, v string) mod {
	return func(e *ent) {
		if e.h.PAXRecords == nil {
			e.h.PAXRecords = map[string]string{}
		}
		e.h.PAXRecords["SCHILY.xattr."+k] = v
	}
}

func mk(h tar.Header, body string, mods []mod) ent {
	h.ModTime = testTime
	e := ent{h: h, body: body}
	if h.Typeflag == tar.TypeReg {
		e.h.Size = int64(len(body))
	}
	for _, m := range mods {
		m(&e)
	}
	return e
}

func file(name, body string, mods ...mod) ent {
	return mk(tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: 0o644}, body, mods)
}
func dir(name string, mods ...mod) ent {
	return mk(tar.Header{Typeflag: tar.TypeDir, Name: name, Mode: 0o755}, "", mods)
}
func symlink(name, target string, mods ...mod) ent {
	return mk(tar.Header{Typeflag: tar.TypeSymlink, Name: name, Linkname: target, Mode: 0o777}, "", mods)
}
func hardlink(name, target string, mods ...mod) ent {
	return mk(tar.Header{Typeflag: tar.TypeLink, Name: name, Linkname: target, Mode: 0o644}, "", mods)
}
func fifo(name string, mods ...mod) ent {
	return mk(tar.Header{Typeflag: tar.TypeFifo, Name: name, Mode: 0o644}, "", mods)
}
func chardev(name string, major, minor int64, mods ...mod) ent {
	return mk(tar.Header{Typeflag: tar.TypeChar, Name: name, Mode: 0o666, Devmajor: major, Devminor: minor}, "", mods)
}
func whiteout(p string) ent { return file(path.Join(path.Dir(p), ".wh."+path.Base(p)), "") }
func opaque(d string) ent   { return file(path.Join(d, ".wh..wh..opq"), "") }

// tarOf returns a layer holding ents in order. It writes headers as given,
// so it can make archives that break the rules.
func tarOf(t testing.TB, ents ...ent) []byte {
	t.Helper()
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	for _, e := range ents {
		h := e.h
		if err := tw.WriteHeader(&h); err != nil {
			t.Fatalf("fixture %q: %v", h.Name, err)
		}
		if _, err := io.WriteString(tw, e.body); err != nil {
			t.Fatalf("fixture %q: %v", h.Name, err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// stackOf builds one tar per layer.
func stackOf(t testing.TB, layers ...[]ent) [][]byte {
	out := make([][]byte, len(layers))
	for i, l := range layers {
		out[i] = tarOf(t, l...)
	}
	return out
}

func sourcesOf(layers [][]byte) []Source {
	src := make([]Source, len(layers))
	for i, data := range layers {
		src[i] = Source{
			Name: fmt.Sprintf("layer %d/%d", i+1, len(layers)),
			Open: func(context.Context) (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(data)), nil },
		}
	}
	return src
}

func export(t testing.TB, layers [][]byte, opts ...Option) ([]byte, error) {
	t.Helper()
	var out bytes.Buffer
	err := Export(context.Background(), &out, sourcesOf(layers), opts...)
	return out.Bytes(), err
}

// Listings: one line per path ("PATH TYPE MODE [@uid:gid] [DATA]") and one per
// hard-link group ("= A B ..."), sorted. The root is left out.

type node struct {
	typ   string
	mode  int64
	uid   int
	gid   int
	data  string
	inode uint64
}

func (n node) line(p string) string {
	s := fmt.Sprintf("%s %s %04o", p, n.typ, n.mode)
	if n.uid != 0 || n.gid != 0 {
		s += fmt.Sprintf(" @%d:%d", n.uid, n.gid)
	}
	if n.data != "" {
		s += " " + n.data
	}
	return s
}

func contentID(b []byte) string {
	printable := len(b) <= 40
	for _, r := range string(b) {
		if !unicode.IsPrint(r) || r == ' ' {
			printable = false
		}
	}
	if printable {
		return string(b)
	}
	sum := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(sum[:8])
}

func listing(nodes map[string]node) []string {
	var out []string
	groups := map[uint64][]string{}
	for p, n := range nodes {
		out = append(out, n.line(p))
		if n.inode != 0 {
			groups[n.inode] = append(groups[n.inode], p)
		}
	}
	for _, g := range groups {
		if len(g) > 1 {
			slices.Sort(g)
			out = append(out, "= "+strings.Join(g, " "))
		}
	}
	slices.Sort(out)
	return out
}

// listTar interprets a merged tar stream the way extraction would, in
// memory, and fails on a path written twice or a link to a missing name.
// A directory that only appears implied by its children is listed with
// type "dir?" so a missing header shows.
func listTar(t testing.TB, data []byte) []string {
	t.Helper()
	nodes := map[string]node{}
	explicit := map[string]bool{}
	tr := tar.NewReader(bytes.NewReader(data))
	var ino uint64
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("merged tar: %v", err)
		}
		p := path.Clean(h.Name)
		if p == "." {
			continue
		}
		if _, dup := nodes[p]; dup && (h.Typeflag != tar.TypeDir || explicit[p]) {
			t.Errorf("merged tar: %q written twice", p)
		}
		for d := path.Dir(p); d != "."; d = path.Dir(d) {
			if _, ok := nodes[d]; !ok {
				nodes[d] = node{typ: "dir?"}
			}
		}
		ino++
		n := node{mode: h.Mode & 0o7777, uid: h.Uid, gid: h.Gid}
		switch h.Typeflag {
		case tar.TypeReg:
			b, err := io.ReadAll(tr)
			if err != nil {
				t.Fatalf("merged tar: %q: %v", p, err)
			}
			n.typ, n.data, n.inode = "file", contentID(b), ino
		case tar.TypeDir:
			n.typ = "dir"
			explicit[p] = true
		case tar.TypeSymlink:
			n.typ, n.data, n.mode = "sym", h.Linkname, 0o777
		case tar.TypeLink:
			target, ok := nodes[path.Clean(h.Linkname)]
			if !ok {
				t.Fatalf("merged tar: hard link %q to %q before its target", p, h.Linkname)
			}
			if target.inode == 0 {
				target.inode = ino
				nodes[path.Clean(h.Linkname)] = target
			}
			n = target
		case tar.TypeFifo:
			n.typ, n.inode = "fifo", ino
		case tar.TypeChar:
			n.typ, n.data, n.inode = "char", fmt.Sprintf("%d:%d", h.Devmajor, h.Devminor), ino
		case tar.TypeBlock:
			n.typ, n.data, n.inode = "block", fmt.Sprintf("%d:%d", h.Devmajor, h.Devminor), ino
		default:
			t.Fatalf("merged tar: %q: type %q", p, h.Typeflag)
		}
		nodes[p] = n
	}
	return listing(nodes)
}

// listDir lists a tree on disk (without following symlinks); hard-link
// groups come from inode numbers.
func listDir(t testing.TB, root string) []string {
	t.Helper()
	nodes := map[string]node{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		if rel == "." {
			return nil
		}
		fi, err := os.Lstat(p)
		if errors.Is(err, fs.ErrNotExist) {
			// overlayfs lists whiteouts of a directory that is in one layer
			// only, but they do not exist.
			return nil
		}
		if err != nil {
			return err
		}
		st := fi.Sys().(*syscall.Stat_t)
		n := node{mode: int64(st.Mode & 0o7777), uid: int(st.Uid), gid: int(st.Gid)}
		switch st.Mode & syscall.S_IFMT {
		case syscall.S_IFREG:
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			n.typ, n.data = "file", contentID(b)
		case syscall.S_IFDIR:
			n.typ = "dir"
		case syscall.S_IFLNK:
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			n.typ, n.data, n.mode = "sym", target, 0o777
		case syscall.S_IFIFO:
			n.typ = "fifo"
		case syscall.S_IFCHR:
			n.typ, n.data = "char", fmt.Sprintf("%d:%d", unix.Major(uint64(st.Rdev)), unix.Minor(uint64(st.Rdev)))
		case syscall.S_IFBLK:
			n.typ, n.data = "block", fmt.Sprintf("%d:%d", unix.Major(uint64(st.Rdev)), unix.Minor(uint64(st.Rdev)))
		default:
			n.typ = "other"
		}
		if n.typ != "dir" && st.Nlink > 1 {
			n.inode = st.Ino
		}
		nodes[filepath.ToSlash(rel)] = n
		return nil
	})
	if err != nil {
		t.Fatalf("list %s: %v", root, err)
	}
	return listing(nodes)
}

func cmpLines(want, got []string) string {
	return cmp.Diff(want, got, cmpopts.EquateEmpty())
}

// withoutOwners drops the owner fields of a listing, for extractions not
// done as root.
func withoutOwners(lines []string) []string {
	out := make([]string, len(lines))
	for i, l := range lines {
		f := strings.Fields(l)
		f = slices.DeleteFunc(f, func(s string) bool { return strings.HasPrefix(s, "@") })
		out[i] = strings.Join(f, " ")
	}
	return out
}

func tarHeaderBlock(name string, major, minor int64) tar.Header {
	return tar.Header{Typeflag: tar.TypeBlock, Name: name, Mode: 0o660, Devmajor: major, Devminor: minor}
}
