package analyze

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"context"
	"fmt"
	"io"
	"runtime"
	"runtime/metrics"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/lading-dev/lading/internal/pkg"
)

// Hostile and broken input: each case is a stack whose base layer holds a
// good apk database; the bad part must cost a warning naming the layer and
// the file (or entry), and the good part must still be analyzed.
func TestBadInput(t *testing.T) {
	good := []ent{file("lib/apk/db/installed", apkDB("musl=1.2.5-r0")), file("etc/alpine-release", "3.20.3\n")}
	var bomb bytes.Buffer
	zw := zip.NewWriter(&bomb)
	h := &zip.FileHeader{Name: "WEB-INF/lib/bomb.jar", Method: zip.Store, UncompressedSize64: 20 << 30}
	w, _ := zw.CreateRaw(h)
	w.Write([]byte("PK\x03\x04"))
	zw.Close()
	for _, tc := range []struct {
		name    string
		layer   []byte // the second layer
		path    string // the file the warning names, "" for the layer
		message string
	}{
		{"corrupt apk database", tarOf(t, file("usr/lib/apk/db/installed", "P:"+strings.Repeat("x", 2<<20)+"\n")),
			"/usr/lib/apk/db/installed", "longer than"},
		{"corrupt rpm database", tarOf(t, file("var/lib/rpm/rpmdb.sqlite", "SQLite format 3\x00"+strings.Repeat("\xff", 5000))),
			"/var/lib/rpm/rpmdb.sqlite", "sqlite"},
		{"berkeley db of garbage", tarOf(t, file("var/lib/rpm/Packages", strings.Repeat("\x00", 4096))),
			"/var/lib/rpm/Packages", "not an rpm database"},
		{"malformed package-lock.json", tarOf(t, file("app/package-lock.json", `{"packages": {"node_modules/a": {"version": 1}}`)),
			"/app/package-lock.json", "package-lock.json"},
		{"zip bomb in a war", tarOf(t, file("srv/app.war", bomb.String())),
			"/srv/app.war", "over the limit"},
		{"not a jar", tarOf(t, file("srv/x.jar", "hello")), "/srv/x.jar", "not a zip archive"},
		{"path escaping the root", tarOf(t, file("app/x", "x"), file("../etc/passwd", "root::0:0::/:/bin/sh\n")),
			"", `"../etc/passwd": path escapes the layer root`},
		{"absolute path", tarOf(t, file("/etc/shadow", "x")), "", "absolute path"},
		{"write through a symlink", tarOf(t, symlink("usr", "/"), file("usr/lib/apk/db/installed", apkDB("evil=1"))),
			"", "parent \"usr\" is a symlink"},
		{"truncated layer", tarOf(t, file("lib/x", strings.Repeat("x", 8192)))[:3000], "", "truncated"},
		{"not a tar", []byte(strings.Repeat("garbage", 200)), "", "unreadable header"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			layers := [][]byte{tarOf(t, good...), tc.layer}
			// Filesystem mode: image scans leave lockfiles, and their
			// warnings, out.
			inv, err := Layers(context.Background(), sourcesOf(layers), WithMode(ModeFS))
			if err != nil {
				t.Fatal(err)
			}
			var found bool
			for _, w := range inv.Warnings {
				if w.Layer == 1 && w.Path == tc.path && strings.Contains(w.Message, tc.message) {
					found = true
				}
			}
			if !found {
				t.Errorf("no warning about layer 1, %q, %q; got %v", tc.path, tc.message, inv.Warnings)
			}
			if ps := inv.Packages(); len(ps) != 1 || ps[0].Name != "musl" {
				t.Errorf("the good layer's package is not there: %v", ps)
			}
			if inv.OS == nil || inv.OS.ID != "alpine" {
				t.Errorf("OS %+v", inv.OS)
			}
			for _, w := range inv.Warnings {
				if !strings.Contains(w.String(), "layer 1") {
					t.Errorf("warning %q does not name the layer", w)
				}
			}
		})
	}
}

// Symlink loops end, links never lead outside the root, and a loop on the
// way to a file an analyzer wants is a warning naming the path.
func TestSymlinkLoops(t *testing.T) {
	layers := stack(t,
		[]ent{symlink("a", "b"), symlink("b", "a"), symlink("self", "self"), symlink("up", "../../.."),
			dir("lib"), dir("lib/apk"), dir("lib/apk/db"), file("lib/apk/db/installed", apkDB("musl=1"))},
		[]ent{symlink("lib/apk/db/loop", "../db/loop"), symlink("etc", "/etc"), file("x/os-release", "ID=evil\n")},
	)
	done := make(chan *Inventory)
	go func() {
		inv, err := Layers(context.Background(), sourcesOf(layers))
		if err != nil {
			t.Error(err)
		}
		done <- inv
	}()
	select {
	case inv := <-done:
		if len(inv.Packages()) != 1 || inv.OS != nil {
			t.Errorf("packages %v, OS %+v", inv.Packages(), inv.OS)
		}
		var ws []string
		for _, w := range inv.Warnings {
			ws = append(ws, w.String())
		}
		want := []string{"/etc: os: too many levels of symbolic links (at /etc)"}
		if diff := cmp.Diff(want, ws); diff != "" {
			t.Errorf("warnings (-want +got):\n%s", diff)
		}
	case <-time.After(time.Minute):
		t.Fatal("analysis of a stack with symlink loops did not finish")
	}
}

// generated is a layer made on the fly: a tar whose members are described by
// name, mode and size, with content generated as it is read (a head, then
// zero bytes), so that multi-gigabyte files cost no memory in the test.

func generated(members ...genMember) io.Reader {
	var rs []io.Reader
	for _, m := range members {
		var hb bytes.Buffer
		tw := tar.NewWriter(&hb)
		tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: m.name, Mode: m.mode, Size: m.size, ModTime: testTime})
		tw.Flush()
		body := io.MultiReader(strings.NewReader(m.head), io.LimitReader(zeroReader{}, m.size-int64(len(m.head))))
		pad := (512 - m.size%512) % 512
		rs = append(rs, &hb, body, io.LimitReader(zeroReader{}, pad))
	}
	rs = append(rs, io.LimitReader(zeroReader{}, 1024))
	return io.MultiReader(rs...)
}

type genMember struct {
	name string
	mode int64
	size int64
	head string
}

type zeroReader struct{}

func (zeroReader) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

// peakHeap samples the live heap every millisecond until stop.
func peakHeap() (stop func() uint64) {
	var peak atomic.Uint64
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
		tk := time.NewTicker(time.Millisecond)
		defer tk.Stop()
		for {
			metrics.Read(s)
			if v := s[0].Value.Uint64(); v > peak.Load() {
				peak.Store(v)
			}
			select {
			case <-done:
				return
			case <-tk.C:
			}
		}
	}()
	return func() uint64 { close(done); <-finished; return peak.Load() }
}

// Multi-gigabyte files: one nobody wants, one an analyzer wants but finds
// too large, one executable that is not a binary, and a 64 MiB database
// that is buffered in a temporary file; the heap stays small.
func TestHugeFiles(t *testing.T) {
	if testing.Short() {
		t.Skip("reads 7 GiB of generated layer")
	}
	layer := func() io.Reader {
		return generated(
			genMember{"data/blob.bin", 0o644, 3 << 30, ""},
			genMember{"srv/huge.jar", 0o644, 3 << 30, "PK\x03\x04"},
			genMember{"usr/bin/huge", 0o755, 1 << 30, "#!/bin/sh\n"},
			genMember{"var/lib/rpm/rpmdb.sqlite", 0o644, 64 << 20, "SQLite format 3\x00\x10\x00"},
			genMember{"lib/apk/db/installed", 0o644, int64(len(apkDB("musl=1.2.5-r0"))), apkDB("musl=1.2.5-r0")},
		)
	}
	runtime.GC()
	stop := peakHeap()
	inv, err := Layers(context.Background(), []LayerSource{{
		Open: func(context.Context) (io.ReadCloser, error) { return io.NopCloser(layer()), nil },
	}}, WithTempDir(t.TempDir()))
	peak := stop()
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, w := range inv.Warnings {
		got = append(got, w.Path)
	}
	if fmt.Sprint(got) != "[/srv/huge.jar /var/lib/rpm/rpmdb.sqlite]" {
		t.Errorf("warnings: %v", inv.Warnings)
	}
	if !strings.Contains(inv.Warnings[0].Message, "over the limit") {
		t.Errorf("huge.jar: %v", inv.Warnings[0])
	}
	if ps := inv.Packages(); len(ps) != 1 || ps[0].Ecosystem != pkg.Apk {
		t.Errorf("packages: %v", ps)
	}
	t.Logf("peak live heap %d MiB", peak>>20)
	if peak > 32<<20 {
		t.Errorf("peak live heap %d MiB while reading 7 GiB of layer", peak>>20)
	}
}

// FuzzLayers runs the whole pipeline, every analyzer, on an arbitrary layer
// above a good one.
func FuzzLayers(f *testing.F) {
	base := tarOf(f, file("lib/apk/db/installed", apkDB("musl=1.2.5-r0")))
	f.Add(tarOf(f, file("var/lib/dpkg/status", "Package: a\nStatus: install ok installed\nVersion: 1\n"), whiteout("lib/apk")))
	f.Add(tarOf(f, dir("app"), file("app/package-lock.json", `{"lockfileVersion":3,"packages":{"node_modules/a":{"version":"1"}}}`), hardlink("app/x", "app/package-lock.json")))
	f.Add(tarOf(f, opaque("lib"), symlink("etc", "lib"), file("etc2/os-release", "ID=x")))
	f.Fuzz(func(t *testing.T, b []byte) {
		inv, err := Layers(context.Background(), sourcesOf([][]byte{base, b}))
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range inv.Packages() {
			if p.Layer == nil || p.Location == "" {
				t.Fatalf("package without attribution or location: %+v", p)
			}
		}
	})
}
