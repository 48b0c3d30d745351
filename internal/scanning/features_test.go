package scanning_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/goharbor/go-client/pkg/sdk/v2.0/client/artifact"
	"github.com/goharbor/go-client/pkg/sdk/v2.0/client/scan"
	"github.com/goharbor/go-client/pkg/sdk/v2.0/client/scan_all"
	"github.com/goharbor/go-client/pkg/sdk/v2.0/models"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/lading-dev/lading/internal/harbortest"
	"github.com/lading-dev/lading/internal/scanning"
)

func scanParams(proj, repo, ref, typ string) *scan.ScanArtifactParams {
	p := scan.NewScanArtifactParams().WithProjectName(proj).WithRepositoryName(repo).WithReference(ref)
	if typ != "" {
		p = p.WithScanType(&models.ScanType{ScanType: typ})
	}
	return p
}

// TestIndexScan scans the corpus's multi-platform index: each image
// (linux/amd64 and linux/arm64/v8) gets its own report, and the index's
// overview is their sum.
func TestIndexScan(t *testing.T) {
	srv := start(t, corpusDB(t))
	newProject(t, srv, "multi", nil)
	idx := corpusIndex(t, "alpine-3.20-multiarch.oci.tar")
	m, _ := idx.IndexManifest()
	inner, err := idx.ImageIndex(m.Manifests[0].Digest)
	if err != nil {
		t.Fatal(err)
	}
	ref, _ := name.ParseReference(srv.Host+"/multi/alpine:3.20", name.Insecure)
	if err := remote.WriteIndex(ref, inner, remote.WithAuth(admin)); err != nil {
		t.Fatal(err)
	}
	if _, err := srv.Admin().Scan.ScanArtifact(context.Background(), scanParams("multi", "alpine", "3.20", "")); err != nil {
		t.Fatal(err)
	}
	s := waitScan(t, srv, "multi", "alpine", "3.20")
	if s.ScanStatus != "Success" {
		t.Fatalf("index: %+v", s)
	}
	im, _ := inner.IndexManifest()
	var total int64
	for _, c := range im.Manifests {
		cs := waitScan(t, srv, "multi", "alpine", c.Digest.String())
		if cs.ScanStatus != "Success" || cs.ReportID == s.ReportID {
			t.Errorf("%s (%s): %+v", c.Digest, c.Platform, cs)
		}
		total += cs.Summary.Total
	}
	if s.Summary == nil || s.Summary.Total != total {
		t.Errorf("index summary %+v, children total %d", s.Summary, total)
	}
	// Scanning again while nothing runs is accepted; the report is new.
	if _, err := srv.Admin().Scan.ScanArtifact(context.Background(), scanParams("multi", "alpine", "3.20", "")); err != nil {
		t.Fatal(err)
	}
	if s2 := waitScan(t, srv, "multi", "alpine", "3.20"); s2.ReportID == s.ReportID || s2.ScanStatus != "Success" {
		t.Errorf("second scan: %+v", s2)
	}
}

// TestSBOM generates an SBOM (scan_type sbom): it is an accessory of the
// image that the OCI referrers API lists, with Harbor's artifact type, and
// GET .../additions/sbom returns the SPDX document, on the image and on
// the accessory.
func TestSBOM(t *testing.T) {
	srv := start(t, corpusDB(t))
	newProject(t, srv, "sbom", nil)
	dgst := push(t, srv, corpusImage(t, "alpine-3.20-app.oci.tar"), "sbom/app:1")
	if _, err := srv.Admin().Scan.ScanArtifact(context.Background(), scanParams("sbom", "app", "1", "sbom")); err != nil {
		t.Fatal(err)
	}
	var so *models.SBOMOverview
	for deadline := time.Now().Add(2 * time.Minute); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		a, err := srv.Admin().Artifact.GetArtifact(context.Background(), artifact.NewGetArtifactParams().WithProjectName("sbom").WithRepositoryName("app").
			WithReference("1").WithWithSbomOverview(ptr(true)))
		if err != nil {
			t.Fatal(err)
		}
		if so = a.Payload.SbomOverview; so != nil && so.ScanStatus != "Pending" && so.ScanStatus != "Running" {
			break
		}
	}
	if so == nil || so.ScanStatus != "Success" || so.SbomDigest == "" {
		t.Fatalf("sbom overview: %+v", so)
	}
	// The referrers API, through go-containerregistry's client.
	subject, _ := name.NewDigest(srv.Host+"/sbom/app@"+dgst, name.Insecure)
	refs, err := remote.Referrers(subject, remote.WithAuth(admin))
	if err != nil {
		t.Fatal(err)
	}
	rm, _ := refs.IndexManifest()
	var found *v1.Descriptor
	for i, d := range rm.Manifests {
		if d.Digest.String() == so.SbomDigest {
			found = &rm.Manifests[i]
		}
	}
	if found == nil || found.ArtifactType != "application/vnd.goharbor.harbor.sbom.v1" {
		t.Fatalf("referrers of %s: %+v, want %s of Harbor's SBOM type", dgst, rm.Manifests, so.SbomDigest)
	}
	for _, ref := range []string{dgst, so.SbomDigest} {
		var doc struct {
			SPDXVersion string `json:"spdxVersion"`
			Packages    []struct {
				Name        string `json:"name"`
				VersionInfo string `json:"versionInfo"`
			} `json:"packages"`
		}
		if code := get(t, srv, "/api/v2.0/projects/sbom/repositories/app/artifacts/"+ref+"/additions/sbom", nil, &doc); code != 200 {
			t.Fatalf("additions/sbom of %s: %d", ref, code)
		}
		names := map[string]string{}
		for _, p := range doc.Packages {
			names[p.Name] = p.VersionInfo
		}
		// The corpus README's list: apk musl 1.2.5-r0, npm lodash 4.17.4,
		// the Go module gin v1.8.1.
		if doc.SPDXVersion != "SPDX-2.3" || names["musl"] != "1.2.5-r0" || names["lodash"] != "4.17.4" || names["github.com/gin-gonic/gin"] != "v1.8.1" {
			t.Errorf("SBOM of %s: %s, %d packages: musl %q lodash %q gin %q", ref, doc.SPDXVersion, len(doc.Packages), names["musl"], names["lodash"], names["github.com/gin-gonic/gin"])
		}
	}
	// The accessory is not scanned itself, and it is not an image.
	if _, err := srv.Admin().Scan.ScanArtifact(context.Background(), scanParams("sbom", "app", so.SbomDigest, "")); statusOf(err) != 400 {
		t.Errorf("scan of the SBOM accessory: %v, want 400", err)
	}
}

// TestStopAndScanAll stops a pending scan, then scans every artifact
// (manually), and sets and reads the scan-all schedule.
func TestStopAndScanAll(t *testing.T) {
	srv := start(t, corpusDB(t))
	ctx := context.Background()
	newProject(t, srv, "many", nil)
	for _, tag := range []string{"a", "b", "c"} {
		push(t, srv, harbortest.Image(t), "many/app:"+tag)
	}
	// A pending scan (the queue is paused) is stopped.
	if err := srv.Core.Jobs.SetPaused(ctx, scanning.KindScan, true); err != nil {
		t.Fatal(err)
	}
	if _, err := srv.Admin().Scan.ScanArtifact(ctx, scanParams("many", "app", "a", "")); err != nil {
		t.Fatal(err)
	}
	if s := overview(t, srv, "many", "app", "a"); s == nil || s.ScanStatus != "Pending" {
		t.Fatalf("queued scan: %+v", s)
	}
	if _, err := srv.Admin().Scan.ScanArtifact(ctx, scanParams("many", "app", "a", "")); statusOf(err) != 409 {
		t.Errorf("a second scan while one is pending: %v, want 409", err)
	}
	if _, err := srv.Admin().Scan.StopScanArtifact(ctx, scan.NewStopScanArtifactParams().WithProjectName("many").WithRepositoryName("app").WithReference("a").
		WithScanType(&models.ScanType{ScanType: "vulnerability"})); err != nil {
		t.Fatal(err)
	}
	if s := overview(t, srv, "many", "app", "a"); s == nil || s.ScanStatus != "Stopped" {
		t.Errorf("stopped scan: %+v", s)
	}
	if err := srv.Core.Jobs.SetPaused(ctx, scanning.KindScan, false); err != nil {
		t.Fatal(err)
	}

	// Scan all, by hand.
	if _, err := srv.Admin().ScanAll.CreateScanAllSchedule(ctx, scan_all.NewCreateScanAllScheduleParams().WithSchedule(&models.Schedule{Schedule: &models.ScheduleObj{Type: "Manual"}})); err != nil {
		t.Fatal(err)
	}
	var st *models.Stats
	for deadline := time.Now().Add(2 * time.Minute); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		m, err := srv.Admin().ScanAll.GetLatestScanAllMetrics(ctx, scan_all.NewGetLatestScanAllMetricsParams())
		if err != nil {
			t.Fatal(err)
		}
		if st = m.Payload; st.Total > 0 && !st.Ongoing {
			break
		}
	}
	if st == nil || st.Total != 3 || st.Completed != 3 || st.Metrics["Success"] != 3 || st.Trigger != "MANUAL" {
		b, _ := json.Marshal(st)
		t.Fatalf("scan all metrics: %s", b)
	}
	for _, tag := range []string{"a", "b", "c"} {
		if s := overview(t, srv, "many", "app", tag); s == nil || s.ScanStatus != "Success" {
			t.Errorf("%s after scan all: %+v", tag, s)
		}
	}
	// The schedule.
	cron := "0 30 2 * * *"
	if _, err := srv.Admin().ScanAll.UpdateScanAllSchedule(ctx, scan_all.NewUpdateScanAllScheduleParams().WithSchedule(&models.Schedule{Schedule: &models.ScheduleObj{Type: "Custom", Cron: cron}})); err != nil {
		t.Fatal(err)
	}
	got, err := srv.Admin().ScanAll.GetScanAllSchedule(ctx, scan_all.NewGetScanAllScheduleParams())
	if err != nil {
		t.Fatal(err)
	}
	if got.Payload.Schedule == nil || got.Payload.Schedule.Type != "Custom" || got.Payload.Schedule.Cron != cron {
		t.Errorf("schedule: %+v", got.Payload.Schedule)
	}
	sm, err := srv.Admin().ScanAll.GetLatestScheduledScanAllMetrics(ctx, scan_all.NewGetLatestScheduledScanAllMetricsParams())
	if err != nil || sm.Payload.Total != 0 {
		t.Errorf("scheduled metrics before any scheduled run: %+v %v", sm, err)
	}
	if _, err := srv.Admin().ScanAll.UpdateScanAllSchedule(ctx, scan_all.NewUpdateScanAllScheduleParams().WithSchedule(&models.Schedule{Schedule: &models.ScheduleObj{Type: "None"}})); err != nil {
		t.Fatal(err)
	}
	if got, _ := srv.Admin().ScanAll.GetScanAllSchedule(ctx, scan_all.NewGetScanAllScheduleParams()); got == nil || got.Payload.Schedule.Type != "None" {
		t.Errorf("schedule after None: %+v", got)
	}
}
