package bench

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/debug"
	"strings"
	"syscall"
	"time"
)

// ScanResult is one corpus image's scan measurements.
type ScanResult struct {
	Image string `json:"image"`
	// Cold is a scan with an empty layer cache: every layer is read and
	// analyzed. Warm is a second scan, every layer cached. Both run the
	// lading binary as a user would, process start included.
	Cold time.Duration `json:"cold_ns"`
	Warm time.Duration `json:"warm_ns"`
	// Baseline is `gzip -dc LAYER | tar -t` of the image's layers, one
	// after another (`tar -t` for an uncompressed layer).
	Baseline time.Duration `json:"baseline_ns"`
	// PeakRSS is the largest resident set of a scan process, in bytes:
	// the whole process's peak (ru_maxrss), which on Linux also counts
	// the resident set of the bench process at the moment it started the
	// scan; Scan makes that as small as it can first (see lowerPeak) and
	// reports it in BenchRSS.
	PeakRSS int64 `json:"peak_rss_bytes"`
	// BenchRSS is the largest resident set of the bench process when it
	// started a scan: the floor under PeakRSS.
	BenchRSS int64 `json:"bench_rss_bytes"`
}

// ColdRatio is Cold / Baseline.
func (r ScanResult) ColdRatio() float64 { return float64(r.Cold) / float64(r.Baseline) }

// ScanOptions set what Scan measures.
type ScanOptions struct {
	Exe     string // the lading binary
	DB      string // the vulnerability database
	Runs    int
	Only    []string
	TempDir string
	Log     io.Writer
}

// Scan measures `lading scan` on every OCI image of the corpus.
func Scan(ctx context.Context, corpus string, o ScanOptions) ([]ScanResult, error) {
	if o.Runs <= 0 {
		o.Runs = 5
	}
	var out []ScanResult
	err := eachFixture(ctx, corpus, o.Only, o.TempDir, o.Log, func(f *Fixture) error {
		r, err := benchScan(ctx, f, o)
		out = append(out, r)
		return err
	})
	return out, err
}

func benchScan(ctx context.Context, f *Fixture, o ScanOptions) (ScanResult, error) {
	file := f.file
	r := ScanResult{Image: f.Name}
	var err error
	r.Baseline, err = median(ctx, o.Runs, Op{"gzip-tar-t", f.gzipTarList}, nil)
	if err != nil {
		return r, err
	}
	root := filepath.Join(f.dir, "lading-root")
	scan := func(fresh bool) func(context.Context) error {
		return func(ctx context.Context) error {
			if fresh {
				os.RemoveAll(root)
			}
			cmd := exec.CommandContext(ctx, o.Exe, "--root", root, "-q", "scan", "--db", o.DB, "-f", "json", "oci-archive:"+file)
			var stderr strings.Builder
			cmd.Stdout, cmd.Stderr = io.Discard, &stderr
			peak, bench, err := runPeak(cmd)
			if err != nil {
				return fmt.Errorf("lading scan: %v: %s", err, stderr.String())
			}
			r.PeakRSS, r.BenchRSS = max(r.PeakRSS, peak), max(r.BenchRSS, bench)
			return nil
		}
	}
	if r.Cold, err = median(ctx, o.Runs, Op{"cold", scan(true)}, nil); err != nil {
		return r, err
	}
	if err := scan(false)(ctx); err != nil { // fill the cache
		return r, err
	}
	if r.Warm, err = median(ctx, o.Runs, Op{"warm", scan(false)}, nil); err != nil {
		return r, err
	}
	return r, nil
}

// gzipTarList runs `gzip -dc LAYER | tar -t` (or `tar -t` alone for an
// uncompressed layer) over the layers in order.
func (f *Fixture) gzipTarList(ctx context.Context) error {
	for i, b := range f.blobs {
		script := fmt.Sprintf("tar -tf '%s' >/dev/null", b)
		if f.gzip[i] {
			script = fmt.Sprintf("gzip -dc '%s' | tar -tf - >/dev/null", b)
		}
		cmd := exec.CommandContext(ctx, "bash", "-c", "set -eo pipefail; "+script)
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("%s: %v: %s", script, err, out)
		}
	}
	return nil
}

// runPeak runs cmd and returns the peak resident set of its process
// (ru_maxrss), and the bench's own when it started it (after lowerPeak).
func runPeak(cmd *exec.Cmd) (peak, bench int64, err error) {
	bench = lowerPeak()
	if err := cmd.Run(); err != nil {
		return 0, bench, err
	}
	if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		peak = ru.Maxrss * 1024 // Linux reports KiB
	}
	return peak, bench, nil
}

// lowerPeak returns the memory this process holds to the operating system
// and resets its peak resident set to the current one (Linux: "5" to
// /proc/self/clear_refs), and returns that resident set in bytes (0 where
// it cannot tell). A child's ru_maxrss starts from the peak of the process
// that started it (the kernel folds the parent's high-water mark into the
// child's at exec), so without this a scan would report the bench's own
// peak, such as that of a database build.
func lowerPeak() int64 {
	debug.FreeOSMemory()
	os.WriteFile("/proc/self/clear_refs", []byte("5"), 0)
	status, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(status), "\n") {
		if v, ok := strings.CutPrefix(l, "VmHWM:"); ok {
			var kb int64
			fmt.Sscan(strings.TrimSuffix(strings.TrimSpace(v), " kB"), &kb)
			return kb * 1024
		}
	}
	return 0
}
