package scanning

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/lading-dev/lading/internal/access"
	"github.com/lading-dev/lading/internal/analyze"
	"github.com/lading-dev/lading/internal/artifact"
	"github.com/lading-dev/lading/internal/errdefs"
	"github.com/lading-dev/lading/internal/report"
	"github.com/lading-dev/lading/internal/sbom"
	"github.com/lading-dev/lading/internal/scan"
	"github.com/lading-dev/lading/internal/scanning/adapter"
	"github.com/lading-dev/lading/internal/scanning/scanapi"
)

// Full reports are computed when asked, from the stored inventory and the
// database in force: they always agree with the verdict the overview and
// the prevention policy use.

// Vulnerabilities is a's full vulnerability report (Harbor: GET
// .../additions/vulnerabilities).
func (s *Service) Vulnerabilities(ctx context.Context, who access.Subject, a artifact.Artifact, mimes []string) (map[string]json.RawMessage, error) {
	mime, err := pickMime(mimes)
	if err != nil {
		return nil, err
	}
	if err := s.d.Access.Require(ctx, who, access.Read, access.ArtifactAddition, a.ProjectID); err != nil {
		return nil, err
	}
	reg, err := s.scannerOf(ctx, nil, a.ProjectID)
	if err != nil {
		return nil, err
	}
	t := targetOf(a)
	rows, err := s.reportsOf(ctx, append([]string{a.Digest}, t.Children...), reg.UUID, scanapi.TypeVulnerability)
	if err != nil {
		return nil, err
	}
	r, ok := rows[a.Digest]
	if !ok {
		return map[string]json.RawMessage{}, nil
	}
	statuses, err := s.statuses(ctx, rows)
	if err != nil {
		return nil, err
	}
	rep := adapter.VulnerabilityReport{GeneratedAt: r.End.UTC(), Artifact: adapter.Artifact{Repository: a.RepositoryName, Digest: a.Digest, MimeType: a.ManifestMediaType},
		Vulnerabilities: []adapter.VulnerabilityItem{}}
	if m, err := s.metadataOf(ctx, reg); err == nil {
		rep.Scanner = m.Scanner
	}
	members := []reportRow{r}
	if isIndex(r.MediaType) {
		members = nil
		for _, c := range r.Children {
			if cr, ok := rows[c]; ok {
				members = append(members, cr)
			}
		}
	}
	sev := 0
	for _, m := range members {
		if statuses[m.Digest] != scanapi.StatusSuccess {
			continue
		}
		items, err := s.items(ctx, m, reg, mime)
		if err != nil {
			return nil, err
		}
		for i := range items {
			items[i].ArtifactDigests = []string{m.Digest}
			sev = max(sev, adapter.SeverityRank(items[i].Severity))
		}
		rep.Vulnerabilities = append(rep.Vulnerabilities, items...)
		if m.End.After(rep.GeneratedAt) {
			rep.GeneratedAt = m.End.UTC()
		}
	}
	rep.Severity = rankName(sev)
	b, err := json.Marshal(rep)
	if err != nil {
		return nil, err
	}
	return map[string]json.RawMessage{mime: b}, nil
}

// items are the vulnerabilities of one (image) report.
func (s *Service) items(ctx context.Context, r reportRow, reg registration, mime string) ([]adapter.VulnerabilityItem, error) {
	if !reg.builtin() {
		b, err := s.column(ctx, r.UUID, "report")
		if err != nil || len(b) == 0 {
			return nil, err
		}
		raw, err := zdec.DecodeAll(b, nil)
		if err != nil {
			return nil, err
		}
		var rep adapter.VulnerabilityReport
		if err := json.Unmarshal(raw, &rep); err != nil {
			return nil, fmt.Errorf("report %s from scanner %s: %w", r.UUID, reg.Name, err)
		}
		return rep.Vulnerabilities, nil
	}
	rep, err := s.fullReport(ctx, r)
	if err != nil {
		return nil, err
	}
	return harborItems(rep, mime), nil
}

// fullReport is lading's report of r from its inventory.
func (s *Service) fullReport(ctx context.Context, r reportRow) (*report.Report, error) {
	inv, err := s.storedInventory(ctx, r.UUID)
	if err != nil {
		return nil, err
	}
	h, err := s.keeper.acquire()
	if err != nil {
		return nil, err
	}
	defer h.release()
	return scanReportOf(ctx, s, h, inv, adapter.Artifact{Repository: r.Repository, Digest: r.Digest})
}

// scanReportOf is lading's report of an inventory with the database h.
func scanReportOf(ctx context.Context, s *Service, h *handle, inv *analyze.Inventory, a adapter.Artifact) (*report.Report, error) {
	return scan.New(h.db, h.digest, s.log).Inventory(ctx, inv, "container_image", scan.ImageInfo{Name: a.Repository + "@" + a.Digest, Digest: a.Digest})
}

func (s *Service) storedInventory(ctx context.Context, uuid string) (*analyze.Inventory, error) {
	b, err := s.column(ctx, uuid, "inventory")
	if err != nil {
		return nil, err
	}
	var inv analyze.Inventory
	if err := unpack(b, &inv); err != nil {
		return nil, fmt.Errorf("report %s: inventory: %w", uuid, err)
	}
	return &inv, nil
}

// harborItems turns lading's findings into Harbor's vulnerability items.
func harborItems(rep *report.Report, mime string) []adapter.VulnerabilityItem {
	var out []adapter.VulnerabilityItem
	for _, res := range rep.Results {
		for _, f := range res.Vulnerabilities {
			it := adapter.VulnerabilityItem{ID: f.VulnerabilityID, Package: f.PkgName, Version: f.InstalledVersion, FixVersion: f.FixedVersion,
				Severity: harborSeverity(f.Severity), Description: f.Description, Links: links(f)}
			if it.Description == "" {
				it.Description = f.Title
			}
			if mime == adapter.MimeVulnReport {
				it.PreferredCVSS = preferredCVSS(f.CVSS)
				it.VendorAttributes = vendorAttributes(f, res)
			}
			if f.Layer != nil {
				it.Layer = &adapter.Layer{Index: f.Layer.Index, Digest: f.Layer.Digest, DiffID: f.Layer.DiffID, CreatedBy: f.Layer.CreatedBy}
			}
			out = append(out, it)
		}
	}
	return out
}

func links(f report.Finding) []string {
	out := []string{}
	seen := map[string]bool{}
	for _, l := range append([]string{f.PrimaryURL}, f.References...) {
		if l != "" && !seen[l] {
			seen[l] = true
			out = append(out, l)
		}
	}
	return out
}

func preferredCVSS(cs []report.CVSS) *adapter.CVSS {
	var out adapter.CVSS
	found := false
	for _, c := range cs {
		score := c.Score
		switch {
		case strings.HasPrefix(c.Version, "3") && out.VectorV3 == "":
			out.ScoreV3, out.VectorV3, found = &score, c.Vector, true
		case c.Version == "2.0" && out.VectorV2 == "":
			out.ScoreV2, out.VectorV2, found = &score, c.Vector, true
		}
	}
	if !found {
		return nil
	}
	return &out
}

// vendorAttributes carry what Harbor's items have no field for, the way
// Trivy's adapter names the CVSS scores.
func vendorAttributes(f report.Finding, res report.Result) map[string]any {
	attrs := map[string]any{"status": f.Status, "package_path": f.PkgPath, "target": res.Target}
	if f.PkgPURL != "" {
		attrs["purl"] = f.PkgPURL
	}
	if f.DataSource != "" {
		attrs["data_source"] = f.DataSource
	}
	if len(f.CVSS) > 0 {
		cvss := map[string]map[string]any{}
		for _, c := range f.CVSS {
			src := c.Source
			if src == "" {
				src = "unknown"
			}
			m := cvss[src]
			if m == nil {
				m = map[string]any{}
				cvss[src] = m
			}
			v := "V3"
			if c.Version == "2.0" {
				v = "V2"
			} else if c.Version == "4.0" {
				v = "V40"
			}
			m[v+"Score"], m[v+"Vector"] = c.Score, c.Vector
		}
		attrs["CVSS"] = cvss
	}
	if f.ChangedIn != nil {
		attrs["changed_in_layer"] = f.ChangedIn.Index
	}
	return attrs
}

// SBOM returns a's SBOM (a may be the SBOM accessory itself).
func (s *Service) SBOM(ctx context.Context, who access.Subject, a artifact.Artifact) ([]byte, string, error) {
	if err := s.d.Access.Require(ctx, who, access.Read, access.SBOM, a.ProjectID); err != nil {
		return nil, "", err
	}
	if a.MediaType == sbomConfigType || a.ArtifactType == sbomConfigType {
		m, err := s.d.Content.Manifest(ctx, a.RepositoryName, a.Digest)
		if err != nil {
			return nil, "", err
		}
		return s.accessoryDocument(ctx, a.RepositoryName, m)
	}
	reg, err := s.scannerOf(ctx, nil, a.ProjectID)
	if err != nil {
		return nil, "", err
	}
	rows, err := s.reportsOf(ctx, []string{a.Digest}, reg.UUID, scanapi.TypeSBOM)
	if err != nil {
		return nil, "", err
	}
	r, ok := rows[a.Digest]
	if !ok || r.Accessory == "" {
		return nil, "", errdefs.NotFound(fmt.Errorf("%s@%s has no SBOM: generate one with scan_type sbom", a.RepositoryName, a.Digest))
	}
	m, err := s.d.Content.Manifest(ctx, a.RepositoryName, r.Accessory)
	if err != nil {
		return nil, "", err
	}
	return s.accessoryDocument(ctx, a.RepositoryName, m)
}

// writeSBOM renders an inventory as an SBOM document of mediaType.
func (s *Service) writeSBOM(inv *analyze.Inventory, name, digest, mediaType string, at time.Time) ([]byte, error) {
	var buf bytes.Buffer
	img := sbom.Image{Name: name, Digest: digest}
	o := sbom.Options{ToolName: "lading", ToolVersion: s.opt.Version, Time: at}
	var err error
	switch mediaType {
	case adapter.MediaTypeCycloneDX:
		err = sbom.CycloneDX(&buf, img, inv, o)
	default:
		err = sbom.SPDX(&buf, img, inv, o)
	}
	return buf.Bytes(), err
}
