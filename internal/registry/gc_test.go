package registry_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lading-dev/lading/internal/registry"
	"github.com/lading-dev/lading/internal/registry/meta/pgtest"
	"github.com/lading-dev/lading/internal/registry/meta/postgres"
)

// blobFile is where the filesystem driver keeps a blob.
func (tr *testRegistry) blobFile(d string) string {
	alg, hex, _ := strings.Cut(d, ":")
	return filepath.Join(tr.root, "blobs", alg, hex[:2], hex, "data")
}

func exists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

func TestGC(t *testing.T) {
	tr := newRegistry(t)
	ctx := context.Background()
	keepLayer, dropLayer, loose := randomBytes(100), randomBytes(200), randomBytes(300)
	keep, _ := tr.image(t, "r", keepLayer)
	tr.putManifest(t, "r", "keep", keep, registry.MediaTypeOCIManifest)
	drop, dropM := tr.image(t, "r", dropLayer)
	tr.putManifest(t, "r", "drop", drop, registry.MediaTypeOCIManifest)
	want(t, "delete", tr.do(t, "DELETE", "/v2/r/manifests/"+digestOf(drop), nil), http.StatusAccepted, "")
	looseD := tr.pushBlob(t, "r", loose)

	// An orphan: content with no metadata, from a crash.
	orphan := randomBytes(50)
	orphanD := digestOf(orphan)
	os.MkdirAll(filepath.Dir(tr.blobFile(orphanD)), 0o755)
	os.WriteFile(tr.blobFile(orphanD), orphan, 0o644)
	old := time.Now().Add(-2 * time.Hour)
	os.Chtimes(tr.blobFile(orphanD), old, old)
	// A chunk directory no session names, and a writer's temp file.
	stale := filepath.Join(tr.root, "uploads", strings.Repeat("ab", 16))
	os.MkdirAll(stale, 0o755)
	os.WriteFile(filepath.Join(stale, "00000000000000000000-x"), []byte("x"), 0o644)
	os.Chtimes(filepath.Join(stale, "00000000000000000000-x"), old.Add(-48*time.Hour), old.Add(-48*time.Hour))
	tmp := filepath.Join(tr.root, "blobs", ".data.tmp-0123")
	os.WriteFile(tmp, []byte("partial"), 0o644)
	os.Chtimes(tmp, old.Add(-48*time.Hour), old.Add(-48*time.Hour))
	// An upload session in progress.
	r := tr.do(t, "POST", "/v2/r/blobs/uploads/", nil)
	tr.do(t, "PATCH", r.header.Get("Location"), []byte("in progress"))
	session := r.header.Get("Location")

	// Within the grace window nothing recent goes.
	rep, err := tr.CollectGarbage(ctx, registry.GCOptions{Grace: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	if rep.BlobsDeleted != 0 || rep.OrphansDeleted != 1 || rep.ChunkDirs != 1 || rep.TempPurged != 1 {
		t.Errorf("with grace: %+v", rep)
	}
	if exists(tr.blobFile(orphanD)) || exists(stale) || exists(tmp) {
		t.Error("orphan, stale chunks or temp file survived")
	}
	for _, d := range []string{digestOf(dropLayer), dropM.Config.Digest, digestOf(drop), looseD} {
		if !exists(tr.blobFile(d)) {
			t.Errorf("%s collected inside the grace window", d)
		}
	}

	// A dry run with no grace reports and deletes nothing.
	rep, err = tr.CollectGarbage(ctx, registry.GCOptions{Grace: time.Nanosecond, DryRun: true})
	if err != nil {
		t.Fatal(err)
	}
	if rep.BlobsDeleted != 4 || !rep.DryRun {
		t.Errorf("dry run: %+v", rep)
	}
	if !exists(tr.blobFile(looseD)) {
		t.Error("dry run deleted")
	}

	rep, err = tr.CollectGarbage(ctx, registry.GCOptions{Grace: time.Nanosecond})
	if err != nil {
		t.Fatal(err)
	}
	if rep.BlobsDeleted != 4 || rep.BytesDeleted != int64(len(dropLayer)+len(loose)+len(drop))+dropM.Config.Size {
		t.Errorf("collection: %+v", rep)
	}
	for _, d := range []string{digestOf(dropLayer), dropM.Config.Digest, digestOf(drop), looseD} {
		if exists(tr.blobFile(d)) {
			t.Errorf("%s not collected", d)
		}
		want(t, "HEAD collected "+d, tr.do(t, "HEAD", "/v2/r/blobs/"+d, nil), http.StatusNotFound, "")
	}
	// What the kept manifest references is intact.
	r = tr.do(t, "GET", "/v2/r/manifests/keep", nil)
	want(t, "kept manifest", r, http.StatusOK, "")
	var m manifest
	json.Unmarshal(r.body, &m)
	for _, d := range append([]desc{*m.Config}, m.Layers...) {
		r := tr.do(t, "GET", "/v2/r/blobs/"+d.Digest, nil)
		if r.status != 200 || digestOf(r.body) != d.Digest {
			t.Errorf("kept blob %s: %d", d.Digest, r.status)
		}
	}
	// The session is young: it survives; with no TTL left it expires.
	want(t, "session kept", tr.do(t, "GET", session, nil), http.StatusNoContent, "")
	rep, err = tr.CollectGarbage(ctx, registry.GCOptions{Grace: time.Hour, UploadTTL: time.Nanosecond})
	if err != nil {
		t.Fatal(err)
	}
	if rep.UploadsExpired != 1 {
		t.Errorf("expiry: %+v", rep)
	}
	want(t, "session expired", tr.do(t, "GET", session, nil), http.StatusNotFound, "BLOB_UPLOAD_UNKNOWN")
	// A pushed blob can be pushed again after its collection.
	if d := tr.pushBlob(t, "r", loose); !exists(tr.blobFile(d)) {
		t.Error("re-pushed blob missing")
	}
	r = tr.do(t, "GET", "/metrics", nil)
	if !strings.Contains(string(r.body), "lading_registry_gc_blobs_deleted_total 5") {
		t.Error("GC metrics not counted")
	}
}

// Pushes and a collector with no grace window at all run together: every
// manifest the registry accepted must keep all its blobs, readable and
// matching their digests. Pushes the collector beat get a clear refusal
// (MANIFEST_BLOB_UNKNOWN or 503) and are retried, as clients do.
func TestGCDuringPushes(t *testing.T) {
	t.Run("sqlite", func(t *testing.T) { gcDuringPushes(t, newRegistry(t)) })
	t.Run("postgres", func(t *testing.T) {
		pg := pgtest.Start(t)
		store, err := postgres.Open(context.Background(), pg.NewDatabase(t))
		if err != nil {
			t.Fatal(err)
		}
		gcDuringPushes(t, newRegistryOn(t, store))
	})
}

func gcDuringPushes(t *testing.T, tr *testRegistry) {
	ctx := context.Background()
	// A collector running back to back with no grace may take a blob's
	// directory away while a push writes it; the registry answers 503
	// (retry), and clients retry, as docker does.
	tr.retries = 20
	stop := make(chan struct{})
	var gcWG sync.WaitGroup
	gcRuns := 0
	gcWG.Go(func() {
		for {
			select {
			case <-stop:
				return
			default:
			}
			if _, err := tr.CollectGarbage(ctx, registry.GCOptions{Grace: time.Nanosecond}); err != nil {
				t.Errorf("gc: %v", err)
				return
			}
			gcRuns++
		}
	})
	type pushed struct {
		repo, tag string
		body      []byte
	}
	var mu sync.Mutex
	var done []pushed
	var wg sync.WaitGroup
	for p := range 4 {
		wg.Go(func() {
			repo := fmt.Sprintf("p%d", p)
			for i := range 8 {
				tag := fmt.Sprintf("t%d", i)
				// Layers shared between pushes, to race the
				// collector on the same digests.
				shared := []byte(fmt.Sprintf("shared layer %d", i%3))
				var body []byte
				var last response
				for attempt := 0; attempt < 50; attempt++ {
					body, _ = tr.image(t, repo, shared, randomBytes(64))
					last = tr.putManifest(t, repo, tag, body, registry.MediaTypeOCIManifest)
					if last.status == http.StatusCreated {
						break
					}
					if last.code() != "MANIFEST_BLOB_UNKNOWN" && last.status != http.StatusServiceUnavailable {
						t.Errorf("push %s:%s: %d %s", repo, tag, last.status, last.body)
						return
					}
				}
				if last.status != http.StatusCreated {
					t.Errorf("push %s:%s never succeeded: %s", repo, tag, last.body)
					return
				}
				mu.Lock()
				done = append(done, pushed{repo, tag, body})
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	close(stop)
	gcWG.Wait()
	// One more collection with everything idle: still nothing lost.
	if _, err := tr.CollectGarbage(ctx, registry.GCOptions{Grace: time.Nanosecond}); err != nil {
		t.Fatal(err)
	}
	t.Logf("%d manifests pushed during %d collections", len(done), gcRuns)
	for _, p := range done {
		r := tr.do(t, "GET", "/v2/"+p.repo+"/manifests/"+p.tag, nil)
		if r.status != 200 || !bytes.Equal(r.body, p.body) {
			t.Errorf("%s:%s: manifest %d", p.repo, p.tag, r.status)
			continue
		}
		var m manifest
		json.Unmarshal(r.body, &m)
		for _, d := range append([]desc{*m.Config}, m.Layers...) {
			r := tr.do(t, "GET", "/v2/"+p.repo+"/blobs/"+d.Digest, nil)
			if r.status != 200 || digestOf(r.body) != d.Digest {
				t.Errorf("%s:%s: blob %s lost (%d)", p.repo, p.tag, d.Digest, r.status)
			}
		}
	}
}
