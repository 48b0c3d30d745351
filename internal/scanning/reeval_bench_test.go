package scanning_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"

	"github.com/lading-dev/lading/internal/harbortest"
	"github.com/lading-dev/lading/internal/match"
	"github.com/lading-dev/lading/internal/scanning"
	"github.com/lading-dev/lading/internal/sqldb"
	"github.com/lading-dev/lading/internal/vulndb/feed"
)

// BenchmarkReevaluate10k measures the re-evaluation of 10,000 stored
// reports after a database update. The store is generated: three corpus
// images (alpine-3.20-app, alpine-3.10, debian-12-app) are scanned
// against a database of the Go feed alone, then their reports are cloned
// 10,000 times, each clone with a random 90% of its image's packages and
// its own digest; the update (to the Go, npm and Alpine feeds) changes
// most verdicts. The figure is the re-evaluation job's own timing
// (reeval-s), excluding the database build; each iteration also builds
// the database, so run one:
//
//	go test ./internal/scanning -run '^$' -bench Reevaluate10k -benchtime 1x -cpu 1
func BenchmarkReevaluate10k(b *testing.B) {
	const n = 10000
	ctx := context.Background()
	feeds := feedsOf(b)
	goOnly := filepath.Join(b.TempDir(), "go.db")
	if _, err := feed.Build(ctx, nil, goOnly, feeds[2:]); err != nil {
		b.Fatal(err)
	}
	srv := start(b, goOnly, harbortest.WithScanning(func(o *scanning.Options) {
		o.Source = scanning.Source{Feeds: feeds, Schedule: "@weekly"}
	}))
	newProject(b, srv, "bench", map[string]string{"auto_scan": "true"})
	for _, img := range []string{"alpine-3.20-app", "alpine-3.10", "debian-12-app"} {
		push(b, srv, corpusImage(b, img+".oci.tar"), "bench/"+img+":1")
		if s := waitScan(b, srv, "bench", img, "1"); s.ScanStatus != "Success" {
			b.Fatalf("%s: %+v", img, s)
		}
	}
	generate(b, srv, n)

	b.ResetTimer()
	var total time.Duration
	for range b.N {
		took, reports := reevaluation(b, srv)
		b.Logf("re-evaluated %d reports in %s", reports, took)
		if reports < n {
			b.Fatalf("re-evaluated %d reports, want at least %d", reports, n)
		}
		total += took
	}
	b.ReportMetric(total.Seconds()/float64(b.N), "reeval-s")
	b.ReportMetric(float64(n)/(total.Seconds()/float64(b.N)), "reports/s")
}

// generate clones the stored reports into n more.
func generate(b *testing.B, srv *harbortest.Server, n int) {
	ctx := context.Background()
	type tmpl struct {
		registration, scanType, mime, repo, media, dbDigest, summary string
		severity                                                     int64
		findings                                                     []byte
		pkgs                                                         []match.Package
	}
	rows, err := srv.DB.Query(ctx, `SELECT registration, scan_type, mime_type, repository, media_type, db_digest, severity, summary, findings, packages
		FROM scan_reports WHERE status = 'Success' AND scan_type = 'vulnerability'`)
	if err != nil {
		b.Fatal(err)
	}
	dec, _ := zstd.NewReader(nil)
	defer dec.Close()
	var ts []tmpl
	for rows.Next() {
		var t tmpl
		var packed []byte
		if err := rows.Scan(&t.registration, &t.scanType, &t.mime, &t.repo, &t.media, &t.dbDigest, &t.severity, &t.summary, &t.findings, &packed); err != nil {
			b.Fatal(err)
		}
		raw, err := dec.DecodeAll(packed, nil)
		if err != nil {
			b.Fatal(err)
		}
		if err := json.Unmarshal(raw, &t.pkgs); err != nil {
			b.Fatal(err)
		}
		ts = append(ts, t)
	}
	rows.Close()
	if len(ts) != 3 {
		b.Fatalf("%d reports to clone, want 3", len(ts))
	}
	enc, _ := zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedFastest))
	rng := rand.New(rand.NewPCG(1, 2))
	const batch = 500
	for start := 0; start < n; start += batch {
		err := srv.DB.Tx(ctx, "generate reports", func(tx *sqldb.Tx) error {
			for i := start; i < min(start+batch, n); i++ {
				t := ts[i%len(ts)]
				var pkgs []match.Package
				for _, p := range t.pkgs {
					if rng.IntN(10) != 0 {
						pkgs = append(pkgs, p)
					}
				}
				raw, _ := json.Marshal(pkgs)
				if _, err := tx.Exec(ctx, `INSERT INTO scan_reports (uuid, digest, registration, scan_type, mime_type, repository, media_type, status, db_digest, severity, summary, findings, packages)
					VALUES (?, ?, ?, ?, ?, ?, ?, 'Success', ?, ?, ?, ?, ?)`,
					fmt.Sprintf("bench-%08d", i), fmt.Sprintf("sha256:%064x", i), t.registration, t.scanType, t.mime, t.repo, t.media, t.dbDigest, t.severity, t.summary,
					t.findings, enc.EncodeAll(raw, nil)); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
	}
}

var reevalLine = regexp.MustCompile(`re-evaluated (\d+) reports in ([^:]+):`)

// reevaluation updates the database and returns what the re-evaluation
// job's log says it took.
func reevaluation(b *testing.B, srv *harbortest.Server) (time.Duration, int) {
	ctx := context.Background()
	var last int64
	srv.DB.QueryRow(ctx, `SELECT COALESCE(MAX(id), 0) FROM jobs WHERE kind = ?`, scanning.KindReevaluate).Scan(&last)
	if _, err := srv.Scanning.UpdateDB(ctx); err != nil {
		b.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Minute)
	for time.Now().Before(deadline) {
		var id int64
		srv.DB.QueryRow(ctx, `SELECT COALESCE(MAX(id), 0) FROM jobs WHERE kind = ?`, scanning.KindReevaluate).Scan(&id)
		if id > last {
			log, err := srv.Core.Jobs.Log(ctx, id)
			if err != nil {
				b.Fatal(err)
			}
			if m := reevalLine.FindStringSubmatch(string(log)); m != nil {
				d, err := time.ParseDuration(strings.TrimSpace(m[2]))
				if err != nil {
					b.Fatal(err)
				}
				var reports int
				fmt.Sscan(m[1], &reports)
				return d, reports
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	b.Fatal("no re-evaluation within 10 minutes")
	return 0, 0
}
