package layer

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Benchmarks run each operation next to a baseline on the same bytes in the
// same run, so results read as ratios:
//
//	go test ./internal/layer -run '^$' -bench . -benchmem
//
// BenchmarkWalk/archive-tar reads every entry and its content with
// archive/tar alone; BenchmarkWalk/walk does the same through Walk (all the
// checks). BenchmarkExport/archive-tar reads every layer with archive/tar and
// writes every entry to one archive/tar writer (a merge without the rules);
// BenchmarkExport/export is Export of the same stack.

var benchStack = sync.OnceValue(func() [][]byte { return genStack(1) })

// genStack builds a three-layer stack of about 36 MB: a base of 2000 files
// in 100 directories (most of a few KiB, some of a few MiB), a layer that
// overwrites, removes and hard-links some of them and adds more, and a layer
// with one large file and an opaque directory.
func genStack(seed uint64) [][]byte {
	r := rand.New(rand.NewPCG(seed, 0))
	content := make([]byte, 4<<20)
	for i := range content {
		content[i] = byte(r.UintN(256))
	}
	body := func(n int) []byte { off := r.IntN(len(content) - n + 1); return content[off : off+n] }
	size := func() int {
		if r.IntN(100) == 0 {
			return 1<<20 + r.IntN(3<<20)
		}
		return r.IntN(16 << 10)
	}
	build := func(f func(add func(h *tar.Header, b []byte))) []byte {
		var buf bytes.Buffer
		tw := tar.NewWriter(&buf)
		f(func(h *tar.Header, b []byte) {
			h.ModTime = testTime
			if h.Mode == 0 {
				h.Mode = 0o644
			}
			h.Size = int64(len(b))
			if err := tw.WriteHeader(h); err != nil {
				panic(err)
			}
			tw.Write(b)
		})
		tw.Close()
		return buf.Bytes()
	}
	base := build(func(add func(*tar.Header, []byte)) {
		for d := range 100 {
			add(&tar.Header{Typeflag: tar.TypeDir, Name: fmt.Sprintf("usr/lib/d%03d/", d), Mode: 0o755}, nil)
			for f := range 20 {
				add(&tar.Header{Typeflag: tar.TypeReg, Name: fmt.Sprintf("usr/lib/d%03d/file%02d.so", d, f)}, body(size()))
			}
			add(&tar.Header{Typeflag: tar.TypeSymlink, Name: fmt.Sprintf("usr/lib/d%03d/link", d), Linkname: "file00.so", Mode: 0o777}, nil)
		}
	})
	mid := build(func(add func(*tar.Header, []byte)) {
		for d := 0; d < 100; d += 5 {
			add(&tar.Header{Typeflag: tar.TypeReg, Name: fmt.Sprintf("usr/lib/d%03d/file01.so", d)}, body(size()))
			add(&tar.Header{Typeflag: tar.TypeReg, Name: fmt.Sprintf("usr/lib/d%03d/.wh.file02.so", d)}, nil)
			add(&tar.Header{Typeflag: tar.TypeLink, Name: fmt.Sprintf("usr/lib/d%03d/hard", d), Linkname: fmt.Sprintf("usr/lib/d%03d/file03.so", d)}, nil)
		}
		for f := range 300 {
			add(&tar.Header{Typeflag: tar.TypeReg, Name: fmt.Sprintf("opt/app/f%03d", f)}, body(r.IntN(8<<10)))
		}
	})
	top := build(func(add func(*tar.Header, []byte)) {
		add(&tar.Header{Typeflag: tar.TypeReg, Name: "usr/lib/d050/.wh..wh..opq"}, nil)
		add(&tar.Header{Typeflag: tar.TypeReg, Name: "usr/lib/d050/only"}, body(100))
		add(&tar.Header{Typeflag: tar.TypeReg, Name: "opt/big"}, body(4<<20))
	})
	return [][]byte{base, mid, top}
}

func stackBytes(layers [][]byte) (n int64) {
	for _, l := range layers {
		n += int64(len(l))
	}
	return n
}

func BenchmarkWalk(b *testing.B) {
	layers := benchStack()
	buf := make([]byte, 256<<10)
	b.Run("archive-tar", func(b *testing.B) {
		b.SetBytes(stackBytes(layers))
		b.ReportAllocs()
		for b.Loop() {
			for _, l := range layers {
				tr := tar.NewReader(bytes.NewReader(l))
				for {
					_, err := tr.Next()
					if err == io.EOF {
						break
					}
					if err != nil {
						b.Fatal(err)
					}
					if _, err := io.CopyBuffer(io.Discard, onlyReader{tr}, buf); err != nil {
						b.Fatal(err)
					}
				}
			}
		}
	})
	b.Run("walk", func(b *testing.B) {
		b.SetBytes(stackBytes(layers))
		b.ReportAllocs()
		for b.Loop() {
			for _, l := range layers {
				err := Walk(context.Background(), bytes.NewReader(l), func(e *Entry) error {
					_, err := io.CopyBuffer(io.Discard, onlyReader{e}, buf)
					return err
				})
				if err != nil {
					b.Fatal(err)
				}
			}
		}
	})
	b.Run("archive-tar-headers", func(b *testing.B) {
		b.SetBytes(stackBytes(layers))
		for b.Loop() {
			for _, l := range layers {
				tr := tar.NewReader(bytes.NewReader(l))
				for {
					if _, err := tr.Next(); err == io.EOF {
						break
					}
				}
			}
		}
	})
	b.Run("walk-headers", func(b *testing.B) {
		b.SetBytes(stackBytes(layers))
		for b.Loop() {
			for _, l := range layers {
				if err := Walk(context.Background(), bytes.NewReader(l), func(*Entry) error { return nil }); err != nil {
					b.Fatal(err)
				}
			}
		}
	})
}

func BenchmarkExport(b *testing.B) {
	layers := benchStack()
	buf := make([]byte, 256<<10)
	b.Run("archive-tar", func(b *testing.B) {
		b.SetBytes(stackBytes(layers))
		b.ReportAllocs()
		for b.Loop() {
			tw := tar.NewWriter(io.Discard)
			for i := len(layers) - 1; i >= 0; i-- {
				tr := tar.NewReader(bytes.NewReader(layers[i]))
				for {
					h, err := tr.Next()
					if err == io.EOF {
						break
					}
					if err != nil {
						b.Fatal(err)
					}
					tw.WriteHeader(h)
					if _, err := io.CopyBuffer(tw, onlyReader{tr}, buf); err != nil {
						b.Fatal(err)
					}
				}
			}
			tw.Close()
		}
	})
	b.Run("export", func(b *testing.B) {
		b.SetBytes(stackBytes(layers))
		b.ReportAllocs()
		src := sourcesOf(layers)
		for b.Loop() {
			if err := Export(context.Background(), io.Discard, src); err != nil {
				b.Fatal(err)
			}
		}
	})
}

type onlyReader struct{ io.Reader }

// bigLayer streams a layer holding one file of n bytes (and, with link, a
// hard link to it) without keeping it in memory.
func bigLayer(n int64, link bool) func(context.Context) (io.ReadCloser, error) {
	return func(context.Context) (io.ReadCloser, error) {
		pr, pw := io.Pipe()
		go func() {
			tw := tar.NewWriter(pw)
			tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: "big", Size: n, Mode: 0o644, ModTime: testTime})
			if _, err := io.Copy(tw, io.LimitReader(pattern{}, n)); err != nil {
				pw.CloseWithError(err)
				return
			}
			if link {
				tw.WriteHeader(&tar.Header{Typeflag: tar.TypeLink, Name: "alias", Linkname: "big", ModTime: testTime})
			}
			pw.CloseWithError(tw.Close())
		}()
		return pr, nil
	}
}

type pattern struct{}

func (pattern) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = byte(i)
	}
	return len(p), nil
}

// exportFootprint runs Export of a stack whose bottom layer holds one file
// of n bytes, written out in full (shown) or spooled and written under a
// hard link (hidden: a higher layer replaces it), and returns the bytes
// allocated and the peak heap in use meanwhile.
func exportFootprint(t testing.TB, n int64, hidden bool) (alloc, peak uint64) {
	top := tarOf(t, file("other", "x"))
	if hidden {
		top = tarOf(t, file("big", "small now"))
	}
	src := []Source{
		{Name: "bottom", Open: bigLayer(n, hidden)},
		{Name: "top", Open: func(context.Context) (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(top)), nil }},
	}
	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	var maxHeap atomic.Uint64
	done := make(chan struct{})
	go func() {
		var ms runtime.MemStats
		tick := time.NewTicker(5 * time.Millisecond)
		defer tick.Stop()
		for {
			runtime.ReadMemStats(&ms)
			if ms.HeapInuse > maxHeap.Load() {
				maxHeap.Store(ms.HeapInuse)
			}
			select {
			case <-done:
				return
			case <-tick.C:
			}
		}
	}()
	var cw countWriter
	err := Export(context.Background(), &cw, src, WithTempDir(t.TempDir()))
	close(done)
	if err != nil {
		t.Fatal(err)
	}
	runtime.ReadMemStats(&after)
	if cw.n < n {
		t.Fatalf("wrote %d bytes for a %d-byte file", cw.n, n)
	}
	return after.TotalAlloc - before.TotalAlloc, maxHeap.Load()
}

type countWriter struct{ n int64 }

func (c *countWriter) Write(p []byte) (int, error) { c.n += int64(len(p)); return len(p), nil }

// TestExportMemory shows that Export's memory does not grow with the size
// of a file it streams or spools: 20 MB and 200 MB files allocate the same.
func TestExportMemory(t *testing.T) {
	small, large := int64(20<<20), int64(200<<20)
	if testing.Short() {
		small, large = 4<<20, 40<<20
	}
	for _, hidden := range []bool{false, true} {
		a1, p1 := exportFootprint(t, small, hidden)
		a2, p2 := exportFootprint(t, large, hidden)
		t.Logf("hidden=%v: %d MB file: %d KB allocated, peak heap %d KB; %d MB file: %d KB allocated, peak heap %d KB",
			hidden, small>>20, a1>>10, p1>>10, large>>20, a2>>10, p2>>10)
		if a2 > a1+(1<<20) {
			t.Errorf("hidden=%v: allocations grow with the file: %d KB for %d MB, %d KB for %d MB",
				hidden, a1>>10, small>>20, a2>>10, large>>20)
		}
	}
}

// BenchmarkExportLarge reports allocations per Export of a stack with one
// large file, shown or spooled; B/op stays flat as the size grows.
func BenchmarkExportLarge(b *testing.B) {
	for _, n := range []int64{16 << 20, 128 << 20} {
		for _, hidden := range []bool{false, true} {
			b.Run(fmt.Sprintf("%dMB-hidden=%v", n>>20, hidden), func(b *testing.B) {
				b.SetBytes(n)
				b.ReportAllocs()
				for b.Loop() {
					exportFootprint(b, n, hidden)
				}
			})
		}
	}
}

// BenchmarkExtract writes the bottom layer of the benchmark stack into a
// fresh directory: with archive/tar and plain os calls (no checks, no
// metadata but mode), and with Extract.
func BenchmarkExtract(b *testing.B) {
	l := benchStack()[0]
	buf := make([]byte, 256<<10)
	b.Run("archive-tar", func(b *testing.B) {
		b.SetBytes(int64(len(l)))
		for b.Loop() {
			b.StopTimer()
			d := b.TempDir()
			b.StartTimer()
			tr := tar.NewReader(bytes.NewReader(l))
			for {
				h, err := tr.Next()
				if err == io.EOF {
					break
				}
				p := filepath.Join(d, h.Name)
				switch h.Typeflag {
				case tar.TypeDir:
					os.MkdirAll(p, 0o755)
				case tar.TypeSymlink:
					os.Symlink(h.Linkname, p)
				case tar.TypeReg:
					f, err := os.OpenFile(p, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, os.FileMode(h.Mode))
					if err != nil {
						b.Fatal(err)
					}
					io.CopyBuffer(onlyWriter{f}, tr, buf)
					f.Close()
				}
			}
		}
	})
	b.Run("extract", func(b *testing.B) {
		b.SetBytes(int64(len(l)))
		for b.Loop() {
			b.StopTimer()
			d := b.TempDir()
			b.StartTimer()
			if err := Extract(context.Background(), d, bytes.NewReader(l)); err != nil {
				b.Fatal(err)
			}
		}
	})
}

type onlyWriter struct{ io.Writer }
