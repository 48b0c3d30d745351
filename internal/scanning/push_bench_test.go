package scanning_test

import (
	"context"
	"os"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/lading-dev/lading/internal/analyze"
	"github.com/lading-dev/lading/internal/cache"
	"github.com/lading-dev/lading/internal/harbortest"
	"github.com/lading-dev/lading/internal/image/content"
	"github.com/lading-dev/lading/internal/image/ocilayout"
	"github.com/lading-dev/lading/internal/scan"
	"github.com/lading-dev/lading/internal/sqldb"
	"github.com/lading-dev/lading/internal/vulndb"
)

// BenchmarkScanOnPush measures, per round, the time from the
// acknowledgement of a push of the corpus's debian-12-app (remote.Write
// returns) to its scan's Success, against a standalone scan of the same
// image in the same process: what lading scan does (internal/scan over the
// image read from its OCI layout through lading's content package, every
// blob checked against its digest as the registry's reads are; the
// analyzers' defaults; the registry's layer parallelism; its on-disk layer
// cache cold: a fresh directory each round, written as lading scan writes
// it).
//
// Like with like: each round starts a fresh registry (stopped at the end
// of its round), so its layer cache (in the metadata database) is cold
// too, and both scans use the same vulnerability database file. Scan on
// push ends when a poll of the report's status in the metadata database,
// every 2 ms, sees Success (committed); the report's end_time, taken
// inside the transaction before its commit, is logged too. Rounds
// interleave the two, alternating which goes first; the metrics are
// medians and their ratio. Each round logs the scan job's own timing line
// (pickup, blob opens, each layer, the layer cache's lookups and stores,
// matching, the report's store). The process's CPU time over each window
// is measured too (the on-push window includes whatever else the registry
// did meanwhile): on a machine shared with other work, wall times swing
// with its load, CPU times much less; cpu-ratio is the ratio of their
// medians.
//
//	go test ./internal/scanning -run '^$' -bench ScanOnPush -benchtime 11x -v
func BenchmarkScanOnPush(b *testing.B) {
	ctx := context.Background()
	dbPath := corpusDB(b)
	db, err := vulndb.Open(dbPath)
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	img := corpusImage(b, "debian-12-app.oci.tar")
	// What lading scan reads: the layout through lading's own content
	// package, which checks every blob against its digest as the
	// registry's reads do.
	dir := corpusLayout(b, "debian-12-app.oci.tar")
	lay, err := ocilayout.Open(os.DirFS(dir), "oci:"+dir)
	if err != nil {
		b.Fatal(err)
	}
	desc := lay.IndexManifest().Manifests[0]
	raw, err := content.ReadAll(lay, desc, content.MaxManifestSize, "manifest")
	if err != nil {
		b.Fatal(err)
	}
	local, err := content.ImageFromManifest(lay, desc, raw)
	if err != nil {
		b.Fatal(err)
	}
	var onPush, standalone, onPushCPU, standaloneCPU []time.Duration
	scanOnPush := func() time.Duration {
		srv := start(b, dbPath)
		newProject(b, srv, "bench", map[string]string{"auto_scan": "true"})
		dgst := push(b, srv, img, "bench/app:1")
		pushed, cpu0 := time.Now(), cpuTime()
		var (
			status string
			end    int64
			job    int64
		)
		for {
			srv.DB.QueryRow(ctx, `SELECT status, end_time, job_id FROM scan_reports WHERE digest = ? AND scan_type = 'vulnerability'`, dgst).Scan(&status, &end, &job)
			if status == "Success" {
				break
			}
			if status != "" && status != "Pending" && status != "Running" {
				b.Fatalf("scan on push: %s", status)
			}
			time.Sleep(2 * time.Millisecond)
		}
		took, cpu := time.Since(pushed), cpuTime()-cpu0
		onPushCPU = append(onPushCPU, cpu)
		recorded := sqldb.Time(end).Sub(pushed)
		if s := overview(b, srv, "bench", "app", "1"); s == nil || s.ScanStatus != "Success" {
			b.Fatalf("scan on push: the API says %+v", s)
		}
		b.Logf("scan on push: Success seen after %s (its end_time says %s, before its commit), process CPU %s; job: %s", took.Round(time.Millisecond), recorded.Round(time.Millisecond), cpu.Round(time.Millisecond), jobTiming(b, srv, job))
		srv.Stop() // no idle registry's polling in the next rounds' windows
		return took
	}
	alone := func() time.Duration {
		c, err := cache.Open(b.TempDir())
		if err != nil {
			b.Fatal(err)
		}
		t0, cpu0 := time.Now(), cpuTime()
		_, _, err = scan.New(db, dbPath, nil).Image(ctx, local, scan.ImageInfo{Name: "debian-12-app"},
			analyze.WithCache(c), analyze.WithParallel(2))
		if err != nil {
			b.Fatal(err)
		}
		took, cpu := time.Since(t0), cpuTime()-cpu0
		standaloneCPU = append(standaloneCPU, cpu)
		b.Logf("standalone: %s, process CPU %s", took.Round(time.Millisecond), cpu.Round(time.Millisecond))
		return took
	}
	for i := range b.N {
		// Alternate which goes first, so that neither always inherits
		// the other's garbage or the page cache's state.
		if i%2 == 0 {
			onPush = append(onPush, scanOnPush())
			standalone = append(standalone, alone())
		} else {
			standalone = append(standalone, alone())
			onPush = append(onPush, scanOnPush())
		}
		b.Logf("round %d: scan on push %s, standalone %s", i+1, onPush[i].Round(time.Millisecond), standalone[i].Round(time.Millisecond))
	}
	med := func(d []time.Duration) time.Duration { d = slices.Clone(d); slices.Sort(d); return d[len(d)/2] }
	b.ReportMetric(med(onPush).Seconds(), "onpush-s")
	b.ReportMetric(med(standalone).Seconds(), "standalone-s")
	b.ReportMetric(float64(med(onPush))/float64(med(standalone)), "ratio")
	b.ReportMetric(med(onPushCPU).Seconds(), "onpush-cpu-s")
	b.ReportMetric(med(standaloneCPU).Seconds(), "standalone-cpu-s")
	b.ReportMetric(float64(med(onPushCPU))/float64(med(standaloneCPU)), "cpu-ratio")
}

// jobTiming returns the timing line of a scan job's log, waiting for the
// log to be stored (at the attempt's end, just after the report's).
func jobTiming(b *testing.B, srv *harbortest.Server, job int64) string {
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		var line string
		srv.DB.QueryRow(context.Background(), `SELECT line FROM job_log WHERE job_id = ? AND line LIKE 'timing:%'`, job).Scan(&line)
		if line != "" {
			return strings.TrimPrefix(line, "timing: ")
		}
		time.Sleep(20 * time.Millisecond)
	}
	return "(no timing line)"
}

// cpuTime is the CPU time (user and system) this process has used.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
