package ui

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/lading-dev/lading/internal/artifact"
	"github.com/lading-dev/lading/internal/errdefs"
	"github.com/lading-dev/lading/internal/inspect"
	"github.com/lading-dev/lading/internal/project"
	"github.com/lading-dev/lading/internal/scanning/adapter"
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

// registryFindings fills an analysis made without a vulnerability scan
// with the findings of the artifact's registry-side scan (the Scan
// button's), when it has one: each finding keeps the layer the scan
// names, else that of its package in the analysis.
func (s *Server) registryFindings(c *call, t target, dgst string, an *inspect.Analysis) error {
	if s.scans == nil {
		return nil
	}
	a, err := s.svc.Artifacts.Artifact(c.ctx, c.who, t.ref(), t.Repo, dgst)
	if err != nil {
		return err
	}
	reports, err := s.scans.Vulnerabilities(c.ctx, c.who, a, nil)
	if errors.Is(err, errdefs.ErrDenied) || errdefs.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	layers := map[[2]string]int{}
	for _, p := range an.Packages {
		layers[[2]string{p.Name, p.Version}] = p.Layer
	}
	for _, raw := range reports {
		var r adapter.VulnerabilityReport
		if err := json.Unmarshal(raw, &r); err != nil {
			return fmt.Errorf("ui: reading the scan report of %s: %w", dgst, err)
		}
		an.Scanned, an.ScannedAt, an.Database = true, r.GeneratedAt, r.Scanner.Name+" "+r.Scanner.Version+" (registry scan)"
		for _, v := range r.Vulnerabilities {
			f := inspect.Vulnerability{ID: v.ID, Severity: strings.ToUpper(v.Severity), Package: v.Package, InstalledVersion: v.Version,
				FixedVersion: v.FixVersion, Description: v.Description, Title: firstLine(v.Description), Layer: -1}
			if l, ok := layers[[2]string{v.Package, v.Version}]; ok {
				f.Layer = l
			}
			if v.Layer != nil {
				f.Layer = v.Layer.Index
			}
			if len(v.Links) > 0 && (strings.HasPrefix(v.Links[0], "https://") || strings.HasPrefix(v.Links[0], "http://")) {
				f.URL = v.Links[0]
			}
			if p := v.PreferredCVSS; p != nil && p.ScoreV3 != nil {
				f.Score = *p.ScoreV3
			}
			if f.FixedVersion == "" {
				f.Status = "affected"
			}
			an.Vulnerabilities = append(an.Vulnerabilities, f)
		}
	}
	return nil
}

// firstLine is a description's first line, cut to a title's length.
func firstLine(s string) string {
	s, _, _ = strings.Cut(strings.TrimSpace(s), "\n")
	if r := []rune(s); len(r) > 160 {
		return string(r[:160]) + "…"
	}
	return s
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
