package scanning

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/lading-dev/lading/internal/access"
	"github.com/lading-dev/lading/internal/artifact"
	"github.com/lading-dev/lading/internal/errdefs"
	"github.com/lading-dev/lading/internal/scanning/adapter"
	"github.com/lading-dev/lading/internal/scanning/scanapi"
	"github.com/lading-dev/lading/internal/sqldb"
	"github.com/lading-dev/lading/internal/webhook"
)

// The per-artifact API: scan, stop, logs, overviews, reports.

func targetOf(a artifact.Artifact) target {
	t := target{Repository: a.RepositoryName, Digest: a.Digest, MediaType: a.ManifestMediaType}
	for _, r := range a.References {
		t.Children = append(t.Children, r.ChildDigest)
	}
	return t
}

func checkScanType(t string) (string, error) {
	switch t {
	case "", scanapi.TypeVulnerability:
		return scanapi.TypeVulnerability, nil
	case scanapi.TypeSBOM:
		return scanapi.TypeSBOM, nil
	}
	return "", errdefs.InvalidArgument(fmt.Errorf("scan_type %q is not vulnerability or sbom", t))
}

// resource is the permission a scan type needs.
func resource(scanType string) access.Resource {
	if scanType == scanapi.TypeSBOM {
		return access.SBOM
	}
	return access.Scan
}

// Scan queues a scan of a (Harbor: POST .../artifacts/{ref}/scan).
func (s *Service) Scan(ctx context.Context, who access.Subject, a artifact.Artifact, scanType string) error {
	typ, err := checkScanType(scanType)
	if err != nil {
		return err
	}
	if err := s.d.Access.Require(ctx, who, access.Create, resource(typ), a.ProjectID); err != nil {
		return err
	}
	if !scannable(a.ManifestMediaType, a.ArtifactType, a.MediaType) {
		return errdefs.InvalidArgument(fmt.Errorf("artifact %s@%s (%s) is not an image a scanner reads", a.RepositoryName, a.Digest, a.Type))
	}
	reg, err := s.scannerOf(ctx, nil, a.ProjectID)
	if err != nil {
		return err
	}
	err = s.d.DB.Tx(ctx, "queue a scan", func(tx *sqldb.Tx) error {
		return s.queueScan(ctx, tx, targetOf(a), typ, reg, queued{operator: who.Name})
	})
	if errors.Is(err, errQueued) {
		return errdefs.Conflict(fmt.Errorf("%s@%s: %w", a.RepositoryName, a.Digest, err))
	}
	return err
}

// StopScan stops a's scan (Harbor: POST .../scan/stop).
func (s *Service) StopScan(ctx context.Context, who access.Subject, a artifact.Artifact, scanType string) error {
	typ, err := checkScanType(scanType)
	if err != nil {
		return err
	}
	if err := s.d.Access.Require(ctx, who, access.Stop, resource(typ), a.ProjectID); err != nil {
		return err
	}
	reg, err := s.scannerOf(ctx, nil, a.ProjectID)
	if err != nil {
		return err
	}
	digests := append([]string{a.Digest}, targetOf(a).Children...)
	rows, err := s.reportsOf(ctx, digests, reg.UUID, typ)
	if err != nil {
		return err
	}
	stopped := false
	for _, r := range rows {
		if r.JobID == 0 || (r.Status != scanapi.StatusPending && r.Status != scanapi.StatusRunning) {
			continue
		}
		if err := s.d.Jobs.Stop(ctx, r.JobID); err != nil {
			return err
		}
		if r.Status == scanapi.StatusPending {
			s.finish(ctx, r, scanapi.StatusStopped, who.Name, webhook.ScanningStopped, nil)
		}
		stopped = true
	}
	if !stopped {
		return errdefs.FailedPrecondition(fmt.Errorf("%s@%s has no scan running", a.RepositoryName, a.Digest))
	}
	return nil
}

// ReportLog is the log of the scan that made report reportID of a.
func (s *Service) ReportLog(ctx context.Context, who access.Subject, a artifact.Artifact, reportID string) ([]byte, error) {
	if err := s.d.Access.Require(ctx, who, access.Read, access.Scan, a.ProjectID); err != nil {
		return nil, err
	}
	r, err := s.reportByUUID(ctx, reportID)
	if err != nil {
		return nil, err
	}
	if r.Digest != a.Digest && !contains(targetOf(a).Children, r.Digest) {
		return nil, errdefs.Denied(fmt.Errorf("report %s is not a report of %s@%s", reportID, a.RepositoryName, a.Digest))
	}
	if r.JobID == 0 {
		return []byte{}, nil
	}
	return s.d.Jobs.Log(ctx, r.JobID)
}

func contains(list []string, v string) bool {
	for _, x := range list {
		if x == v {
			return true
		}
	}
	return false
}

// pickMime returns which of the asked vulnerability report MIME types a
// report is given in: the first known one (no list: version 1.1).
func pickMime(mimes []string) (string, error) {
	if len(mimes) == 0 {
		return adapter.MimeVulnReport, nil
	}
	for _, m := range mimes {
		switch c := adapter.Canonical(m); c {
		case adapter.MimeVulnReport, adapter.MimeVulnReportHarbor:
			return c, nil
		}
	}
	return "", errdefs.InvalidArgument(fmt.Errorf("no vulnerability report MIME type Harbor knows among %q; want %s or %s", strings.Join(mimes, ", "), adapter.MimeVulnReport, adapter.MimeVulnReportHarbor))
}

// summary is a report's NativeReportSummary with the status st.
func (s *Service) summary(r reportRow, st string, sc *adapter.Scanner) scanapi.ReportSummary {
	rs := scanapi.ReportSummary{ReportID: r.UUID, ScanStatus: st, StartTime: r.Start.UTC(), Scanner: sc}
	switch st {
	case scanapi.StatusSuccess, scanapi.StatusError, scanapi.StatusStopped:
		if !r.End.IsZero() {
			rs.EndTime = r.End.UTC()
			rs.Duration = int64(r.End.Sub(r.Start).Round(time.Second) / time.Second)
		}
	}
	if st == scanapi.StatusSuccess {
		rs.CompletePercent = 100
		rs.Severity = rankName(r.Severity)
		var vs scanapi.VulnerabilitySummary
		if json.Unmarshal([]byte(r.Summary), &vs) == nil {
			if vs.Summary == nil {
				vs.Summary = map[string]int{}
			}
			rs.Summary = &vs
		}
	}
	return rs
}

// overview is the scan summary of one artifact's report (an index's from
// its children's).
func (s *Service) overview(r reportRow, statuses map[string]string, rows map[string]reportRow, sc *adapter.Scanner) scanapi.ReportSummary {
	if !isIndex(r.MediaType) {
		return s.summary(r, statuses[r.Digest], sc)
	}
	agg := scanapi.ReportSummary{ReportID: r.UUID, StartTime: r.Start.UTC(), Scanner: sc}
	var sts []string
	total := scanapi.VulnerabilitySummary{Summary: map[string]int{}}
	sev := 0
	for _, c := range r.Children {
		cr, ok := rows[c]
		if !ok {
			sts = append(sts, "")
			continue
		}
		sts = append(sts, statuses[c])
		cs := s.summary(cr, statuses[c], sc)
		if cs.EndTime.After(agg.EndTime) {
			agg.EndTime = cs.EndTime
		}
		if cs.Summary != nil {
			total.Total += cs.Summary.Total
			total.Fixable += cs.Summary.Fixable
			for k, n := range cs.Summary.Summary {
				total.Summary[k] += n
			}
			sev = max(sev, cr.Severity)
		}
	}
	agg.ScanStatus = childStatus(sts)
	if !agg.EndTime.IsZero() {
		agg.Duration = int64(agg.EndTime.Sub(agg.StartTime).Round(time.Second) / time.Second)
	}
	if agg.ScanStatus == scanapi.StatusSuccess {
		agg.CompletePercent, agg.Severity, agg.Summary = 100, rankName(sev), &total
	} else {
		agg.EndTime, agg.Duration = time.Time{}, 0
	}
	return agg
}

// Overviews returns the artifacts' scan (and SBOM) overviews.
func (s *Service) Overviews(ctx context.Context, who access.Subject, arts []artifact.Artifact, mimes []string, sbom bool) ([]scanapi.Overview, error) {
	mime, err := pickMime(mimes)
	if err != nil {
		return nil, err
	}
	out := make([]scanapi.Overview, len(arts))
	byProject := map[int64][]int{}
	for i, a := range arts {
		byProject[a.ProjectID] = append(byProject[a.ProjectID], i)
		out[i].Scan = map[string]scanapi.ReportSummary{}
	}
	for pid, idx := range byProject {
		if ok, err := s.d.Access.Can(ctx, who, access.Read, access.Scan, pid); err != nil || !ok {
			continue
		}
		reg, err := s.scannerOf(ctx, nil, pid)
		if err != nil {
			continue
		}
		var sc *adapter.Scanner
		if m, err := s.metadataOf(ctx, reg); err == nil {
			sc = &m.Scanner
		}
		var digests []string
		for _, i := range idx {
			digests = append(digests, arts[i].Digest)
			digests = append(digests, targetOf(arts[i]).Children...)
		}
		types := []string{scanapi.TypeVulnerability}
		if sbom {
			types = append(types, scanapi.TypeSBOM)
		}
		for _, typ := range types {
			rows, err := s.reportsOf(ctx, digests, reg.UUID, typ)
			if err != nil {
				return nil, err
			}
			statuses, err := s.statuses(ctx, rows)
			if err != nil {
				return nil, err
			}
			for _, i := range idx {
				r, ok := rows[arts[i].Digest]
				if !ok {
					continue
				}
				o := s.overview(r, statuses, rows, sc)
				if typ == scanapi.TypeVulnerability {
					out[i].Scan[mime] = o
					continue
				}
				out[i].SBOM = &scanapi.SBOMOverview{ReportID: o.ReportID, ScanStatus: o.ScanStatus, SBOMDigest: r.Accessory, StartTime: o.StartTime,
					EndTime: o.EndTime, Duration: o.Duration, Scanner: sc}
			}
		}
	}
	return out, nil
}

// publishScan publishes a scan's webhook event in tx, with the report's
// overview as it now is.
func (s *Service) publishScan(ctx context.Context, tx *sqldb.Tx, r reportRow, event, operator string) error {
	if r.ScanType != scanapi.TypeVulnerability {
		return nil
	}
	cur, err := scanReport(tx.QueryRow(ctx, `SELECT `+reportCols+` FROM scan_reports WHERE uuid = ?`, r.UUID))
	if err != nil {
		return err
	}
	a, err := s.d.Artifacts.InRepository(ctx, r.Repository, r.Digest)
	if err != nil {
		return nil // deleted meanwhile: nobody to tell
	}
	st := map[string]string{event: scanapi.StatusSuccess, webhook.ScanningFailed: scanapi.StatusError, webhook.ScanningStopped: scanapi.StatusStopped}[event]
	var sc *adapter.Scanner
	if reg, err := s.registration(ctx, r.Registration); err == nil {
		if m, err := s.metadataOf(ctx, reg); err == nil {
			sc = &m.Scanner
		}
	}
	return s.publishArtifact(ctx, tx, a, event, operator, s.summary(cur, st, sc))
}

// publishArtifact publishes a scanning event about a.
func (s *Service) publishArtifact(ctx context.Context, tx *sqldb.Tx, a artifact.Artifact, event, operator string, sum scanapi.ReportSummary) error {
	name, _, _ := strings.Cut(a.RepositoryName, "/")
	p, err := s.d.Projects.Resolve(ctx, projectRef(name))
	if err != nil {
		return nil
	}
	ref := a.Digest
	if len(a.Tags) > 0 {
		ref = a.Tags[0].Name
	}
	var overview map[string]any
	b, _ := json.Marshal(map[string]scanapi.ReportSummary{adapter.MimeVulnReport: sum})
	json.Unmarshal(b, &overview)
	e := webhook.Event{Type: event, ProjectID: p.ID, Operator: operator, Data: webhook.EventData{
		Resources:  []webhook.Resource{{Digest: a.Digest, Tag: ref, ResourceURL: webhook.ResourceURL(s.registryHost(), a.RepositoryName, ref), ScanOverview: overview}},
		Repository: webhook.RepositoryOf(a.RepositoryName, p.Public, time.Time{}),
	}}
	return s.d.Webhooks.PublishTx(ctx, tx, e)
}

// registryHost is how clients name the registry.
func (s *Service) registryHost() string {
	u := s.opt.RegistryURL
	u = strings.TrimPrefix(strings.TrimPrefix(u, "https://"), "http://")
	return strings.TrimSuffix(u, "/")
}
