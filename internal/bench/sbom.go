package bench

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// SBOMOptions configure [SBOM].
type SBOMOptions struct {
	// Exe is the lading binary to run.
	Exe string
	// Files are the sizes of the generated images, in files.
	Files []int
	// Format is the SBOM format (default cyclonedx).
	Format string
	// Runs is how many times each is measured (default 1).
	Runs int
	// Dir is where images are generated (default a temporary directory,
	// removed afterwards).
	Dir string
	// Log receives progress lines.
	Log io.Writer
}

// SBOMResult is the measure of lading sbom on one generated image.
type SBOMResult struct {
	Files      int           `json:"files"`
	LayerBytes int64         `json:"layer_bytes"`
	Packages   int           `json:"packages"`
	Baseline   time.Duration `json:"baseline"` // tar -tf LAYER
	Cold       time.Duration `json:"cold"`     // empty layer cache
	Warm       time.Duration `json:"warm"`     // every layer cached
	PeakRSS    int64         `json:"peak_rss"` // the largest of any run, bytes
	ColdRSS    int64         `json:"cold_rss"`
	WarmRSS    int64         `json:"warm_rss"`
}

// ColdRatio is the cold time over the baseline's.
func (r SBOMResult) ColdRatio() float64 { return float64(r.Cold) / float64(r.Baseline) }

// SBOM generates an image of each size (GenerateImage) and runs the lading
// binary's sbom on it, cold and warm, measuring time and the peak resident
// set of the process, with tar -t of the same layer as the baseline.
func SBOM(ctx context.Context, o SBOMOptions) ([]SBOMResult, error) {
	if o.Format == "" {
		o.Format = "cyclonedx"
	}
	if o.Runs < 1 {
		o.Runs = 1
	}
	if o.Log == nil {
		o.Log = io.Discard
	}
	base := o.Dir
	if base == "" {
		tmp, err := os.MkdirTemp("", "lading-bench-sbom-")
		if err != nil {
			return nil, err
		}
		defer os.RemoveAll(tmp)
		base = tmp
	}
	var out []SBOMResult
	for _, n := range o.Files {
		dir := filepath.Join(base, fmt.Sprintf("files-%d", n))
		r := SBOMResult{Files: n}
		if _, err := os.Stat(filepath.Join(dir, "index.json")); err != nil {
			fmt.Fprintf(o.Log, "bench sbom: generating an image of %d files in %s\n", n, dir)
			os.RemoveAll(dir)
			if _, err := GenerateImage(ctx, dir, n); err != nil {
				return out, err
			}
		}
		layer, size, err := largestBlob(dir)
		if err != nil {
			return out, err
		}
		r.LayerBytes = size
		r.Packages = (n+filesPerPackage-1)/filesPerPackage + (n+filesPerNpm-1)/filesPerNpm
		if r.Baseline, err = median(ctx, o.Runs, Op{"tar-t", func(ctx context.Context) error {
			return exec.CommandContext(ctx, "tar", "-tf", layer).Run()
		}}, nil); err != nil {
			return out, err
		}
		root := filepath.Join(base, "lading-root")
		run := func(fresh bool, rss *int64) func(context.Context) error {
			return func(ctx context.Context) error {
				if fresh {
					os.RemoveAll(root)
				}
				cmd := exec.CommandContext(ctx, o.Exe, "--root", root, "-q", "sbom", "--format", o.Format, "oci:"+dir)
				var stderr strings.Builder
				cmd.Stdout, cmd.Stderr = io.Discard, &stderr
				if err := cmd.Run(); err != nil {
					return fmt.Errorf("lading sbom: %v: %s", err, stderr.String())
				}
				if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
					*rss = max(*rss, ru.Maxrss*1024) // Linux reports KiB
				}
				return nil
			}
		}
		if r.Cold, err = median(ctx, o.Runs, Op{"cold", run(true, &r.ColdRSS)}, nil); err != nil {
			return out, err
		}
		if r.Warm, err = median(ctx, o.Runs, Op{"warm", run(false, &r.WarmRSS)}, nil); err != nil {
			return out, err
		}
		r.PeakRSS = max(r.ColdRSS, r.WarmRSS)
		os.RemoveAll(root)
		fmt.Fprintf(o.Log, "bench sbom: %d files: cold %v (%.2f × tar -t), warm %v, peak RSS %.0f MiB\n",
			n, r.Cold.Round(time.Millisecond), r.ColdRatio(), r.Warm.Round(time.Millisecond), float64(r.PeakRSS)/(1<<20))
		out = append(out, r)
	}
	return out, nil
}

// largestBlob returns the path and size of the largest blob of an OCI
// layout: the generated image's layer.
func largestBlob(dir string) (string, int64, error) {
	ents, err := os.ReadDir(filepath.Join(dir, "blobs", "sha256"))
	if err != nil {
		return "", 0, err
	}
	var best string
	var size int64
	for _, e := range ents {
		if fi, err := e.Info(); err == nil && fi.Size() > size {
			best, size = filepath.Join(dir, "blobs", "sha256", e.Name()), fi.Size()
		}
	}
	if best == "" {
		return "", 0, fmt.Errorf("%s: no blobs", dir)
	}
	return best, size, nil
}
