package analyze

import (
	"archive/tar"
	"context"
	"fmt"
	"io"
	"runtime"
	"testing"
)

// manyFiles is a layer of n small files in directories of 100, written as
// it is read.
func manyFiles(n int) io.Reader {
	pr, pw := io.Pipe()
	go func() {
		tw := tar.NewWriter(pw)
		for i := range n {
			name := fmt.Sprintf("usr/share/many/d%05d/node_modules/p%07d/package.json", i/100, i)
			body := fmt.Sprintf(`{"name":"p%07d","version":"1.0.%d"}`, i, i%7)
			tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: 0o644, Size: int64(len(body)), ModTime: testTime})
			io.WriteString(tw, body)
		}
		pw.CloseWithError(tw.Close())
	}()
	return pr
}

// Memory grows with the number of paths of a layer (the walker's checks,
// the path index) and of packages found, not with content: 200,000 files,
// each a package an analyzer reports, take under 4 KiB each of heap, all of
// the merge and the inventory included (the sampled heap includes garbage
// not yet collected; about 450 bytes a file when no analyzer wants them).
func TestManyFiles(t *testing.T) {
	if testing.Short() {
		t.Skip("200,000 files")
	}
	const n = 200_000
	runtime.GC()
	stop := peakHeap()
	inv, err := Layers(context.Background(), []LayerSource{{
		Open: func(context.Context) (io.ReadCloser, error) { return io.NopCloser(manyFiles(n)), nil },
	}})
	peak := stop()
	if err != nil {
		t.Fatal(err)
	}
	if got := len(inv.Packages()); got != n {
		t.Errorf("%d packages, want %d", got, n)
	}
	t.Logf("peak live heap %d MiB for %d files (%d bytes a file)", peak>>20, n, peak/n)
	if per := peak / n; per > 4096 {
		t.Errorf("%d bytes of heap per file", per)
	}
}
