package server_test

import (
	"context"
	"crypto/sha256"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/goharbor/go-client/pkg/sdk/v2.0/client/gc"
	"github.com/goharbor/go-client/pkg/sdk/v2.0/models"
	"golang.org/x/sync/errgroup"

	"github.com/lading-dev/lading/internal/artifact"
	"github.com/lading-dev/lading/internal/harbortest"
	"github.com/lading-dev/lading/internal/registry/meta"
	"github.com/lading-dev/lading/internal/registry/server"
	"github.com/lading-dev/lading/internal/sqldb"
)

// BenchmarkGC100k is garbage collection through the API over a generated
// store of 100,000 artifacts in 1,000 repositories of one project (each
// artifact a manifest, a config and a layer: 300,000 blobs, their files
// in storage, the registry's metadata and the artifact view), of which
// one in a hundred is untagged and one in a hundred more deleted (its
// blobs unreferenced):
//
//	go test -run '^$' -bench GC100k -benchtime 1x -timeout 30m ./internal/registry/server/
//
// It runs, with delete_untagged, a dry run and then a real run, and
// reports each one's wall time and the heap's peak above what the seeded
// server held, with the dry run's count of blobs and bytes it would
// free. The baseline is a walk of the storage's blob files (what any
// collector must at least do), timed in the same run.
func BenchmarkGC100k(b *testing.B) {
	const repos, perRepo = 1000, 100
	srv := harbortest.Start(b, harbortest.WithConfig(func(c *server.Config) {
		c.Jobs.Poll = 20 * time.Millisecond
		zero := time.Duration(0)
		c.GC.Grace = &zero
	}))
	root := srv.Config.Storage.Filesystem.Root
	t0 := time.Now()
	for r := range repos {
		seedStore(b, srv, root, fmt.Sprintf("library/g%04d", r), r, perRepo)
	}
	b.Logf("seeded %d repositories of %d artifacts in %s", repos, perRepo, time.Since(t0).Round(time.Second))
	a := srv.Admin()
	ctx := context.Background()
	run := func(dry bool) string {
		_, err := a.GC.CreateGCSchedule(ctx, gc.NewCreateGCScheduleParams().WithSchedule(&models.Schedule{
			Schedule: &models.ScheduleObj{Type: "Manual"}, Parameters: map[string]any{"dry_run": dry, "delete_untagged": true, "workers": 4}}))
		if err != nil {
			b.Fatal(err)
		}
		for {
			res, err := a.GC.GetGCHistory(ctx, gc.NewGetGCHistoryParams())
			if err != nil {
				b.Fatal(err)
			}
			if h := res.Payload[0]; h.JobStatus != "Running" && h.JobStatus != "Pending" {
				if h.JobStatus != "Success" {
					b.Fatalf("gc (dry run %v): %+v", dry, h)
				}
				log, err := a.GC.GetGCLog(ctx, gc.NewGetGCLogParams().WithGCID(h.ID))
				if err != nil {
					b.Fatal(err)
				}
				return log.Payload
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	b.ResetTimer()
	for range b.N {
		walk, _ := measure(func() {
			n := 0
			filepath.WalkDir(filepath.Join(root, "blobs"), func(_ string, d fs.DirEntry, err error) error {
				if err == nil && !d.IsDir() {
					if _, err := d.Info(); err == nil {
						n++
					}
				}
				return err
			})
		})
		var log string
		dry, dryPeak := measure(func() { log = run(true) })
		for _, line := range strings.Split(log, "\n") {
			if strings.Contains(line, "eligible for deletion") || strings.Contains(line, "could free up") {
				b.Log(line)
			}
		}
		real, realPeak := measure(func() { log = run(false) })
		for _, line := range strings.Split(log, "\n") {
			if strings.Contains(line, "actually deleted") || strings.Contains(line, "actual frees up") {
				b.Log(line)
			}
		}
		// Also printed at once: removing the store's 300,000 files
		// when the benchmark ends takes minutes on a slow disk.
		fmt.Printf("GC100k: walk %.2fs, dry run %.2fs (peak heap %.1f MiB), real run %.2fs (peak heap %.1f MiB)\n",
			walk.Seconds(), dry.Seconds(), dryPeak, real.Seconds(), realPeak)
		b.ReportMetric(walk.Seconds(), "walk-s")
		b.ReportMetric(dry.Seconds(), "dry-s")
		b.ReportMetric(dryPeak, "dry-peak-heap-MiB")
		b.ReportMetric(real.Seconds(), "real-s")
		b.ReportMetric(realPeak, "real-peak-heap-MiB")
		b.ReportMetric(dry.Seconds()/walk.Seconds(), "dry/walk")
	}
}

// seedStore writes a repository of n artifacts as a push would leave
// them (blob rows, links, manifests, references, tags, the artifact view;
// in one transaction) and their blobs' files under root; the artifact
// i%100 == 7 is untagged, i%100 == 3 deleted (its blobs left). It is
// dated an hour ago.
func seedStore(b *testing.B, srv *harbortest.Server, root, repo string, r, n int) {
	ctx := context.Background()
	then := sqldb.Nanos(time.Now().Add(-time.Hour))
	var files [][]byte
	var blobs, links, manifests, refs, tags [][]any
	var views []artifact.Pushed
	blob := func(content []byte) string {
		d := fmt.Sprintf("sha256:%x", sha256.Sum256(content))
		files = append(files, content)
		blobs = append(blobs, []any{d, len(content), meta.StatePresent, then, then})
		links = append(links, []any{repo, d, then})
		return d
	}
	for i := range n {
		cfgBody := []byte(fmt.Sprintf(`{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]},"config":{"Labels":{"r":"%d","i":"%d"}}}`, r, i))
		cfg := blob(cfgBody)
		layerBody := []byte(strings.Repeat(fmt.Sprintf("layer %d of %d ", i, r), 64))
		layer := blob(layerBody)
		m := fmt.Sprintf(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","size":%d,"digest":"%s"},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","size":%d,"digest":"%s"}]}`,
			len(cfgBody), cfg, len(layerBody), layer)
		dgst := blob([]byte(m))
		if i%100 == 3 {
			continue // deleted: its blobs are left unreferenced
		}
		manifests = append(manifests, []any{repo, dgst, "application/vnd.oci.image.manifest.v1+json", len(m), "", "", "{}", then})
		refs = append(refs, []any{repo, dgst, cfg}, []any{repo, dgst, layer})
		p := artifact.Pushed{Repo: repo, Digest: dgst, MediaType: "application/vnd.oci.image.manifest.v1+json", Size: int64(len(m)), Content: []byte(m)}
		if i%100 != 7 {
			p.Tags = []string{fmt.Sprintf("v%d", i)}
			tags = append(tags, []any{repo, p.Tags[0], dgst, then})
		}
		views = append(views, p)
	}
	var g errgroup.Group
	g.SetLimit(8)
	for _, content := range files {
		g.Go(func() error {
			sum := fmt.Sprintf("%x", sha256.Sum256(content))
			dir := filepath.Join(root, "blobs", "sha256", sum[:2], sum)
			if err := os.MkdirAll(dir, 0o755); err != nil {
				return err
			}
			return os.WriteFile(filepath.Join(dir, "data"), content, 0o644)
		})
	}
	if err := g.Wait(); err != nil {
		b.Fatal(err)
	}
	err := srv.DB.Tx(ctx, "seed", func(tx *sqldb.Tx) error {
		if _, err := tx.Exec(ctx, `INSERT INTO repositories (name, created) VALUES (?, ?)`, repo, then); err != nil {
			return err
		}
		for _, t := range []struct {
			head string
			rows [][]any
		}{
			{`INSERT INTO blobs (digest, size, state, created, updated) VALUES `, blobs},
			{`INSERT INTO repo_blobs (repo, digest, linked) VALUES `, links},
			{`INSERT INTO manifests (repo, digest, media_type, size, artifact_type, subject, annotations, created) VALUES `, manifests},
			{`INSERT INTO manifest_refs (repo, manifest, child) VALUES `, refs},
			{`INSERT INTO tags (repo, tag, digest, updated) VALUES `, tags},
		} {
			if err := insertRows(ctx, tx, t.head, t.rows); err != nil {
				return err
			}
		}
		for _, p := range views {
			if err := srv.Core.Artifacts.ManifestPut(ctx, tx, p); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
}

// insertRows inserts rows with multi-row statements of head.
func insertRows(ctx context.Context, tx *sqldb.Tx, head string, rows [][]any) error {
	for start := 0; start < len(rows); start += 200 {
		part := rows[start:min(start+200, len(rows))]
		var q strings.Builder
		q.WriteString(head)
		var args []any
		for i, row := range part {
			if i > 0 {
				q.WriteString(", ")
			}
			q.WriteString("(" + strings.TrimSuffix(strings.Repeat("?, ", len(row)), ", ") + ")")
			args = append(args, row...)
		}
		if _, err := tx.Exec(ctx, q.String(), args...); err != nil {
			return err
		}
	}
	return nil
}
