package build_test

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/lading-dev/lading/internal/corpustest"
	"github.com/lading-dev/lading/internal/testenv"
)

// BenchmarkAgainstBuildah builds every testdata/buildah Dockerfile with
// Debian's buildah (chroot isolation, overlay storage, --layers) and with
// lading (a child process, the native sandbox for RUN), both from empty
// storage with the corpus's alpine as oci-archive: base, then rebuilds
// each with nothing changed. It reports the times, their ratios
// (lading/buildah: below 1, lading is faster) and each process's peak RSS.
//
//	go test ./internal/build -run '^$' -bench AgainstBuildah -benchtime 1x
func BenchmarkAgainstBuildah(b *testing.B) {
	testenv.Root(b, "buildah bud and RUN steps need root here")
	buildah := testenv.Tool(b, "buildah", "buildah")
	base := corpustest.Image(b, "alpine-3.9.oci.tar")
	for _, c := range buildahCases {
		b.Run(c.name, func(b *testing.B) {
			var bc, bw, lc, lw time.Duration
			var brss, lrss int64
			for i := 0; i < b.N; i++ {
				dir := filepath.Join(b.TempDir(), "ctx")
				copyTree(b, filepath.Join("testdata", "buildah", c.name), dir)
				if c.fixup != nil {
					c.fixup(b, dir)
				}
				broot := b.TempDir()
				bud := func() (time.Duration, int64) {
					cmd := exec.Command(buildah, "--root", filepath.Join(broot, "root"), "--runroot", filepath.Join(broot, "run"),
						"--storage-driver", "overlay", "bud", "--isolation", "chroot", "--layers", "-q",
						"--build-arg", "BASE=oci-archive:"+base, "-t", "localhost/bench:x", dir)
					cmd.Env = append(os.Environ(), "TMPDIR="+broot)
					start := time.Now()
					if out, err := cmd.CombinedOutput(); err != nil {
						b.Fatalf("buildah: %v\n%s", err, out)
					}
					return time.Since(start), cmd.ProcessState.SysUsage().(*syscall.Rusage).Maxrss / 1024
				}
				lroot := b.TempDir()
				lading := func() (time.Duration, int64) {
					cmd := helperCmd(b, lroot, dir, map[string]string{"BASE": "oci-archive:" + base})
					start := time.Now()
					out, err := cmd.Output()
					d := time.Since(start)
					var res helperRes
					if jerr := json.Unmarshal(out, &res); err != nil || jerr != nil || res.Err != "" {
						b.Fatalf("lading: %v %v %s", err, jerr, res.Err)
					}
					return d, cmd.ProcessState.SysUsage().(*syscall.Rusage).Maxrss / 1024
				}
				d, rss := bud()
				bc += d
				brss = max(brss, rss)
				d, rss = lading()
				lc += d
				lrss = max(lrss, rss)
				d, _ = bud()
				bw += d
				d, _ = lading()
				lw += d
				exec.Command(buildah, "--root", filepath.Join(broot, "root"), "--runroot", filepath.Join(broot, "run"), "--storage-driver", "overlay", "rm", "--all").Run()
				exec.Command(buildah, "--root", filepath.Join(broot, "root"), "--runroot", filepath.Join(broot, "run"), "--storage-driver", "overlay", "rmi", "--all", "--force").Run()
			}
			n := float64(b.N)
			ms := func(d time.Duration) float64 { return float64(d.Milliseconds()) / n }
			b.ReportMetric(ms(bc), "buildah-ms")
			b.ReportMetric(ms(lc), "lading-ms")
			b.ReportMetric(ms(lc)/ms(bc), "ratio")
			b.ReportMetric(ms(bw), "buildah-cached-ms")
			b.ReportMetric(ms(lw), "lading-cached-ms")
			b.ReportMetric(ms(lw)/ms(bw), "cached-ratio")
			b.ReportMetric(float64(brss), "buildah-MiB")
			b.ReportMetric(float64(lrss), "lading-MiB")
			b.Log(fmt.Sprintf("%s: buildah %v, lading %v; cached: buildah %v, lading %v; peak RSS buildah %d MiB, lading %d MiB",
				c.name, bc/time.Duration(b.N), lc/time.Duration(b.N), bw/time.Duration(b.N), lw/time.Duration(b.N), brss, lrss))
		})
	}
}
