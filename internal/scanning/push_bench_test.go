package scanning_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/lading-dev/lading/internal/scan"
	"github.com/lading-dev/lading/internal/vulndb"
)

// BenchmarkScanOnPush measures, per round, the time from the
// acknowledgement of a push of the corpus's debian-12-app (remote.Write
// returns) to its scan's Success, seen by polling the overview every
// 10 ms, against a standalone scan of the same image in the same process
// (internal/scan over the image read from its OCI archive, no layer
// cache, the same database): what lading scan does. Each round starts a
// fresh registry, so its layer cache is cold as the standalone scan's.
// Rounds interleave the two; the metrics are medians and their ratio.
//
//	go test ./internal/scanning -run '^$' -bench ScanOnPush -benchtime 5x -v
func BenchmarkScanOnPush(b *testing.B) {
	ctx := context.Background()
	dbPath := corpusDB(b)
	db, err := vulndb.Open(dbPath)
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	img := corpusImage(b, "debian-12-app.oci.tar")
	var onPush, standalone []time.Duration
	for i := range b.N {
		srv := start(b, dbPath)
		newProject(b, srv, "bench", map[string]string{"auto_scan": "true"})
		push(b, srv, img, "bench/app:1")
		pushed := time.Now()
		for {
			s := overview(b, srv, "bench", "app", "1")
			if s != nil && s.ScanStatus == "Success" {
				break
			}
			if s != nil && s.ScanStatus != "Pending" && s.ScanStatus != "Running" {
				b.Fatalf("scan on push: %+v", s)
			}
			time.Sleep(10 * time.Millisecond)
		}
		onPush = append(onPush, time.Since(pushed))

		t0 := time.Now()
		if _, _, err := scan.New(db, dbPath, nil).Image(ctx, img, scan.ImageInfo{Name: "debian-12-app"}); err != nil {
			b.Fatal(err)
		}
		standalone = append(standalone, time.Since(t0))
		b.Logf("round %d: scan on push %s, standalone %s", i+1, onPush[i].Round(time.Millisecond), standalone[i].Round(time.Millisecond))
	}
	med := func(d []time.Duration) time.Duration { d = slices.Clone(d); slices.Sort(d); return d[len(d)/2] }
	b.ReportMetric(med(onPush).Seconds(), "onpush-s")
	b.ReportMetric(med(standalone).Seconds(), "standalone-s")
	b.ReportMetric(float64(med(onPush))/float64(med(standalone)), "ratio")
}
