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
// returns) to its scan's Success, seen by reading the report's status in
// the metadata database every 10 ms (polling the API instead would run a
// request through authentication and the overview's queries, on the
// cores the scan runs on), against a standalone scan of the same image in the same process
// (internal/scan over the image read from its OCI archive, no layer
// cache, the same database): what lading scan does. Each round starts a
// fresh registry, so its layer cache is cold as the standalone scan's.
// Rounds interleave the two, alternating which goes first; the metrics
// are medians and their ratio.
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
	scanOnPush := func() time.Duration {
		srv := start(b, dbPath)
		newProject(b, srv, "bench", map[string]string{"auto_scan": "true"})
		dgst := push(b, srv, img, "bench/app:1")
		pushed := time.Now()
		for {
			var status string
			srv.DB.QueryRow(ctx, `SELECT status FROM scan_reports WHERE digest = ? AND scan_type = 'vulnerability'`, dgst).Scan(&status)
			if status == "Success" {
				break
			}
			if status != "" && status != "Pending" && status != "Running" {
				b.Fatalf("scan on push: %s", status)
			}
			time.Sleep(10 * time.Millisecond)
		}
		took := time.Since(pushed)
		if s := overview(b, srv, "bench", "app", "1"); s == nil || s.ScanStatus != "Success" {
			b.Fatalf("scan on push: the API says %+v", s)
		}
		return took
	}
	alone := func() time.Duration {
		t0 := time.Now()
		if _, _, err := scan.New(db, dbPath, nil).Image(ctx, img, scan.ImageInfo{Name: "debian-12-app"}); err != nil {
			b.Fatal(err)
		}
		return time.Since(t0)
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
}
