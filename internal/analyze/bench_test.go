package analyze

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/lading-dev/lading/internal/cache"
	"github.com/lading-dev/lading/internal/corpustest"
	"github.com/lading-dev/lading/internal/image"
	"github.com/lading-dev/lading/internal/testenv"
)

// The benchmarks time, for every corpus OCI image, the analysis of the
// image read from an OCI layout directory, cold (an empty cache, so every
// layer is read and its results written) and warm (every layer's results
// in the cache), against a baseline measured in the same run: `gzip -dc |
// tar -t` of the same layer blobs, one after another. Each reports its time
// as a ratio to the baseline ("x-baseline"; below 1 is faster):
//
//	go test ./internal/analyze -run '^$' -bench Corpus -benchtime 5x
//
// BenchmarkCorpusRSS runs each cold analysis in a process of its own and
// reports its peak resident set size.

// benchImage is a corpus image unpacked into an OCI layout directory.
type benchImage struct {
	name   string
	ref    image.Reference
	blobs  []string // layer blobs, base first
	gzip   []bool
	layout string
}

func prepareBench(b *testing.B, file string) *benchImage {
	b.Helper()
	dir := b.TempDir()
	if out, err := exec.Command("tar", "-xf", corpusPath(b, file), "-C", dir).CombinedOutput(); err != nil {
		b.Fatalf("tar: %v\n%s", err, out)
	}
	bi := &benchImage{name: strings.TrimSuffix(file, ".oci.tar"), layout: dir}
	bi.ref = image.Reference{Transport: image.OCI, Path: dir}
	src, err := image.Open(context.Background(), bi.ref)
	if err != nil {
		b.Fatal(err)
	}
	defer src.Close()
	img, err := src.Select(nil)
	if err != nil {
		b.Fatal(err)
	}
	m, err := img.Manifest()
	if err != nil {
		b.Fatal(err)
	}
	for _, l := range m.Layers {
		bi.blobs = append(bi.blobs, filepath.Join(dir, "blobs", l.Digest.Algorithm, l.Digest.Hex))
		bi.gzip = append(bi.gzip, strings.Contains(string(l.MediaType), "gzip"))
	}
	return bi
}

func corpusPath(b testing.TB, file string) string {
	return filepath.Join(corpustest.Dir(b), "images", file)
}

// baseline runs gzip -dc | tar -t over the blobs, one after another.
func (bi *benchImage) baseline() error {
	script := `for f in "$@"; do gzip -dc "$f" | tar -t >/dev/null || exit 1; done`
	return exec.Command("sh", append([]string{"-c", script, "sh"}, bi.blobs...)...).Run()
}

func (bi *benchImage) analyze(c *cache.Cache) (*Inventory, error) {
	src, err := image.Open(context.Background(), bi.ref)
	if err != nil {
		return nil, err
	}
	defer src.Close()
	img, err := src.Select(nil)
	if err != nil {
		return nil, err
	}
	var opts []Option
	if c != nil {
		opts = append(opts, WithCache(c))
	}
	return Image(context.Background(), img, opts...)
}

func median(n int, f func() error) (time.Duration, error) {
	var ds []time.Duration
	for range n {
		start := time.Now()
		if err := f(); err != nil {
			return 0, err
		}
		ds = append(ds, time.Since(start))
	}
	slices.Sort(ds)
	return ds[len(ds)/2], nil
}

// ratios collects analysis/baseline time ratios of interleaved runs, so
// that a machine whose load changes during the run still compares like
// with like.
type ratios []float64

func (r ratios) median() float64 {
	s := slices.Clone(r)
	slices.Sort(s)
	return s[len(s)/2]
}

func BenchmarkCorpus(b *testing.B) {
	for _, file := range corpusOCIImages(b) {
		if file == "alpine-3.20-multiarch.oci.tar" {
			continue // the index's amd64 image is alpine-3.20-app's base layer
		}
		bi := prepareBench(b, file)
		timeIt := func(f func() error) time.Duration {
			start := time.Now()
			if err := f(); err != nil {
				b.Fatal(err)
			}
			return time.Since(start)
		}
		b.Run(bi.name+"/gzip-dc-tar-t", func(b *testing.B) {
			for b.Loop() {
				if err := bi.baseline(); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(bi.name+"/cold", func(b *testing.B) {
			var rs ratios
			for b.Loop() {
				b.StopTimer()
				base := timeIt(bi.baseline)
				c, err := cache.Open(b.TempDir())
				if err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
				d := timeIt(func() error { _, err := bi.analyze(c); return err })
				rs = append(rs, float64(d)/float64(base))
			}
			b.ReportMetric(rs.median(), "x-baseline")
		})
		b.Run(bi.name+"/warm", func(b *testing.B) {
			c, err := cache.Open(b.TempDir())
			if err != nil {
				b.Fatal(err)
			}
			if _, err := bi.analyze(c); err != nil {
				b.Fatal(err)
			}
			var rs ratios
			for b.Loop() {
				b.StopTimer()
				base := timeIt(bi.baseline)
				b.StartTimer()
				var inv *Inventory
				d := timeIt(func() error { var err error; inv, err = bi.analyze(c); return err })
				if !inv.Layers[0].Cached {
					b.Fatal("not from the cache")
				}
				rs = append(rs, float64(d)/float64(base))
			}
			b.ReportMetric(rs.median(), "x-baseline")
		})
	}
}

// BenchmarkCorpusRSS reports the peak resident set size of a process that
// analyzes one image cold (this test binary, run again for that alone). The
// child reports its own VmHWM: the kernel carries the parent's high-water
// mark over exec into the rusage of a child, so Maxrss would report the
// benchmark's own.
func BenchmarkCorpusRSS(b *testing.B) {
	for _, file := range corpusOCIImages(b) {
		if file == "alpine-3.20-multiarch.oci.tar" {
			continue
		}
		bi := prepareBench(b, file)
		b.Run(bi.name, func(b *testing.B) {
			var peak int64
			for b.Loop() {
				cmd := exec.Command(os.Args[0], "-test.run=^TestRSSChild$", "-test.v")
				cmd.Env = append(os.Environ(), "LADING_RSS_LAYOUT="+bi.layout, "LADING_RSS_CACHE="+b.TempDir())
				out, err := cmd.CombinedOutput()
				if err != nil {
					b.Fatalf("%v\n%s", err, out)
				}
				_, after, ok := strings.Cut(string(out), "VmHWM:")
				if !ok {
					b.Fatalf("no VmHWM in\n%s", out)
				}
				var kib int64
				fmt.Sscan(after, &kib)
				peak = max(peak, kib)
			}
			b.ReportMetric(float64(peak)/1024, "MiB-peak-rss")
		})
	}
}

// TestRSSChild is the child process of BenchmarkCorpusRSS.
func TestRSSChild(t *testing.T) {
	layout := os.Getenv("LADING_RSS_LAYOUT")
	if layout == "" {
		return // run only as the child of BenchmarkCorpusRSS
	}
	c, err := cache.Open(os.Getenv("LADING_RSS_CACHE"))
	if err != nil {
		t.Fatal(err)
	}
	bi := &benchImage{ref: image.Reference{Transport: image.OCI, Path: layout}}
	if _, err := bi.analyze(c); err != nil {
		t.Fatal(err)
	}
	status, err := os.ReadFile("/proc/self/status")
	if err != nil {
		testenv.Skip(t, "no /proc/self/status: %v", err)
	}
	for _, l := range strings.Split(string(status), "\n") {
		if strings.HasPrefix(l, "VmHWM:") {
			t.Log(l) // "VmHWM:	   12345 kB"
		}
	}
}
