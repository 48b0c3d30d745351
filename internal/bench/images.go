// Package bench measures lading against baselines run on the same machine
// in the same run, and reports ratios: a ratio below 1 means lading was
// faster than the baseline. Timings are the median of several runs; the
// caches are warm for both sides (the corpus files are read once before
// timing).
package bench

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/metrics"
	"sort"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/lading-dev/lading/internal/image"
	"github.com/lading-dev/lading/internal/layer"
	"github.com/lading-dev/lading/internal/store"
)

// Result is one measured operation on one image.
type Result struct {
	Image    string        `json:"image"`
	Op       string        `json:"op"`
	Time     time.Duration `json:"time_ns"`
	Baseline time.Duration `json:"baseline_ns"` // tar -xzf of the same layers
	Bytes    int64         `json:"bytes"`       // uncompressed layer bytes
	PeakHeap uint64        `json:"peak_heap_bytes,omitempty"`
}

// Ratio is Time / Baseline.
func (r Result) Ratio() float64 { return float64(r.Time) / float64(r.Baseline) }

// Options set what Images measures.
type Options struct {
	Runs    int      // timed runs per measurement (median reported); default 5
	Only    []string // image file names to include (default: every *.oci.tar)
	TempDir string
	Log     io.Writer // progress lines; nil for none
}

// Images measures save, load and export on every OCI image of the corpus
// against `tar -xzf` of the image's layers, one after another, into an empty
// directory (the work of unpacking the image with the plainest tool).
func Images(ctx context.Context, corpus string, o Options) ([]Result, error) {
	if o.Runs <= 0 {
		o.Runs = 5
	}
	tarBin, err := exec.LookPath("tar")
	if err != nil {
		return nil, fmt.Errorf("the baseline needs tar: %w", err)
	}
	files, err := filepath.Glob(filepath.Join(corpus, "images", "*.oci.tar"))
	if err != nil {
		return nil, err
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("no *.oci.tar in %s/images", corpus)
	}
	work, err := os.MkdirTemp(o.TempDir, "lading-bench-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(work)

	var out []Result
	for _, f := range files {
		base := filepath.Base(f)
		if len(o.Only) > 0 && !contains(o.Only, base) {
			continue
		}
		if o.Log != nil {
			fmt.Fprintf(o.Log, "bench: %s\n", base)
		}
		rs, err := benchImage(ctx, f, work, tarBin, o)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", base, err)
		}
		out = append(out, rs...)
	}
	return out, nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func benchImage(ctx context.Context, file, work, tarBin string, o Options) ([]Result, error) {
	name := strings.TrimSuffix(filepath.Base(file), ".oci.tar")
	dir := filepath.Join(work, name)
	os.MkdirAll(dir, 0o755)
	defer os.RemoveAll(dir)

	// Setup (not timed): the image in a store, its layer blobs as files,
	// and a docker-archive of it.
	st, err := store.Open(filepath.Join(dir, "store"))
	if err != nil {
		return nil, err
	}
	defer st.Close()
	src, err := image.Open(ctx, image.Reference{Transport: image.OCIArchive, Path: file}, image.WithTempDir(dir))
	if err != nil {
		return nil, err
	}
	defer src.Close()
	img, err := src.Select(nil)
	if err != nil {
		return nil, err
	}
	local := image.Reference{Transport: image.Local, Name: "docker.io/bench/" + name + ":1"}
	if _, err := image.Write(ctx, local, image.Artifact{Image: img}, image.WithStore(st)); err != nil {
		return nil, err
	}
	lsrc, err := image.Open(ctx, local, image.WithStore(st))
	if err != nil {
		return nil, err
	}
	defer lsrc.Close()
	simg := lsrc.Image
	layers, err := simg.Layers()
	if err != nil {
		return nil, err
	}
	var blobs []string
	for i, l := range layers {
		p := filepath.Join(dir, fmt.Sprintf("layer%d.blob", i))
		if err := copyLayer(l, p); err != nil {
			return nil, err
		}
		blobs = append(blobs, p)
	}
	archive := filepath.Join(dir, "image.docker.tar")
	if err := image.Save(ctx, image.Reference{Transport: image.DockerArchive, Path: archive}, []image.Item{{Artifact: image.Artifact{Image: simg}, Names: []string{local.Name}}}, image.WithTempDir(dir)); err != nil {
		return nil, err
	}
	var ubytes int64
	if fi, err := os.Stat(archive); err == nil {
		ubytes = fi.Size()
	}

	baseline, err := median(o.Runs, func() error {
		out := filepath.Join(dir, "untar")
		os.RemoveAll(out)
		os.MkdirAll(out, 0o755)
		for _, b := range blobs {
			if out, err := exec.CommandContext(ctx, tarBin, "-xzf", b, "-C", out).CombinedOutput(); err != nil {
				// Uncompressed layers: tar -xf.
				if out2, err2 := exec.CommandContext(ctx, tarBin, "-xf", b, "-C", filepath.Join(dir, "untar")).CombinedOutput(); err2 != nil {
					return fmt.Errorf("tar: %v: %s %s", err, out, out2)
				}
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	os.RemoveAll(filepath.Join(dir, "untar"))

	ops := []struct {
		op string
		fn func() error
	}{
		{"save", func() error {
			p := filepath.Join(dir, "saved.tar")
			defer os.Remove(p)
			return image.Save(ctx, image.Reference{Transport: image.DockerArchive, Path: p}, []image.Item{{Artifact: image.Artifact{Image: simg}, Names: []string{local.Name}}}, image.WithTempDir(dir))
		}},
		{"load", func() error {
			sd := filepath.Join(dir, "loadstore")
			os.RemoveAll(sd)
			s2, err := store.Open(sd)
			if err != nil {
				return err
			}
			defer s2.Close()
			srcs, err := image.OpenAll(ctx, image.Reference{Transport: image.DockerArchive, Path: archive}, image.WithTempDir(dir))
			if err != nil {
				return err
			}
			for _, s := range srcs {
				if _, err := image.Write(ctx, image.Reference{Transport: image.Local, Name: s.Names[0]}, s.Artifact, image.WithStore(s2)); err != nil {
					return err
				}
				s.Close()
			}
			return nil
		}},
		{"export", func() error {
			return image.Export(ctx, io.Discard, name, simg, layer.WithTempDir(dir))
		}},
	}
	var rs []Result
	for _, op := range ops {
		var peak uint64
		d, err := median(o.Runs, func() error {
			stop := watchHeap(&peak)
			defer stop()
			return op.fn()
		})
		if err != nil {
			return nil, fmt.Errorf("%s: %w", op.op, err)
		}
		rs = append(rs, Result{Image: name, Op: op.op, Time: d, Baseline: baseline, Bytes: ubytes, PeakHeap: peak})
	}
	return rs, nil
}

func copyLayer(l v1.Layer, path string) error {
	rc, err := l.Compressed()
	if err != nil {
		return err
	}
	defer rc.Close()
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, rc); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// median runs fn n times and returns the median duration.
func median(n int, fn func() error) (time.Duration, error) {
	ds := make([]time.Duration, 0, n)
	for i := 0; i < n; i++ {
		runtime.GC()
		start := time.Now()
		if err := fn(); err != nil {
			return 0, err
		}
		ds = append(ds, time.Since(start))
	}
	sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
	return ds[n/2], nil
}

// watchHeap samples the bytes of live heap objects every 2 ms (through
// runtime/metrics, which does not stop the world) into *peak until stop is
// called.
func watchHeap(peak *uint64) (stop func()) {
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		sample := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
		t := time.NewTicker(2 * time.Millisecond)
		defer t.Stop()
		for {
			metrics.Read(sample)
			if v := sample[0].Value.Uint64(); v > *peak {
				*peak = v
			}
			select {
			case <-done:
				return
			case <-t.C:
			}
		}
	}()
	return func() { close(done); <-finished }
}
