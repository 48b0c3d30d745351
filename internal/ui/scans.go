package ui

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/lading-dev/lading/internal/artifact"
	"github.com/lading-dev/lading/internal/errdefs"
	"github.com/lading-dev/lading/internal/project"
	"github.com/lading-dev/lading/internal/scanning/scanapi"
)

// This file is what the UI shows and does of registry-side scanning:
// each artifact's scan status and the Scan and Stop buttons, a project's
// CVE allowlist, and the accessories (signatures, SBOMs) next to an
// artifact. Scanning is plugged into lading serve after the UI is built
// (SetScanning); until then these parts are left out.

// SetScanning plugs registry-side scanning in; call it before serving.
func (s *Server) SetScanning(sc scanapi.Service) { s.scans = sc }

// scanView is an artifact's vulnerability scan as the pages show it.
type scanView struct {
	Status   string
	Severity string
	// Counts are the findings by severity (the UI's upper-case names).
	Counts  map[string]int
	Total   int
	Fixable int
	Start   time.Time
	End     time.Time
	Scanner string
	// Running is set while the scan may still be stopped.
	Running bool
}

// scanViews returns the scans of arts by digest (none when scanning is
// not plugged in or who may not read scans).
func (s *Server) scanViews(c *call, arts []artifact.Artifact) (map[string]scanView, error) {
	out := map[string]scanView{}
	if s.scans == nil || len(arts) == 0 {
		return out, nil
	}
	ovs, err := s.scans.Overviews(c.ctx, c.who, arts, nil, false)
	if err != nil {
		return nil, err
	}
	for i, ov := range ovs {
		for _, rs := range ov.Scan {
			v := scanView{Status: rs.ScanStatus, Severity: rs.Severity, Counts: map[string]int{}, Start: rs.StartTime, End: rs.EndTime,
				Running: rs.ScanStatus == scanapi.StatusPending || rs.ScanStatus == scanapi.StatusRunning}
			if rs.Scanner != nil {
				v.Scanner = rs.Scanner.Name + " " + rs.Scanner.Version
			}
			if sm := rs.Summary; sm != nil {
				v.Total, v.Fixable = sm.Total, sm.Fixable
				for k, n := range sm.Summary {
					v.Counts[strings.ToUpper(k)] += n
				}
			}
			out[arts[i].Digest] = v
		}
	}
	return out, nil
}

// scanAction starts or stops the scan of the page's artifact.
func (s *Server) scanAction(c *call, t target, action string) (string, error) {
	if s.scans == nil {
		return "", errdefs.Unsupported(errors.New("scanning is not available on this server"))
	}
	a, err := s.svc.Artifacts.Artifact(c.ctx, c.who, t.ref(), t.Repo, t.Artifact)
	if err != nil {
		return "", err
	}
	if action == "scan" {
		return "Scan of " + shortDigest(a.Digest) + " started.", s.scans.Scan(c.ctx, c.who, a, scanapi.TypeVulnerability)
	}
	return "Scan of " + shortDigest(a.Digest) + " stopping.", s.scans.StopScan(c.ctx, c.who, a, scanapi.TypeVulnerability)
}

// allowlistView is a project's CVE allowlist in the policies form.
type allowlistView struct {
	Items string // one CVE per line
	// Expires is YYYY-MM-DD, "" for never; Expired is set once passed.
	Expires string
	Expired bool
}

// policiesData is the policies tab: the project's metadata and, with
// scanning, its CVE allowlist.
func (s *Server) policiesData(c *call, p project.Project) (map[string]any, error) {
	data := map[string]any{"Meta": p.Metadata, "Severities": []string{"none", "low", "medium", "high", "critical"}}
	if s.scans == nil {
		return data, nil
	}
	l, err := s.scans.ProjectAllowlist(c.ctx, p.ID)
	if err != nil {
		return nil, err
	}
	v := allowlistView{Items: strings.Join(l.Items, "\n")}
	if l.ExpiresAt != nil {
		at := time.Unix(*l.ExpiresAt, 0).UTC()
		v.Expires, v.Expired = at.Format(time.DateOnly), at.Before(time.Now())
	}
	data["Allowlist"] = v
	return data, nil
}

// updateAllowlist sets the project's CVE allowlist from the policies
// form: CVE ids separated by spaces, commas or lines, and an expiry
// date (the end of that day, UTC; none for never).
func (s *Server) updateAllowlist(c *call, ref project.Ref) error {
	f := c.r.PostForm
	if s.scans == nil || !f.Has("allowlist") {
		return nil
	}
	p, err := s.svc.Projects.Get(c.ctx, c.who, ref)
	if err != nil {
		return err
	}
	l := scanapi.Allowlist{ProjectID: p.ID, Items: strings.FieldsFunc(f.Get("allowlist"), func(r rune) bool {
		return r == ',' || r == ' ' || r == '\n' || r == '\r' || r == '\t'
	})}
	if l.Items == nil {
		l.Items = []string{}
	}
	if d := strings.TrimSpace(f.Get("allowlist_expires")); d != "" {
		day, err := time.Parse(time.DateOnly, d)
		if err != nil {
			return errdefs.InvalidArgument(fmt.Errorf("expiry date %.20q: want YYYY-MM-DD", d))
		}
		at := day.Add(24*time.Hour - time.Second).Unix()
		l.ExpiresAt = &at
	}
	return s.scans.SetProjectAllowlist(c.ctx, c.who, p.ID, l)
}

// signed reports whether an artifact has a signature accessory.
func signed(a artifact.Artifact) bool {
	for _, x := range a.Accessories {
		if strings.HasPrefix(x.Type, "signature.") {
			return true
		}
	}
	return false
}

// accessoryKind names an accessory type for people.
func accessoryKind(t string) string {
	switch t {
	case artifact.AccessoryCosign:
		return "cosign signature"
	case artifact.AccessoryNotation:
		return "Notation signature"
	case artifact.AccessoryHarborSBOM:
		return "SBOM (Harbor)"
	case artifact.AccessoryCycloneDX:
		return "SBOM (CycloneDX)"
	case artifact.AccessorySPDX:
		return "SBOM (SPDX)"
	case artifact.AccessoryNydus:
		return "Nydus accelerated image"
	}
	return "referrer"
}
