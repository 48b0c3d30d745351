// Package bench measures lading against baselines run on the same machine
// in the same run, and reports ratios: a ratio below 1 means lading was
// faster than the baseline. Timings are the median of several runs with
// warm caches (every input is read once before timing). `lading bench`
// prints them; the Go benchmarks in this package run the same operations
// under `go test -bench`.
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
	Baseline time.Duration `json:"baseline_ns"`        // tar -xzf of the same layers
	Stream   time.Duration `json:"stream_baseline_ns"` // tar -tzf of the same layers
	Bytes    int64         `json:"bytes"`              // uncompressed layer bytes
	PeakHeap uint64        `json:"peak_heap_bytes,omitempty"`
}

// Ratio is Time / Baseline (tar -xzf).
func (r Result) Ratio() float64 { return float64(r.Time) / float64(r.Baseline) }

// StreamRatio is Time / Stream (tar -tzf: the same decompression and tar
// parsing, without creating files).
func (r Result) StreamRatio() float64 { return float64(r.Time) / float64(r.Stream) }

// Options set what Images measures.
type Options struct {
	Runs    int      // timed runs per measurement (median reported); default 5
	Only    []string // image file names to include (default: every *.oci.tar)
	TempDir string
	Log     io.Writer // progress lines; nil for none
}

// Op is one timed operation on a fixture.
type Op struct {
	Name string
	Run  func(ctx context.Context) error
}

// Fixture is one corpus image prepared for measuring: in a store, its layer
// blobs as files, and a docker-archive of it.
type Fixture struct {
	Name    string
	Bytes   int64  // uncompressed layer bytes
	file    string // the corpus file
	dir     string
	tar     string
	st      *store.Store
	img     v1.Image
	ref     image.Reference
	blobs   []string
	gzip    []bool
	archive string
}

// Prepare sets up a fixture for the OCI archive file under work (not
// timed). Close removes it.
func Prepare(ctx context.Context, file, work string) (*Fixture, error) {
	tarBin, err := exec.LookPath("tar")
	if err != nil {
		return nil, fmt.Errorf("the baseline needs tar: %w", err)
	}
	name := strings.TrimSuffix(filepath.Base(file), ".oci.tar")
	f := &Fixture{Name: name, file: file, dir: filepath.Join(work, name), tar: tarBin}
	os.MkdirAll(f.dir, 0o755)
	fail := func(err error) (*Fixture, error) { f.Close(); return nil, err }
	if f.st, err = store.Open(filepath.Join(f.dir, "store")); err != nil {
		return fail(err)
	}
	src, err := image.Open(ctx, image.Reference{Transport: image.OCIArchive, Path: file}, image.WithTempDir(f.dir))
	if err != nil {
		return fail(err)
	}
	defer src.Close()
	img, err := src.Select(nil)
	if err != nil {
		return fail(err)
	}
	f.ref = image.Reference{Transport: image.Local, Name: "docker.io/bench/" + name + ":1"}
	if _, err := image.Write(ctx, f.ref, image.Artifact{Image: img}, image.WithStore(f.st)); err != nil {
		return fail(err)
	}
	lsrc, err := image.Open(ctx, f.ref, image.WithStore(f.st))
	if err != nil {
		return fail(err)
	}
	f.img = lsrc.Image
	layers, err := f.img.Layers()
	if err != nil {
		return fail(err)
	}
	for i, l := range layers {
		mt, _ := l.MediaType()
		p := filepath.Join(f.dir, fmt.Sprintf("layer%d.blob", i))
		if err := copyLayer(l, p); err != nil {
			return fail(err)
		}
		f.blobs = append(f.blobs, p)
		f.gzip = append(f.gzip, strings.Contains(string(mt), "gzip"))
	}
	f.archive = filepath.Join(f.dir, "image.docker.tar")
	if err := f.save(ctx, f.archive); err != nil {
		return fail(err)
	}
	if fi, err := os.Stat(f.archive); err == nil {
		f.Bytes = fi.Size()
	}
	return f, nil
}

// Close removes the fixture's files.
func (f *Fixture) Close() error {
	if f.st != nil {
		f.st.Close()
	}
	return os.RemoveAll(f.dir)
}

func (f *Fixture) save(ctx context.Context, path string) error {
	return image.Save(ctx, image.Reference{Transport: image.DockerArchive, Path: path},
		[]image.Item{{Artifact: image.Artifact{Image: f.img}, Names: []string{f.ref.Name}}}, image.WithTempDir(f.dir))
}

// untar runs tar with mode x (extract into an empty directory) or t (list)
// over every layer blob in order; -z for gzip layers.
func (f *Fixture) untar(ctx context.Context, mode string) error {
	out := filepath.Join(f.dir, "untar")
	os.RemoveAll(out)
	os.MkdirAll(out, 0o755)
	defer os.RemoveAll(out)
	for i, b := range f.blobs {
		flag := "-" + mode + "f"
		if f.gzip[i] {
			flag = "-" + mode + "zf"
		}
		cmd := exec.CommandContext(ctx, f.tar, flag, b, "-C", out)
		var msg strings.Builder
		cmd.Stdout, cmd.Stderr = io.Discard, &msg
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("tar %s: %v: %s", flag, err, msg.String())
		}
	}
	return nil
}

// Baselines are tar -xzf and tar -tzf of the image's layers.
func (f *Fixture) Baselines() []Op {
	return []Op{
		{"tar-xzf", func(ctx context.Context) error { return f.untar(ctx, "x") }},
		{"tar-tzf", func(ctx context.Context) error { return f.untar(ctx, "t") }},
	}
}

// Ops are the lading operations measured: save (a docker-archive from the
// store), load (that archive into an empty store), export (the merged
// root filesystem as a stream, discarded) and export-dir (unpacked into a
// directory).
func (f *Fixture) Ops() []Op {
	return []Op{
		{"save", func(ctx context.Context) error {
			p := filepath.Join(f.dir, "saved.tar")
			defer os.Remove(p)
			return f.save(ctx, p)
		}},
		{"load", func(ctx context.Context) error {
			sd := filepath.Join(f.dir, "loadstore")
			os.RemoveAll(sd)
			defer os.RemoveAll(sd)
			s2, err := store.Open(sd)
			if err != nil {
				return err
			}
			defer s2.Close()
			srcs, err := image.OpenAll(ctx, image.Reference{Transport: image.DockerArchive, Path: f.archive}, image.WithTempDir(f.dir))
			if err != nil {
				return err
			}
			for _, s := range srcs {
				_, err := image.Write(ctx, image.Reference{Transport: image.Local, Name: s.Names[0]}, s.Artifact, image.WithStore(s2))
				s.Close()
				if err != nil {
					return err
				}
			}
			return nil
		}},
		{"export", func(ctx context.Context) error {
			return image.Export(ctx, io.Discard, f.Name, f.img, layer.WithTempDir(f.dir))
		}},
		{"export-dir", func(ctx context.Context) error {
			out := filepath.Join(f.dir, "exported")
			os.RemoveAll(out)
			os.MkdirAll(out, 0o755)
			defer os.RemoveAll(out)
			pr, pw := io.Pipe()
			go func() { pw.CloseWithError(image.Export(ctx, pw, f.Name, f.img, layer.WithTempDir(f.dir))) }()
			err := layer.Extract(ctx, out, pr)
			pr.CloseWithError(err)
			return err
		}},
	}
}

// Images measures every fixture op on every OCI image of the corpus against
// the baselines.
func Images(ctx context.Context, corpus string, o Options) ([]Result, error) {
	if o.Runs <= 0 {
		o.Runs = 5
	}
	var out []Result
	err := eachFixture(ctx, corpus, o.Only, o.TempDir, o.Log, func(f *Fixture) error {
		bl := f.Baselines()
		xzf, err := median(ctx, o.Runs, bl[0], nil)
		if err != nil {
			return err
		}
		tzf, err := median(ctx, o.Runs, bl[1], nil)
		if err != nil {
			return err
		}
		for _, op := range f.Ops() {
			var peak uint64
			d, err := median(ctx, o.Runs, op, &peak)
			if err != nil {
				return fmt.Errorf("%s: %w", op.Name, err)
			}
			out = append(out, Result{Image: f.Name, Op: op.Name, Time: d, Baseline: xzf, Stream: tzf, Bytes: f.Bytes, PeakHeap: peak})
		}
		return nil
	})
	return out, err
}

// eachFixture prepares each corpus OCI image (or those named in only) in
// turn, runs fn on it and removes it.
func eachFixture(ctx context.Context, corpus string, only []string, tmpDir string, log io.Writer, fn func(*Fixture) error) error {
	files, err := CorpusImages(corpus, only)
	if err != nil {
		return err
	}
	work, err := os.MkdirTemp(tmpDir, "lading-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	for _, file := range files {
		if log != nil {
			fmt.Fprintf(log, "bench: %s\n", filepath.Base(file))
		}
		f, err := Prepare(ctx, file, work)
		if err == nil {
			err = fn(f)
			f.Close()
		}
		if err != nil {
			return fmt.Errorf("%s: %w", filepath.Base(file), err)
		}
	}
	return nil
}

// CorpusImages lists the corpus's OCI archives, or those named in only.
func CorpusImages(corpus string, only []string) ([]string, error) {
	files, err := filepath.Glob(filepath.Join(corpus, "images", "*.oci.tar"))
	if err != nil {
		return nil, err
	}
	var out []string
	for _, f := range files {
		if len(only) == 0 || contains(only, filepath.Base(f)) {
			out = append(out, f)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no matching *.oci.tar in %s/images", corpus)
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

// median runs op n times and returns the median duration; with peak, it
// also records the largest live heap seen.
func median(ctx context.Context, n int, op Op, peak *uint64) (time.Duration, error) {
	ds := make([]time.Duration, 0, n)
	for i := 0; i < n; i++ {
		runtime.GC()
		var stop func()
		if peak != nil {
			stop = watchHeap(peak)
		}
		start := time.Now()
		err := op.Run(ctx)
		d := time.Since(start)
		if stop != nil {
			stop()
		}
		if err != nil {
			return 0, err
		}
		ds = append(ds, d)
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
