package registry_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	"github.com/lading-dev/lading/internal/registry"
	"github.com/lading-dev/lading/internal/registry/meta"
	"github.com/lading-dev/lading/internal/registry/meta/sqlite"
	"github.com/lading-dev/lading/internal/registry/storage/fs"
)

// The API is built over the metadata roles it serves from and the collector
// over its own: each gets a value that has nothing else (a struct embedding
// only the role), and together they still push, delete and collect.
func TestRoles(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	store, err := sqlite.Open(ctx, filepath.Join(dir, "meta.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	drv, err := fs.New(filepath.Join(dir, "content"))
	if err != nil {
		t.Fatal(err)
	}
	reg := registry.New(drv, struct{ meta.API }{store})
	gc := registry.NewCollector(drv, struct{ meta.Collector }{store})
	srv := httptest.NewServer(reg)
	defer srv.Close()
	tr := &testRegistry{url: srv.URL, client: srv.Client()}
	layer := randomBytes(100)
	body, _ := tr.image(t, "r", layer)
	want(t, "push", tr.putManifest(t, "r", "v1", body, registry.MediaTypeOCIManifest), http.StatusCreated, "")
	want(t, "delete", tr.do(t, "DELETE", "/v2/r/manifests/"+digestOf(body), nil), http.StatusAccepted, "")
	rep, err := gc.Collect(ctx, registry.GCOptions{Grace: time.Nanosecond})
	if err != nil {
		t.Fatal(err)
	}
	if rep.BlobsDeleted != 3 {
		t.Errorf("collected %d blobs, want the manifest, its config and its layer", rep.BlobsDeleted)
	}
	want(t, "collected layer", tr.do(t, "HEAD", "/v2/r/blobs/"+digestOf(layer), nil), http.StatusNotFound, "")
}
