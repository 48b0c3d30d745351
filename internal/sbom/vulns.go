package sbom

import (
	"fmt"
	"slices"
	"strings"

	cdx "github.com/CycloneDX/cyclonedx-go"
	"github.com/spdx/tools-golang/spdx/v2/common"
	spdx "github.com/spdx/tools-golang/spdx/v2/v2_3"

	"github.com/lading-dev/lading/internal/report"
)

func findingKey(f report.Finding) string {
	return f.PkgPath + "|" + f.PkgName + "|" + f.InstalledVersion
}

// cdxVulnerabilities turns the findings of rep into CycloneDX
// vulnerabilities: one per ID, with the components it affects (refs maps a
// finding's package to its component), its ratings, references, advisories
// and the fixed versions as a recommendation. Findings of packages that are
// not components (removed packages) are left out.
func cdxVulnerabilities(refs map[string]int, rep *report.Report) []cdx.Vulnerability {
	byID := map[string]*cdx.Vulnerability{}
	affected := map[string]map[int]bool{}
	fixes := map[string][]string{}
	var order []string
	for _, res := range rep.Results {
		for _, f := range res.Vulnerabilities {
			n, ok := refs[findingKey(f)]
			if !ok {
				continue
			}
			v := byID[f.VulnerabilityID]
			if v == nil {
				v = cdxVulnerability(f)
				byID[f.VulnerabilityID] = v
				affected[f.VulnerabilityID] = map[int]bool{}
				order = append(order, f.VulnerabilityID)
			}
			if f.FixedVersion != "" {
				fixes[f.VulnerabilityID] = append(fixes[f.VulnerabilityID], fmt.Sprintf("%s %s to %s", f.PkgName, f.InstalledVersion, f.FixedVersion))
			}
			if affected[f.VulnerabilityID][n] {
				continue // the same package in another place
			}
			affected[f.VulnerabilityID][n] = true
			affects := append(*v.Affects, cdx.Affects{
				Ref:   fmt.Sprintf("pkg-%d", n),
				Range: &[]cdx.AffectedVersions{{Version: f.InstalledVersion, Status: cdx.VulnerabilityStatusAffected}},
			})
			v.Affects = &affects
		}
	}
	vulns := make([]cdx.Vulnerability, 0, len(order))
	for _, id := range order {
		v := byID[id]
		if fx := fixes[id]; len(fx) > 0 {
			slices.Sort(fx)
			v.Recommendation = "Upgrade " + strings.Join(slices.Compact(fx), "; ")
		}
		vulns = append(vulns, *v)
	}
	return vulns
}

func cdxVulnerability(f report.Finding) *cdx.Vulnerability {
	v := &cdx.Vulnerability{
		BOMRef:      f.VulnerabilityID,
		ID:          f.VulnerabilityID,
		Description: f.Title,
		Detail:      f.Description,
		Affects:     &[]cdx.Affects{},
	}
	if f.DataSource != "" || f.PrimaryURL != "" {
		v.Source = &cdx.Source{Name: f.DataSource, URL: f.PrimaryURL}
	}
	if f.PublishedDate != "" {
		v.Published = f.PublishedDate + "T00:00:00Z"
	}
	var ratings []cdx.VulnerabilityRating
	for _, c := range f.CVSS {
		score := c.Score
		r := cdx.VulnerabilityRating{Score: &score, Vector: c.Vector, Severity: cdxSeverity(f.Severity), Method: cvssMethod(c)}
		if c.Source != "" {
			r.Source = &cdx.Source{Name: c.Source}
		}
		ratings = append(ratings, r)
	}
	if len(ratings) == 0 {
		r := cdx.VulnerabilityRating{Severity: cdxSeverity(f.Severity), Method: cdx.ScoringMethodOther}
		if f.SeveritySource != "" {
			r.Source = &cdx.Source{Name: f.SeveritySource}
		}
		ratings = append(ratings, r)
	}
	v.Ratings = &ratings
	var vrefs []cdx.VulnerabilityReference
	for _, a := range f.Aliases {
		vrefs = append(vrefs, cdx.VulnerabilityReference{ID: a, Source: &cdx.Source{Name: aliasSource(a)}})
	}
	if len(vrefs) > 0 {
		v.References = &vrefs
	}
	var adv []cdx.Advisory
	for _, r := range f.References {
		adv = append(adv, cdx.Advisory{URL: r})
	}
	if len(adv) > 0 {
		v.Advisories = &adv
	}
	return v
}

func cdxSeverity(s string) cdx.Severity {
	switch s {
	case report.Critical:
		return cdx.SeverityCritical
	case report.High:
		return cdx.SeverityHigh
	case report.Medium:
		return cdx.SeverityMedium
	case report.Low:
		return cdx.SeverityLow
	}
	return cdx.SeverityUnknown
}

func cvssMethod(c report.CVSS) cdx.ScoringMethod {
	switch {
	case strings.HasPrefix(c.Version, "2"):
		return cdx.ScoringMethodCVSSv2
	case c.Version == "3.0":
		return cdx.ScoringMethodCVSSv3
	case strings.HasPrefix(c.Version, "3"):
		return cdx.ScoringMethodCVSSv31
	case strings.HasPrefix(c.Version, "4"):
		return cdx.ScoringMethodCVSSv4
	}
	return cdx.ScoringMethodOther
}

// aliasSource names the database an ID prefix belongs to.
func aliasSource(id string) string {
	prefix, _, _ := strings.Cut(id, "-")
	switch prefix {
	case "CVE":
		return "NVD"
	case "GHSA":
		return "GitHub Advisory Database"
	case "GO":
		return "Go Vulnerability Database"
	case "PYSEC":
		return "PyPI Advisory Database"
	case "RUSTSEC":
		return "RustSec"
	case "DSA", "DLA":
		return "Debian Security Tracker"
	case "USN":
		return "Ubuntu Security Notices"
	}
	return prefix
}

// spdxAdvisories turns the findings of rep into SECURITY external
// references of type advisory, by component number (refs maps a finding's
// package to it): the advisory's page, and a comment with the ID,
// severity, status and fixed version; once per ID and component.
func spdxAdvisories(refs map[string]int, rep *report.Report) map[int][]*spdx.PackageExternalReference {
	out := map[int][]*spdx.PackageExternalReference{}
	seen := map[string]bool{}
	for _, res := range rep.Results {
		for _, f := range res.Vulnerabilities {
			n, ok := refs[findingKey(f)]
			key := fmt.Sprintf("%d|%s", n, f.VulnerabilityID)
			if !ok || seen[key] {
				continue
			}
			seen[key] = true
			url := f.PrimaryURL
			if url == "" {
				url = "https://osv.dev/vulnerability/" + f.VulnerabilityID
			}
			comment := fmt.Sprintf("%s: %s, %s", f.VulnerabilityID, f.Severity, strings.ReplaceAll(f.Status, "_", " "))
			if f.FixedVersion != "" {
				comment += ", fixed in " + f.FixedVersion
			}
			out[n] = append(out[n], &spdx.PackageExternalReference{
				Category: common.CategorySecurity, RefType: common.TypeSecurityAdvisory, Locator: url, ExternalRefComment: comment,
			})
		}
	}
	return out
}
