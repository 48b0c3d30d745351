// Package storagetest is the conformance suite every storage driver runs:
// the contract written in package storage's documentation, checked.
//
//	func TestConformance(t *testing.T) {
//		storagetest.Run(t, func(t *testing.T) storage.Driver { return newDriver(t) })
//	}
//
// Each subtest gets a fresh, empty driver from the factory.
package storagetest

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/lading-dev/lading/internal/errdefs"
	"github.com/lading-dev/lading/internal/registry/storage"
)

// Options tune the suite to a driver.
type Options struct {
	// LargeSize is the size of the content of the large-file test; a
	// driver that writes in parts makes it span several parts. Default
	// 3 MiB.
	LargeSize int
}

// Run runs the suite against drivers made by newDriver.
func Run(t *testing.T, newDriver func(t *testing.T) storage.Driver, opts ...Options) {
	o := Options{LargeSize: 3 << 20}
	for _, x := range opts {
		if x.LargeSize > 0 {
			o.LargeSize = x.LargeSize
		}
	}
	tests := []struct {
		name string
		fn   func(t *testing.T, d storage.Driver)
	}{
		{"WriteCommitRead", testWriteCommitRead},
		{"InvisibleUntilCommit", testInvisibleUntilCommit},
		{"Cancel", testCancel},
		{"Overwrite", testOverwrite},
		{"ClosedWriter", testClosedWriter},
		{"EmptyFile", testEmptyFile},
		{"ReaderOffset", testReaderOffset},
		{"Missing", testMissing},
		{"StatDirectory", testStatDirectory},
		{"DeleteFile", testDeleteFile},
		{"DeleteTree", testDeleteTree},
		{"Walk", testWalk},
		{"WalkStop", testWalkStop},
		{"Move", testMove},
		{"BadPaths", testBadPaths},
		{"ConcurrentWriters", testConcurrentWriters},
		{"Large", func(t *testing.T, d storage.Driver) { testLarge(t, d, o.LargeSize) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.fn(t, newDriver(t))
		})
	}
}

func write(t *testing.T, d storage.Driver, p string, b []byte) {
	t.Helper()
	if err := storage.WriteAll(context.Background(), d, p, b); err != nil {
		t.Fatalf("write %s: %v", p, err)
	}
}

func read(t *testing.T, d storage.Driver, p string) []byte {
	t.Helper()
	b, err := storage.ReadAll(context.Background(), d, p)
	if err != nil {
		t.Fatalf("read %s: %v", p, err)
	}
	return b
}

func wantClass(t *testing.T, what string, err, class error) {
	t.Helper()
	if !errors.Is(err, class) {
		t.Errorf("%s: got error %v, want class %v", what, err, class)
	}
}

func testWriteCommitRead(t *testing.T, d storage.Driver) {
	ctx := context.Background()
	w, err := d.Writer(ctx, "a/b/c")
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"hello", ", ", "world"} {
		if _, err := io.WriteString(w, s); err != nil {
			t.Fatal(err)
		}
	}
	if w.Size() != 12 {
		t.Errorf("Size = %d, want 12", w.Size())
	}
	if err := w.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if got := string(read(t, d, "a/b/c")); got != "hello, world" {
		t.Errorf("read %q", got)
	}
	fi, err := d.Stat(ctx, "a/b/c")
	if err != nil {
		t.Fatal(err)
	}
	if fi.Size != 12 || fi.IsDir || fi.Path != "a/b/c" || fi.ModTime.IsZero() {
		t.Errorf("Stat = %+v", fi)
	}
}

func testInvisibleUntilCommit(t *testing.T, d storage.Driver) {
	ctx := context.Background()
	w, err := d.Writer(ctx, "x/y")
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(w, "partial")
	_, err = d.Stat(ctx, "x/y")
	wantClass(t, "Stat before commit", err, errdefs.ErrNotFound)
	_, err = d.Reader(ctx, "x/y", 0)
	wantClass(t, "Reader before commit", err, errdefs.ErrNotFound)
	var seen []string
	d.Walk(ctx, "", func(fi storage.FileInfo) error { seen = append(seen, fi.Path); return nil })
	if len(seen) != 0 {
		t.Errorf("Walk before commit saw %v", seen)
	}
	if err := w.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if got := string(read(t, d, "x/y")); got != "partial" {
		t.Errorf("read %q", got)
	}
}

func testCancel(t *testing.T, d storage.Driver) {
	ctx := context.Background()
	w, err := d.Writer(ctx, "c/d")
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(w, "gone")
	if err := w.Cancel(ctx); err != nil {
		t.Fatal(err)
	}
	_, err = d.Stat(ctx, "c/d")
	wantClass(t, "Stat after cancel", err, errdefs.ErrNotFound)
	// Cancel keeps an existing file.
	write(t, d, "c/d", []byte("kept"))
	w, err = d.Writer(ctx, "c/d")
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(w, "replacement")
	w.Cancel(ctx)
	if got := string(read(t, d, "c/d")); got != "kept" {
		t.Errorf("after cancelled overwrite read %q", got)
	}
}

func testOverwrite(t *testing.T, d storage.Driver) {
	write(t, d, "o", []byte("first version, longer"))
	write(t, d, "o", []byte("second"))
	if got := string(read(t, d, "o")); got != "second" {
		t.Errorf("read %q", got)
	}
}

func testClosedWriter(t *testing.T, d storage.Driver) {
	ctx := context.Background()
	w, err := d.Writer(ctx, "closed")
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write([]byte("x")); err == nil {
		t.Error("Write after Commit succeeded")
	}
	if err := w.Commit(ctx); err == nil {
		t.Error("second Commit succeeded")
	}
	if err := w.Cancel(ctx); err == nil {
		t.Error("Cancel after Commit succeeded")
	}
}

func testEmptyFile(t *testing.T, d storage.Driver) {
	write(t, d, "empty", nil)
	if got := read(t, d, "empty"); len(got) != 0 {
		t.Errorf("read %q", got)
	}
	fi, err := d.Stat(context.Background(), "empty")
	if err != nil || fi.Size != 0 {
		t.Errorf("Stat = %+v, %v", fi, err)
	}
}

func testReaderOffset(t *testing.T, d storage.Driver) {
	ctx := context.Background()
	content := []byte("0123456789")
	write(t, d, "off", content)
	for _, off := range []int64{0, 1, 5, 9, 10} {
		rc, err := d.Reader(ctx, "off", off)
		if err != nil {
			t.Errorf("Reader offset %d: %v", off, err)
			continue
		}
		got, err := io.ReadAll(rc)
		rc.Close()
		if err != nil {
			t.Errorf("offset %d: %v", off, err)
		}
		if !bytes.Equal(got, content[off:]) {
			t.Errorf("offset %d: read %q, want %q", off, got, content[off:])
		}
	}
	_, err := d.Reader(ctx, "off", 11)
	wantClass(t, "Reader past the end", err, errdefs.ErrInvalidArgument)
	_, err = d.Reader(ctx, "off", -1)
	wantClass(t, "Reader at negative offset", err, errdefs.ErrInvalidArgument)
}

func testMissing(t *testing.T, d storage.Driver) {
	ctx := context.Background()
	_, err := d.Reader(ctx, "no/such", 0)
	wantClass(t, "Reader", err, errdefs.ErrNotFound)
	_, err = d.Stat(ctx, "no/such")
	wantClass(t, "Stat", err, errdefs.ErrNotFound)
	if err := d.Delete(ctx, "no/such"); err != nil {
		t.Errorf("Delete of a missing path: %v", err)
	}
	err = d.Move(ctx, "no/such", "other")
	wantClass(t, "Move", err, errdefs.ErrNotFound)
	called := false
	if err := d.Walk(ctx, "no/such", func(storage.FileInfo) error { called = true; return nil }); err != nil || called {
		t.Errorf("Walk of a missing path: called %v, err %v", called, err)
	}
}

func testStatDirectory(t *testing.T, d storage.Driver) {
	write(t, d, "dir/sub/file", []byte("x"))
	for _, p := range []string{"dir", "dir/sub"} {
		fi, err := d.Stat(context.Background(), p)
		if err != nil {
			t.Errorf("Stat %s: %v", p, err)
			continue
		}
		if !fi.IsDir {
			t.Errorf("Stat %s: IsDir false", p)
		}
	}
	// A prefix of a name is not a directory.
	_, err := d.Stat(context.Background(), "di")
	wantClass(t, "Stat of a name prefix", err, errdefs.ErrNotFound)
}

func testDeleteFile(t *testing.T, d storage.Driver) {
	ctx := context.Background()
	write(t, d, "del/a", []byte("a"))
	write(t, d, "del/ab", []byte("ab"))
	if err := d.Delete(ctx, "del/a"); err != nil {
		t.Fatal(err)
	}
	_, err := d.Stat(ctx, "del/a")
	wantClass(t, "Stat after delete", err, errdefs.ErrNotFound)
	if got := string(read(t, d, "del/ab")); got != "ab" {
		t.Errorf("sibling with a longer name: read %q", got)
	}
}

func testDeleteTree(t *testing.T, d storage.Driver) {
	ctx := context.Background()
	write(t, d, "tree/a", []byte("a"))
	write(t, d, "tree/b/c", []byte("c"))
	write(t, d, "tree2/keep", []byte("k"))
	if err := d.Delete(ctx, "tree"); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"tree", "tree/a", "tree/b/c"} {
		_, err := d.Stat(ctx, p)
		wantClass(t, "Stat "+p+" after tree delete", err, errdefs.ErrNotFound)
	}
	if got := string(read(t, d, "tree2/keep")); got != "k" {
		t.Errorf("sibling tree: read %q", got)
	}
	// The tree can be written again.
	write(t, d, "tree/a", []byte("again"))
	if got := string(read(t, d, "tree/a")); got != "again" {
		t.Errorf("rewritten: read %q", got)
	}
}

func testWalk(t *testing.T, d storage.Driver) {
	files := map[string]string{
		"w/b/2":   "22",
		"w/a":     "a",
		"w/b/1":   "1",
		"w/a-c/x": "xxx",
		"w/c":     "",
		"other/z": "z",
	}
	for p, c := range files {
		write(t, d, p, []byte(c))
	}
	type entry struct {
		Path string
		Size int64
	}
	walk := func(root string) []entry {
		var got []entry
		err := d.Walk(context.Background(), root, func(fi storage.FileInfo) error {
			if fi.IsDir {
				t.Errorf("Walk reported directory %s", fi.Path)
			}
			got = append(got, entry{fi.Path, fi.Size})
			return nil
		})
		if err != nil {
			t.Fatalf("Walk %q: %v", root, err)
		}
		return got
	}
	want := []entry{{"w/a", 1}, {"w/a-c/x", 3}, {"w/b/1", 1}, {"w/b/2", 2}, {"w/c", 0}}
	if diff := cmp.Diff(want, walk("w")); diff != "" {
		t.Errorf("Walk w (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]entry{{"w/b/1", 1}, {"w/b/2", 2}}, walk("w/b")); diff != "" {
		t.Errorf("Walk w/b (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]entry{{"w/a", 1}}, walk("w/a")); diff != "" {
		t.Errorf("Walk of a file (-want +got):\n%s", diff)
	}
	if got := walk(""); len(got) != len(files) {
		t.Errorf("Walk of the root: %d files, want %d", len(got), len(files))
	}
}

func testWalkStop(t *testing.T, d storage.Driver) {
	for i := range 5 {
		write(t, d, fmt.Sprintf("s/%d", i), []byte("x"))
	}
	n := 0
	err := d.Walk(context.Background(), "s", func(storage.FileInfo) error {
		n++
		if n == 2 {
			return storage.SkipAll
		}
		return nil
	})
	if err != nil || n != 2 {
		t.Errorf("SkipAll: n=%d err=%v", n, err)
	}
	boom := errors.New("boom")
	n = 0
	err = d.Walk(context.Background(), "s", func(storage.FileInfo) error { n++; return boom })
	if !errors.Is(err, boom) || n != 1 {
		t.Errorf("error from fn: n=%d err=%v", n, err)
	}
}

func testMove(t *testing.T, d storage.Driver) {
	ctx := context.Background()
	write(t, d, "m/src", []byte("moved"))
	write(t, d, "n/dst", []byte("old"))
	if err := d.Move(ctx, "m/src", "n/dst"); err != nil {
		t.Fatal(err)
	}
	if got := string(read(t, d, "n/dst")); got != "moved" {
		t.Errorf("dst read %q", got)
	}
	_, err := d.Stat(ctx, "m/src")
	wantClass(t, "Stat src after move", err, errdefs.ErrNotFound)
	write(t, d, "m/src2", []byte("fresh"))
	if err := d.Move(ctx, "m/src2", "new/dir/dst"); err != nil {
		t.Fatal(err)
	}
	if got := string(read(t, d, "new/dir/dst")); got != "fresh" {
		t.Errorf("dst in a new directory: read %q", got)
	}
}

func testBadPaths(t *testing.T, d storage.Driver) {
	ctx := context.Background()
	write(t, d, "ok/file", []byte("x"))
	for _, p := range []string{"", "/abs", "a//b", "a/", "../escape", "a/../b", "./a", ".hidden", "a/.tmp", "a\\b", "a b", "a/%2e%2e", "nul\x00"} {
		_, err := d.Reader(ctx, p, 0)
		wantClass(t, fmt.Sprintf("Reader %q", p), err, errdefs.ErrInvalidArgument)
		_, err = d.Writer(ctx, p)
		wantClass(t, fmt.Sprintf("Writer %q", p), err, errdefs.ErrInvalidArgument)
		_, err = d.Stat(ctx, p)
		wantClass(t, fmt.Sprintf("Stat %q", p), err, errdefs.ErrInvalidArgument)
		err = d.Delete(ctx, p)
		wantClass(t, fmt.Sprintf("Delete %q", p), err, errdefs.ErrInvalidArgument)
		err = d.Move(ctx, "ok/file", p)
		wantClass(t, fmt.Sprintf("Move to %q", p), err, errdefs.ErrInvalidArgument)
	}
	if got := string(read(t, d, "ok/file")); got != "x" {
		t.Errorf("after bad paths: read %q", got)
	}
}

func testConcurrentWriters(t *testing.T, d storage.Driver) {
	ctx := context.Background()
	const n = 8
	contents := make([][]byte, n)
	for i := range contents {
		contents[i] = bytes.Repeat([]byte{byte('a' + i)}, 64<<10)
	}
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Go(func() {
			errs <- storage.WriteAll(ctx, d, "race/file", contents[i])
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Errorf("concurrent write: %v", err)
		}
	}
	got := read(t, d, "race/file")
	for _, c := range contents {
		if bytes.Equal(got, c) {
			return
		}
	}
	t.Errorf("after concurrent writes the file is a mix (%d bytes)", len(got))
}

func testLarge(t *testing.T, d storage.Driver, size int) {
	ctx := context.Background()
	content := make([]byte, size)
	rand.Read(content)
	w, err := d.Writer(ctx, "large/blob")
	if err != nil {
		t.Fatal(err)
	}
	// Odd write sizes, to cross any internal part boundary mid-write.
	for off := 0; off < len(content); {
		n := min(len(content)-off, 100_003)
		if _, err := w.Write(content[off : off+n]); err != nil {
			t.Fatal(err)
		}
		off += n
	}
	if err := w.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if got := read(t, d, "large/blob"); !bytes.Equal(got, content) {
		t.Fatalf("large file differs (%d bytes read, want %d)", len(got), len(content))
	}
	rc, err := d.Reader(ctx, "large/blob", int64(size-10))
	if err != nil {
		t.Fatal(err)
	}
	tail, _ := io.ReadAll(rc)
	rc.Close()
	if !bytes.Equal(tail, content[size-10:]) {
		t.Errorf("tail read %x", tail)
	}
	// A cancelled large write leaves the committed file alone.
	w, err = d.Writer(ctx, "large/blob")
	if err != nil {
		t.Fatal(err)
	}
	w.Write(content)
	w.Write(content[:1000])
	if err := w.Cancel(ctx); err != nil {
		t.Errorf("Cancel: %v", err)
	}
	if got := read(t, d, "large/blob"); !bytes.Equal(got, content) {
		t.Errorf("after cancelled large overwrite the file differs")
	}
}
