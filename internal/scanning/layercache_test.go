package scanning_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/goharbor/go-client/pkg/sdk/v2.0/client/scan"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"

	"github.com/lading-dev/lading/internal/harbortest"
)

// scanLog is the log of an artifact's last scan, once its job has
// ended: the report's status changes inside the job, the job's last log
// lines are stored as it ends, a moment later.
func scanLog(t *testing.T, srv *harbortest.Server, project, repo, ref string) string {
	t.Helper()
	s := waitScan(t, srv, project, repo, ref)
	deadline := time.Now().Add(time.Minute)
	for {
		log, err := srv.Admin().Scan.GetReportLog(context.Background(), scan.NewGetReportLogParams().WithProjectName(project).WithRepositoryName(repo).
			WithReference(ref).WithReportID(s.ReportID))
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(log.Payload, "] succeeded") || strings.Contains(log.Payload, "] failed: ") || time.Now().After(deadline) {
			return log.Payload
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestLayerCache checks that a layer is analyzed once for the registry,
// asked by the digest of the blob the registry verified: an image built
// on the corpus's alpine-3.20-app (its five layers and one more) finds
// the five in the cache, in another project; an image whose config
// claims the app's diffIDs for layers of other content finds none.
func TestLayerCache(t *testing.T) {
	srv := start(t, corpusDB(t))
	newProject(t, srv, "team", map[string]string{"auto_scan": "true"})
	newProject(t, srv, "other", map[string]string{"auto_scan": "true"})
	app := corpusImage(t, "alpine-3.20-app.oci.tar")
	push(t, srv, app, "team/app:1")
	if log := scanLog(t, srv, "team", "app", "1"); !containsText(log, "analyzed 5 layers, 0 from the layer cache") {
		t.Errorf("first scan's log: %s", log)
	}

	extra, err := random.Layer(4096, "application/vnd.oci.image.layer.v1.tar+gzip")
	if err != nil {
		t.Fatal(err)
	}
	derived, err := mutate.AppendLayers(app, extra)
	if err != nil {
		t.Fatal(err)
	}
	push(t, srv, derived, "other/derived:1")
	if log := scanLog(t, srv, "other", "derived", "1"); !containsText(log, "analyzed 6 layers, 5 from the layer cache") {
		t.Errorf("derived image's log: %s", log)
	}

	// A report of another project's artifact is not this one's.
	other := waitScan(t, srv, "other", "derived", "1")
	_, err = srv.Admin().Scan.GetReportLog(context.Background(), scan.NewGetReportLogParams().WithProjectName("team").WithRepositoryName("app").
		WithReference("1").WithReportID(other.ReportID))
	if code := statusOf(err); code != 403 {
		t.Errorf("log of another project's report: %d (%v), want 403", code, err)
	}

	// A pusher's config claims the app's diffIDs for random layers.
	cf, err := app.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	var liar = empty.Image
	for range cf.RootFS.DiffIDs {
		l, err := random.Layer(2048, "application/vnd.oci.image.layer.v1.tar+gzip")
		if err != nil {
			t.Fatal(err)
		}
		if liar, err = mutate.AppendLayers(liar, l); err != nil {
			t.Fatal(err)
		}
	}
	lcf, err := liar.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	lcf = lcf.DeepCopy()
	lcf.RootFS.DiffIDs = cf.RootFS.DiffIDs
	lcf.OS, lcf.Architecture = cf.OS, cf.Architecture
	if liar, err = mutate.ConfigFile(liar, lcf); err != nil {
		t.Fatal(err)
	}
	push(t, srv, liar, "other/liar:1")
	s := waitScan(t, srv, "other", "liar", "1")
	log := scanLog(t, srv, "other", "liar", "1")
	if containsText(log, "from the layer cache") && !containsText(log, ", 0 from the layer cache") {
		t.Errorf("claimed diffIDs were taken from the cache: %s", log)
	}
	if s.ScanStatus == "Success" && s.Summary != nil && s.Summary.Total != 0 {
		t.Errorf("random layers reported vulnerabilities (the app's, by its diffIDs): %+v", s.Summary)
	}
}
