package scanning

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/lading-dev/lading/internal/errdefs"
	"github.com/lading-dev/lading/internal/jobs"
	"github.com/lading-dev/lading/internal/scanning/adapter"
	"github.com/lading-dev/lading/internal/scanning/scanapi"
	"github.com/lading-dev/lading/internal/token"
	"github.com/lading-dev/lading/internal/webhook"
)

// Scanning with a registered external scanner, as Harbor does: the scan
// request names this registry (external_url) and carries a short-lived
// token that lets the scanner pull the one repository (pull and
// scanner-pull, which exempts it from the prevention policy); the report
// is polled until ready and stored as the scanner wrote it.

// ScannerTokenSubject is the subject of the tokens external scanners get.
const ScannerTokenSubject = "lading-scanner"

func (s *Service) scanExternal(ctx context.Context, j *jobs.Job, r reportRow, reg registration, operator string) error {
	if s.opt.RegistryURL == "" {
		return errdefs.FailedPrecondition(errors.New("an external scanner pulls from this registry by its URL: set external_url"))
	}
	m, err := s.metadataOf(ctx, reg)
	if err != nil {
		return errdefs.Unavailable(err)
	}
	mime := ""
	for _, want := range []string{adapter.MimeVulnReport, adapter.MimeVulnReportHarbor} {
		if m.Produces(adapter.TypeVulnerability, want) {
			mime = want
			break
		}
	}
	if mime == "" {
		return errdefs.Unsupported(fmt.Errorf("scanner %s produces no vulnerability report Harbor reads", reg.Name))
	}
	tok, _ := s.d.Tokens.Issue(ScannerTokenSubject, []token.Access{{Type: "repository", Name: r.Repository, Actions: []string{"pull", "scanner-pull"}}}, s.opt.Timeout)
	req := adapter.ScanRequest{
		Registry:            adapter.Registry{URL: strings.TrimSuffix(s.opt.RegistryURL, "/"), Authorization: "Bearer " + tok},
		Artifact:            adapter.Artifact{Repository: r.Repository, Digest: r.Digest, MimeType: r.MediaType},
		EnabledCapabilities: []adapter.EnabledCapability{{Type: adapter.TypeVulnerability, ProducesMimeTypes: []string{mime}}},
	}
	c := s.client(reg)
	c.HTTP.Timeout = 0 // a report may take long; ctx bounds it
	id, err := c.Scan(ctx, req)
	if err != nil {
		return err
	}
	j.Log.Info("scan request accepted by "+reg.Name, "scanner", m.Scanner.Name+" "+m.Scanner.Version, "request", id)
	raw, err := c.WaitReport(ctx, id, mime, "")
	if err != nil {
		return err
	}
	var rep adapter.VulnerabilityReport
	if err := json.Unmarshal(raw, &rep); err != nil {
		return errdefs.InvalidArgument(fmt.Errorf("scanner %s: report: %v", reg.Name, err))
	}
	v := verdictOf(rep)
	j.Log.Info(fmt.Sprintf("%d vulnerabilities, highest severity %s", v.Summary.Total, rankName(v.Severity)), "scanner", reg.Name)
	return s.finish(context.WithoutCancel(ctx), r, scanapi.StatusSuccess, operator, webhook.ScanningCompleted, &result{v: v, report: raw})
}

// verdictOf is the verdict of a scanner's report.
func verdictOf(rep adapter.VulnerabilityReport) verdict {
	v := verdict{Summary: scanapi.VulnerabilitySummary{Summary: map[string]int{}}}
	for _, it := range rep.Vulnerabilities {
		rank := adapter.SeverityRank(it.Severity)
		if rank == 0 {
			rank = 1
		}
		f := finding{ID: it.ID, Sev: rank, Fix: it.FixVersion != ""}
		v.Findings = append(v.Findings, f)
		v.Summary.Total++
		if f.Fix {
			v.Summary.Fixable++
		}
		v.Summary.Summary[rankName(rank)]++
		v.Severity = max(v.Severity, rank)
	}
	return v
}
