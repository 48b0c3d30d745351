package scanning_test

import (
	"archive/zip"
	"context"
	"encoding/json"
	"errors"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/go-openapi/runtime"

	"github.com/goharbor/go-client/pkg/sdk/v2.0/client/artifact"

	"github.com/lading-dev/lading/internal/corpustest"
	"github.com/lading-dev/lading/internal/harbortest"
	"github.com/lading-dev/lading/internal/scanning/adapter"
)

// report is the full report as Harbor's API serves it, decoded with the
// specification's field names (HarborVulnerabilityReport).
type report struct {
	GeneratedAt     string `json:"generated_at"`
	Scanner         struct{ Name, Vendor, Version string }
	Severity        string `json:"severity"`
	Vulnerabilities []struct {
		ID            string   `json:"id"`
		Package       string   `json:"package"`
		Version       string   `json:"version"`
		FixVersion    string   `json:"fix_version"`
		Severity      string   `json:"severity"`
		Description   string   `json:"description"`
		Links         []string `json:"links"`
		PreferredCVSS *struct {
			ScoreV3  *float64 `json:"score_v3"`
			VectorV3 string   `json:"vector_v3"`
		} `json:"preferred_cvss"`
		ArtifactDigests []string `json:"artifact_digests"`
		Layer           *struct {
			Index  int    `json:"index"`
			DiffID string `json:"diff_id"`
			Digest string `json:"digest"`
		} `json:"layer"`
	} `json:"vulnerabilities"`
}

// vulnerabilities fetches an artifact's full report. (go-client declares
// the answer a string, which no JSON object decodes into: the test reads
// it as the API documents it, a map of report type to report.)
func vulnerabilities(t *testing.T, srv *harbortest.Server, project, repo, ref string) report {
	t.Helper()
	var m map[string]report
	if code := get(t, srv, "/api/v2.0/projects/"+project+"/repositories/"+repo+"/artifacts/"+ref+"/additions/vulnerabilities",
		map[string]string{"X-Accept-Vulnerabilities": vulnMime}, &m); code != 200 {
		t.Fatalf("vulnerabilities of %s/%s@%s: %d", project, repo, ref, code)
	}
	r, found := m[vulnMime]
	if !found {
		t.Fatalf("no report of type %s: %v", vulnMime, m)
	}
	return r
}

// TestScanOnPush pushes the corpus's alpine-3.20-app into a project that
// scans on push and checks the overview and the full report against what
// the corpus says the image holds (corpus README): npm packages with
// published advisories (lodash 4.17.4, handlebars 4.0.11, morgan 1.9.0,
// moment 2.11.1) in the layer COPY app/ made, and Go modules with
// advisories (gin v1.8.1: GO-2023-1737; x/text v0.3.6: GO-2021-0113,
// GO-2022-1059) in the layer of the Go binary; Alpine 3.20 has no secdb in
// the corpus, so no OS package is reported.
func TestScanOnPush(t *testing.T) {
	srv := start(t, corpusDB(t))
	newProject(t, srv, "team", map[string]string{"auto_scan": "true"})
	dgst := push(t, srv, corpusImage(t, "alpine-3.20-app.oci.tar"), "team/app:1")

	s := waitScan(t, srv, "team", "app", "1")
	if s.ScanStatus != "Success" || s.CompletePercent != 100 || s.Scanner == nil || s.Scanner.Name != "lading" || s.ReportID == "" {
		t.Fatalf("overview: %+v", s)
	}
	if s.Summary == nil || s.Summary.Total == 0 || s.Severity == "" || s.Severity == "None" {
		t.Fatalf("overview summary: %+v", s.Summary)
	}
	r := vulnerabilities(t, srv, "team", "app", dgst)
	if len(r.Vulnerabilities) != int(s.Summary.Total) {
		t.Errorf("the overview counts %d vulnerabilities, the report has %d", s.Summary.Total, len(r.Vulnerabilities))
	}
	if r.Scanner.Name != "lading" || r.Severity != s.Severity {
		t.Errorf("report: scanner %+v severity %s; overview severity %s", r.Scanner, r.Severity, s.Severity)
	}
	const (
		appLayer = "sha256:e50746e9cb1b70c1696705017b114d2af6b9ddf3f7328b80d1f32aad448a7f76"
		goLayer  = "sha256:fbced1bd604c7fc745182391550d7c50d6b320c40eb70332526d0c9e0552f216"
	)
	found := map[string]bool{}
	fixable := 0
	perSeverity := map[string]int64{}
	for _, v := range r.Vulnerabilities {
		found[v.Package] = true
		found[v.ID] = true
		if v.FixVersion != "" {
			fixable++
		}
		perSeverity[v.Severity]++
		if v.Layer == nil {
			t.Errorf("%s %s: no layer", v.ID, v.Package)
			continue
		}
		switch v.Package {
		case "lodash", "handlebars", "morgan", "moment":
			if v.Layer.DiffID != appLayer || v.Layer.Index != 3 {
				t.Errorf("%s %s: brought by layer %d %s, want 3 %s", v.ID, v.Package, v.Layer.Index, v.Layer.DiffID, appLayer)
			}
		case "github.com/gin-gonic/gin", "golang.org/x/text":
			if v.Layer.DiffID != goLayer || v.Layer.Index != 4 {
				t.Errorf("%s %s: brought by layer %d %s, want 4 %s", v.ID, v.Package, v.Layer.Index, v.Layer.DiffID, goLayer)
			}
		}
		if v.Package == "musl" || v.Package == "busybox" || v.Package == "openssl" {
			t.Errorf("an OS package is reported, but the corpus feeds have no Alpine 3.20: %+v", v)
		}
	}
	for _, want := range []string{"lodash", "handlebars", "morgan", "moment", "github.com/gin-gonic/gin", "golang.org/x/text"} {
		if !found[want] {
			t.Errorf("the report misses %s", want)
		}
	}
	// Go advisories are reported under their CVE when they have one
	// (the feed's aliases).
	for _, id := range []string{"GO-2023-1737", "GO-2021-0113", "GO-2022-1059"} {
		ids := append([]string{id}, goAliases(t, id)...)
		if !slices.ContainsFunc(ids, func(x string) bool { return found[x] }) {
			t.Errorf("the report misses %s (any of %v)", id, ids)
		}
	}
	if int64(fixable) != s.Summary.Fixable {
		t.Errorf("fixable: report %d, overview %d", fixable, s.Summary.Fixable)
	}
	for sev, n := range perSeverity {
		if s.Summary.Summary[sev] != n {
			t.Errorf("%s: report %d, overview %d", sev, n, s.Summary.Summary[sev])
		}
	}
	// The scan's log, through Harbor's client.
	if log := scanLog(t, srv, "team", "app", dgst); !containsText(log, "analyzed 5 layers") {
		t.Errorf("scan log: %s", log)
	}
	// A listing with overviews says the same.
	list, err := srv.Admin().Artifact.ListArtifacts(context.Background(), artifact.NewListArtifactsParams().WithProjectName("team").WithRepositoryName("app").
		WithWithScanOverview(ptr(true)))
	if err != nil {
		t.Fatal(err)
	}
	if len(list.Payload) != 1 || list.Payload[0].ScanOverview[vulnMime].ReportID != s.ReportID {
		t.Errorf("listing: %+v", list.Payload)
	}
	// An unknown report type is a bad request.
	_, err = srv.Admin().Artifact.GetVulnerabilitiesAddition(context.Background(), artifact.NewGetVulnerabilitiesAdditionParams().WithProjectName("team").
		WithRepositoryName("app").WithReference(dgst).WithXAcceptVulnerabilities(ptr("application/vnd.example.unknown+json")))
	if code := statusOf(err); code != 400 {
		t.Errorf("unknown report type: %d (%v), want 400", code, err)
	}
	// The older report type gives the same vulnerabilities.
	var old map[string]json.RawMessage
	if code := get(t, srv, "/api/v2.0/projects/team/repositories/app/artifacts/"+dgst+"/additions/vulnerabilities",
		map[string]string{"X-Accept-Vulnerabilities": adapter.MimeVulnReportHarbor}, &old); code != 200 || old[adapter.MimeVulnReportHarbor] == nil {
		t.Errorf("version 1.0 report: %d %v", code, old)
	}
}

// goAliases reads an advisory's aliases from the corpus's Go feed.
func goAliases(t *testing.T, id string) []string {
	t.Helper()
	z, err := zip.OpenReader(filepath.Join(corpustest.Dir(t), "feeds", "osv", "Go.zip"))
	if err != nil {
		t.Fatal(err)
	}
	defer z.Close()
	f, err := z.Open("data/osv/" + id + ".json")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var rec struct {
		Aliases []string `json:"aliases"`
	}
	if err := json.NewDecoder(f).Decode(&rec); err != nil {
		t.Fatal(err)
	}
	return rec.Aliases
}

func containsText(s, sub string) bool { return strings.Contains(s, sub) }

// statusOf reads the HTTP status of a go-client error (200 for none).
func statusOf(err error) int {
	if err == nil {
		return 200
	}
	var api *runtime.APIError
	if errors.As(err, &api) {
		return api.Code
	}
	var coded interface{ IsCode(int) bool }
	if errors.As(err, &coded) {
		for _, c := range []int{400, 401, 403, 404, 409, 412, 422, 500, 501} {
			if coded.IsCode(c) {
				return c
			}
		}
	}
	return -1
}
