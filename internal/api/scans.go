package api

import (
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/lading-dev/lading/internal/artifact"
	"github.com/lading-dev/lading/internal/errdefs"
	"github.com/lading-dev/lading/internal/scanning/scanapi"
)

// The scanning endpoints: scans of artifacts, their overviews and
// reports, the scan of all, CVE allowlists and scanner registrations.
// Registry-side scanning (package scanning) is plugged in after the API
// is built (SetScanning); without it these endpoints answer 404.

// SetScanning plugs registry-side scanning in. Call it before serving.
func (s *Server) SetScanning(sc scanapi.Service) { s.scans = sc }

// scanning returns the scanning service, or the error of its absence.
func (s *Server) scanning() (scanapi.Service, error) {
	if s.scans == nil {
		return nil, errdefs.NotFound(errors.New("scanning is not enabled in this registry"))
	}
	return s.scans, nil
}

// artifactOf resolves the artifact of the path (the caller may read it).
func (c *call) artifactOf() (artifact.Artifact, error) {
	return c.s.svc.Artifacts.Artifact(c.ctx, c.who, c.project(), c.repoName(), c.r.PathValue("reference"))
}

// scanType reads Harbor's optional {"scan_type": ...} body.
func (c *call) scanType() (string, error) {
	if c.r.ContentLength == 0 || c.r.Body == nil || c.r.Body == http.NoBody {
		return "", nil
	}
	var req struct {
		ScanType string `json:"scan_type"`
	}
	if err := c.decode(&req); err != nil {
		if errdefs.IsInvalidArgument(err) && strings.Contains(err.Error(), "is required") {
			return "", nil
		}
		return "", err
	}
	return req.ScanType, nil
}

func (s *Server) scanArtifact(c *call) error {
	sc, err := s.scanning()
	if err != nil {
		return err
	}
	typ, err := c.scanType()
	if err != nil {
		return err
	}
	a, err := c.artifactOf()
	if err != nil {
		return err
	}
	if err := sc.Scan(c.ctx, c.who, a, typ); err != nil {
		return err
	}
	c.w.WriteHeader(http.StatusAccepted)
	return nil
}

func (s *Server) stopScanArtifact(c *call) error {
	sc, err := s.scanning()
	if err != nil {
		return err
	}
	typ, err := c.scanType()
	if err != nil {
		return err
	}
	a, err := c.artifactOf()
	if err != nil {
		return err
	}
	if err := sc.StopScan(c.ctx, c.who, a, typ); err != nil {
		return err
	}
	c.w.WriteHeader(http.StatusAccepted)
	return nil
}

func (s *Server) scanLog(c *call) error {
	sc, err := s.scanning()
	if err != nil {
		return err
	}
	a, err := c.artifactOf()
	if err != nil {
		return err
	}
	b, err := sc.ReportLog(c.ctx, c.who, a, c.r.PathValue("report_id"))
	if err != nil {
		return err
	}
	c.w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	c.w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	c.w.WriteHeader(http.StatusOK)
	c.w.Write(b)
	return nil
}

// acceptVulnerabilities reads X-Accept-Vulnerabilities: the report MIME
// types a client reads, in its order.
func (c *call) acceptVulnerabilities() []string {
	var out []string
	for _, h := range c.r.Header.Values("X-Accept-Vulnerabilities") {
		// The types carry "; version=..." parameters: split on commas.
		for _, m := range strings.Split(h, ",") {
			if m = strings.TrimSpace(m); m != "" {
				out = append(out, m)
			}
		}
	}
	return out
}

func (s *Server) vulnerabilities(c *call) error {
	sc, err := s.scanning()
	if err != nil {
		return err
	}
	a, err := c.artifactOf()
	if err != nil {
		return err
	}
	rep, err := sc.Vulnerabilities(c.ctx, c.who, a, c.acceptVulnerabilities())
	if err != nil {
		return err
	}
	return c.json(http.StatusOK, rep)
}

func (s *Server) addition(c *call) error {
	if c.r.PathValue("addition") != "sbom" {
		return errdefs.NotFound(errors.New("addition " + c.r.PathValue("addition") + " is not available: lading serves vulnerabilities and sbom"))
	}
	sc, err := s.scanning()
	if err != nil {
		return err
	}
	a, err := c.artifactOf()
	if err != nil {
		return err
	}
	b, mt, err := sc.SBOM(c.ctx, c.who, a)
	if err != nil {
		return err
	}
	c.w.Header().Set("Content-Type", mt)
	c.w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	c.w.WriteHeader(http.StatusOK)
	if c.r.Method != http.MethodHead {
		c.w.Write(b)
	}
	return nil
}

// overviews fills the scan (and SBOM) overviews of listed artifacts when
// the request asks for them.
func (s *Server) overviews(c *call, list []artifact.Artifact, out []artifactJSON) error {
	v := c.r.URL.Query()
	withScan, withSBOM := v.Get("with_scan_overview") == "true", v.Get("with_sbom_overview") == "true"
	if (!withScan && !withSBOM) || s.scans == nil || len(list) == 0 {
		return nil
	}
	ovs, err := s.scans.Overviews(c.ctx, c.who, list, c.acceptVulnerabilities(), withSBOM)
	if err != nil {
		return err
	}
	for i, o := range ovs {
		if withScan && len(o.Scan) > 0 {
			out[i].ScanOverview = o.Scan
		}
		if withSBOM && o.SBOM != nil {
			out[i].SBOMOverview = o.SBOM
		}
	}
	return nil
}

// scheduleJSON is Harbor's Schedule.
type scheduleJSON struct {
	ID           int64               `json:"id,omitempty"`
	Status       string              `json:"status,omitempty"`
	CreationTime *time.Time          `json:"creation_time,omitempty"`
	UpdateTime   *time.Time          `json:"update_time,omitempty"`
	Schedule     scanScheduleObjJSON `json:"schedule"`
	Parameters   map[string]any      `json:"parameters,omitempty"`
}

type scanScheduleObjJSON struct {
	Type              string     `json:"type"`
	Cron              string     `json:"cron,omitempty"`
	NextScheduledTime *time.Time `json:"next_scheduled_time,omitempty"`
}

func (s *Server) getScanAllSchedule(c *call) error {
	sc, err := s.scanning()
	if err != nil {
		return err
	}
	sch, err := sc.ScanAllSchedule(c.ctx, c.who)
	if err != nil {
		return err
	}
	out := scheduleJSON{ID: sch.ID, Schedule: scanScheduleObjJSON{Type: sch.Type, Cron: sch.Cron}}
	if sch.ID != 0 {
		cr, up, next := sch.Created.UTC(), sch.Updated.UTC(), sch.NextScheduled.UTC()
		out.CreationTime, out.UpdateTime, out.Schedule.NextScheduledTime = &cr, &up, &next
	}
	return c.json(http.StatusOK, out)
}

func (s *Server) setScanAllSchedule(c *call) error {
	sc, err := s.scanning()
	if err != nil {
		return err
	}
	var req scheduleJSON
	if err := c.decode(&req); err != nil {
		return err
	}
	if err := sc.SetScanAllSchedule(c.ctx, c.who, scanapi.Schedule{Type: req.Schedule.Type, Cron: req.Schedule.Cron}); err != nil {
		return err
	}
	if c.r.Method == http.MethodPost {
		c.w.Header().Set("Location", c.r.URL.Path)
		c.w.WriteHeader(http.StatusCreated)
		return nil
	}
	return c.ok()
}

func (s *Server) stopScanAll(c *call) error {
	sc, err := s.scanning()
	if err != nil {
		return err
	}
	if err := sc.StopScanAll(c.ctx, c.who); err != nil {
		return err
	}
	c.w.WriteHeader(http.StatusAccepted)
	return nil
}

func (s *Server) scanAllMetrics(scheduled bool) handlerFunc {
	return func(c *call) error {
		sc, err := s.scanning()
		if err != nil {
			return err
		}
		st, err := sc.ScanAllMetrics(c.ctx, c.who, scheduled)
		if err != nil {
			return err
		}
		return c.json(http.StatusOK, st)
	}
}

// allowlistJSON is Harbor's CVEAllowlist.
type allowlistJSON struct {
	ID           int64               `json:"id"`
	ProjectID    int64               `json:"project_id"`
	ExpiresAt    *int64              `json:"expires_at,omitempty"`
	Items        []allowlistItemJSON `json:"items"`
	CreationTime time.Time           `json:"creation_time"`
	UpdateTime   time.Time           `json:"update_time"`
}

type allowlistItemJSON struct {
	CVEID string `json:"cve_id"`
}

func toAllowlist(l scanapi.Allowlist) allowlistJSON {
	out := allowlistJSON{ID: l.ID, ProjectID: l.ProjectID, ExpiresAt: l.ExpiresAt, Items: []allowlistItemJSON{}, CreationTime: l.Created.UTC(), UpdateTime: l.Updated.UTC()}
	for _, it := range l.Items {
		out.Items = append(out.Items, allowlistItemJSON{CVEID: it})
	}
	return out
}

func fromAllowlist(l allowlistJSON) scanapi.Allowlist {
	out := scanapi.Allowlist{ExpiresAt: l.ExpiresAt}
	for _, it := range l.Items {
		out.Items = append(out.Items, it.CVEID)
	}
	return out
}

func (s *Server) getSystemAllowlist(c *call) error {
	sc, err := s.scanning()
	if err != nil {
		return err
	}
	l, err := sc.SystemAllowlist(c.ctx, c.who)
	if err != nil {
		return err
	}
	return c.json(http.StatusOK, toAllowlist(l))
}

func (s *Server) putSystemAllowlist(c *call) error {
	sc, err := s.scanning()
	if err != nil {
		return err
	}
	var req allowlistJSON
	if err := c.decode(&req); err != nil {
		return err
	}
	if err := sc.SetSystemAllowlist(c.ctx, c.who, fromAllowlist(req)); err != nil {
		return err
	}
	return c.ok()
}
