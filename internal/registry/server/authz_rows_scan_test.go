package server_test

import (
	"context"
	"net/http"

	"github.com/go-openapi/runtime"
	"github.com/go-openapi/strfmt"
	v2 "github.com/goharbor/go-client/pkg/sdk/v2.0/client"
	"github.com/goharbor/go-client/pkg/sdk/v2.0/client/artifact"
	"github.com/goharbor/go-client/pkg/sdk/v2.0/client/project"
	"github.com/goharbor/go-client/pkg/sdk/v2.0/client/scan"
	"github.com/goharbor/go-client/pkg/sdk/v2.0/client/scan_all"
	"github.com/goharbor/go-client/pkg/sdk/v2.0/client/scanner"
	"github.com/goharbor/go-client/pkg/sdk/v2.0/client/system_cve_allowlist"
	"github.com/goharbor/go-client/pkg/sdk/v2.0/models"

	"github.com/lading-dev/lading/internal/access"
	"github.com/lading-dev/lading/internal/harbortest"
	"github.com/lading-dev/lading/internal/scanning"
)

// The scanning rows keep the scan queues paused, so that a scan queued
// by a setup stays Pending for the call (a stop has something to stop, a
// report has its log) and no scan runs during the test.
func pauseScans(t *testingT, e *env) {
	for _, k := range []string{scanning.KindScan, scanning.KindScanAll} {
		if err := e.srv.Core.Jobs.SetPaused(context.Background(), k, true); err != nil {
			t.Fatal(err)
		}
	}
}

// freshImage pushes a new image to a new repository of p and returns the
// repository's name (its artifact is tagged v1).
func freshImage(t *testingT, e *env, p proj) any {
	pauseScans(t, e)
	repo := e.fresh("scan")
	if err := e.srv.Push(context.Background(), harbortest.Image(t), p.name+"/"+repo, "v1", "admin", harbortest.AdminPassword); err != nil {
		t.Fatal(err)
	}
	return repo
}

// scannedImage is a fresh image with a scan queued (Pending) by the
// administrator; the target is [repository, report id].
func scannedImage(t *testingT, e *env, p proj) any {
	repo := freshImage(t, e, p).(string)
	ctx := context.Background()
	admin := e.srv.Admin()
	if _, err := admin.Scan.ScanArtifact(ctx, scan.NewScanArtifactParams().WithProjectName(p.name).WithRepositoryName(repo).WithReference("v1")); err != nil {
		t.Fatal(err)
	}
	mime := "application/vnd.security.vulnerability.report; version=1.1"
	a, err := admin.Artifact.GetArtifact(ctx, artifact.NewGetArtifactParams().WithProjectName(p.name).WithRepositoryName(repo).WithReference("v1").
		WithWithScanOverview(ptr(true)).WithXAcceptVulnerabilities(&mime))
	if err != nil {
		t.Fatal(err)
	}
	return [2]string{repo, a.Payload.ScanOverview[mime].ReportID}
}

// builtinScanner is the uuid of the built-in scanner.
func builtinScanner(t *testingT, e *env, _ proj) any {
	l, err := e.srv.Admin().Scanner.ListScanners(context.Background(), scanner.NewListScannersParams())
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range l.Payload {
		if r.URL.String() == "lading://builtin" || r.Name == "lading" {
			return r.UUID
		}
	}
	t.Fatalf("no built-in scanner in %+v", l.Payload)
	return ""
}

func scannerReq(e *env) *models.ScannerRegistrationReq {
	u := strfmt.URI("https://scanner.example.com:8080")
	return &models.ScannerRegistrationReq{Name: ptr(e.fresh("scanner")), URL: &u}
}

// freshScanner registers a scanner (never called: example.com is
// reserved) and returns its uuid.
func freshScanner(t *testingT, e *env, _ proj) any {
	r, err := e.srv.Admin().Scanner.CreateScanner(context.Background(), scanner.NewCreateScannerParams().WithRegistration(scannerReq(e)))
	if err != nil {
		t.Fatal(err)
	}
	return r.Location[len(r.Location)-36:]
}

// scanAllRunning starts a scan of all artifacts (it stays queued).
func scanAllRunning(t *testingT, e *env, _ proj) any {
	pauseScans(t, e)
	e.srv.Admin().ScanAll.CreateScanAllSchedule(context.Background(), scan_all.NewCreateScanAllScheduleParams().
		WithSchedule(&models.Schedule{Schedule: &models.ScheduleObj{Type: "Manual"}}))
	return nil
}

// rawGet is a GET of Harbor's API as s, for answers go-client cannot
// decode (additions are declared strings but are JSON objects).
func rawGet(ctx context.Context, e *env, s subject, path, header, value string) error {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, e.srv.URL+"/api/v2.0"+path, nil)
	if s.user != "" {
		req.SetBasicAuth(s.user, s.password)
	}
	if header != "" {
		req.Header.Set(header, value)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode >= 300 {
		return &runtime.APIError{Code: resp.StatusCode, OperationName: "GET " + path}
	}
	return nil
}

// scanRows are registry-side scanning's endpoints.
func scanRows() []row {
	return []row{
		{name: "POST /projects/{p}/repositories/{r}/artifacts/{ref}/scan", scope: inProject, res: access.Scan, act: access.Create, setup: freshImage, call: func(ctx context.Context, c *v2.HarborAPI, _ *env, p proj, _ subject, repo any) error {
			return ignore(c.Scan.ScanArtifact(ctx, scan.NewScanArtifactParams().WithProjectName(p.name).WithRepositoryName(repo.(string)).WithReference("v1")))
		}},
		{name: "POST /projects/{p}/repositories/{r}/artifacts/{ref}/scan (sbom)", scope: inProject, res: access.SBOM, act: access.Create, setup: freshImage, call: func(ctx context.Context, c *v2.HarborAPI, _ *env, p proj, _ subject, repo any) error {
			return ignore(c.Scan.ScanArtifact(ctx, scan.NewScanArtifactParams().WithProjectName(p.name).WithRepositoryName(repo.(string)).WithReference("v1").
				WithScanType(&models.ScanType{ScanType: "sbom"})))
		}},
		{name: "POST /projects/{p}/repositories/{r}/artifacts/{ref}/scan/stop", scope: inProject, res: access.Scan, act: access.Stop, setup: scannedImage, call: func(ctx context.Context, c *v2.HarborAPI, _ *env, p proj, _ subject, target any) error {
			tr := target.([2]string)
			return ignore(c.Scan.StopScanArtifact(ctx, scan.NewStopScanArtifactParams().WithProjectName(p.name).WithRepositoryName(tr[0]).WithReference("v1").
				WithScanType(&models.ScanType{ScanType: "vulnerability"})))
		}},
		{name: "GET /projects/{p}/repositories/{r}/artifacts/{ref}/scan/{report}/log", scope: inProject, res: access.Scan, act: access.Read, setup: scannedImage, call: func(ctx context.Context, c *v2.HarborAPI, _ *env, p proj, _ subject, target any) error {
			tr := target.([2]string)
			return ignore(c.Scan.GetReportLog(ctx, scan.NewGetReportLogParams().WithProjectName(p.name).WithRepositoryName(tr[0]).WithReference("v1").WithReportID(tr[1])))
		}},
		{name: "GET /projects/{p}/repositories/{r}/artifacts/{ref}/additions/vulnerabilities", scope: inProject, res: access.ArtifactAddition, act: access.Read, call: func(ctx context.Context, _ *v2.HarborAPI, e *env, p proj, s subject, _ any) error {
			return rawGet(ctx, e, s, "/projects/"+p.name+"/repositories/app/artifacts/v1/additions/vulnerabilities", "X-Accept-Vulnerabilities", "application/vnd.security.vulnerability.report; version=1.1")
		}},
		{name: "GET /projects/{p}/scanner", scope: inProject, res: access.Scanner, act: access.Read, call: func(ctx context.Context, c *v2.HarborAPI, _ *env, p proj, _ subject, _ any) error {
			return ignore(c.Project.GetScannerOfProject(ctx, project.NewGetScannerOfProjectParams().WithProjectNameOrID(p.name)))
		}},
		{name: "PUT /projects/{p}/scanner", scope: inProject, res: access.Scanner, act: access.Create, setup: builtinScanner, call: func(ctx context.Context, c *v2.HarborAPI, _ *env, p proj, _ subject, id any) error {
			uuid := id.(string)
			return ignore(c.Project.SetScannerOfProject(ctx, project.NewSetScannerOfProjectParams().WithProjectNameOrID(p.name).WithPayload(&models.ProjectScanner{UUID: &uuid})))
		}},
		{name: "GET /projects/{p}/scanner/candidates", scope: inProject, res: access.Scanner, act: access.Create, call: func(ctx context.Context, c *v2.HarborAPI, _ *env, p proj, _ subject, _ any) error {
			return ignore(c.Project.ListScannerCandidatesOfProject(ctx, project.NewListScannerCandidatesOfProjectParams().WithProjectNameOrID(p.name)))
		}},
		// Scanner registrations (system).
		{name: "GET /scanners", scope: system, res: access.Scanner, act: access.List, call: func(ctx context.Context, c *v2.HarborAPI, _ *env, _ proj, _ subject, _ any) error {
			return ignore(c.Scanner.ListScanners(ctx, scanner.NewListScannersParams()))
		}},
		{name: "POST /scanners", scope: system, res: access.Scanner, act: access.Create, call: func(ctx context.Context, c *v2.HarborAPI, e *env, _ proj, _ subject, _ any) error {
			return ignore(c.Scanner.CreateScanner(ctx, scanner.NewCreateScannerParams().WithRegistration(scannerReq(e))))
		}},
		{name: "GET /scanners/{id}", scope: system, res: access.Scanner, act: access.Read, setup: builtinScanner, call: func(ctx context.Context, c *v2.HarborAPI, _ *env, _ proj, _ subject, id any) error {
			return ignore(c.Scanner.GetScanner(ctx, scanner.NewGetScannerParams().WithRegistrationID(id.(string))))
		}},
		{name: "GET /scanners/{id}/metadata", scope: system, res: access.Scanner, act: access.Read, setup: builtinScanner, call: func(ctx context.Context, c *v2.HarborAPI, _ *env, _ proj, _ subject, id any) error {
			return ignore(c.Scanner.GetScannerMetadata(ctx, scanner.NewGetScannerMetadataParams().WithRegistrationID(id.(string))))
		}},
		{name: "PUT /scanners/{id}", scope: system, res: access.Scanner, act: access.Update, setup: freshScanner, call: func(ctx context.Context, c *v2.HarborAPI, e *env, _ proj, _ subject, id any) error {
			return ignore(c.Scanner.UpdateScanner(ctx, scanner.NewUpdateScannerParams().WithRegistrationID(id.(string)).WithRegistration(scannerReq(e))))
		}},
		{name: "PATCH /scanners/{id}", scope: system, res: access.Scanner, act: access.Update, setup: builtinScanner, call: func(ctx context.Context, c *v2.HarborAPI, _ *env, _ proj, _ subject, id any) error {
			return ignore(c.Scanner.SetScannerAsDefault(ctx, scanner.NewSetScannerAsDefaultParams().WithRegistrationID(id.(string)).WithPayload(&models.IsDefault{IsDefault: true})))
		}},
		{name: "DELETE /scanners/{id}", scope: system, res: access.Scanner, act: access.Delete, setup: freshScanner, call: func(ctx context.Context, c *v2.HarborAPI, _ *env, _ proj, _ subject, id any) error {
			return ignore(c.Scanner.DeleteScanner(ctx, scanner.NewDeleteScannerParams().WithRegistrationID(id.(string))))
		}},
		// Scan all (system).
		{name: "GET /system/scanAll/schedule", scope: system, res: access.ScanAll, act: access.Read, call: func(ctx context.Context, c *v2.HarborAPI, _ *env, _ proj, _ subject, _ any) error {
			return ignore(c.ScanAll.GetScanAllSchedule(ctx, scan_all.NewGetScanAllScheduleParams()))
		}},
		{name: "PUT /system/scanAll/schedule", scope: system, res: access.ScanAll, act: access.Create, call: func(ctx context.Context, c *v2.HarborAPI, _ *env, _ proj, _ subject, _ any) error {
			return ignore(c.ScanAll.UpdateScanAllSchedule(ctx, scan_all.NewUpdateScanAllScheduleParams().WithSchedule(&models.Schedule{Schedule: &models.ScheduleObj{Type: "None"}})))
		}},
		{name: "POST /system/scanAll/stop", scope: system, res: access.ScanAll, act: access.Stop, setup: scanAllRunning, call: func(ctx context.Context, c *v2.HarborAPI, _ *env, _ proj, _ subject, _ any) error {
			return ignore(c.ScanAll.StopScanAll(ctx, scan_all.NewStopScanAllParams()))
		}},
		{name: "GET /scans/all/metrics", scope: system, res: access.ScanAll, act: access.Read, call: func(ctx context.Context, c *v2.HarborAPI, _ *env, _ proj, _ subject, _ any) error {
			return ignore(c.ScanAll.GetLatestScanAllMetrics(ctx, scan_all.NewGetLatestScanAllMetricsParams()))
		}},
		{name: "GET /scans/schedule/metrics", scope: system, res: access.ScanAll, act: access.Read, call: func(ctx context.Context, c *v2.HarborAPI, _ *env, _ proj, _ subject, _ any) error {
			return ignore(c.ScanAll.GetLatestScheduledScanAllMetrics(ctx, scan_all.NewGetLatestScheduledScanAllMetricsParams()))
		}},
		// The system CVE allowlist: any authenticated subject reads it,
		// the configuration's administrators change it.
		{name: "GET /system/CVEAllowlist", scope: authenticated, call: func(ctx context.Context, c *v2.HarborAPI, _ *env, _ proj, _ subject, _ any) error {
			return ignore(c.SystemCVEAllowlist.GetSystemCVEAllowlist(ctx, system_cve_allowlist.NewGetSystemCVEAllowlistParams()))
		}},
		{name: "PUT /system/CVEAllowlist", scope: system, res: access.Configuration, act: access.Update, call: func(ctx context.Context, c *v2.HarborAPI, _ *env, _ proj, _ subject, _ any) error {
			return ignore(c.SystemCVEAllowlist.PutSystemCVEAllowlist(ctx, system_cve_allowlist.NewPutSystemCVEAllowlistParams().
				WithAllowlist(&models.CVEAllowlist{Items: []*models.CVEAllowlistItem{{CVEID: "CVE-2021-44228"}}})))
		}},
	}
}
