// Package adapter is Harbor's Pluggable Scanner API v1.2 (the scanner
// adapter API, github.com/goharbor/pluggable-scanner-spec), both ways:
// Handler serves it over a Backend, so that a registry (a real Harbor, or
// lading itself) uses lading as its scanner; Client calls it, so that
// lading's registry uses an external scanner (Trivy's adapter, another
// lading).
//
// The API, under /api/v1:
//
//	GET  /metadata                   the scanner and its capabilities
//	POST /scan                       a scan request: where to pull the
//	                                 artifact from, with which Authorization;
//	                                 202 {"id": ...}
//	GET  /scan/{id}/report           the report, in the MIME type the Accept
//	                                 header names (and ?sbom_media_type= for
//	                                 an SBOM); 302 with Refresh-After while it
//	                                 is being made
//
// Errors are {"error": {"message": ...}} of type
// application/vnd.scanner.adapter.error+json; version=1.0.
package adapter

import (
	"encoding/json"
	"time"
)

// The API's MIME types.
const (
	MimeMetadata      = "application/vnd.scanner.adapter.metadata+json; version=1.1"
	MimeScanRequest   = "application/vnd.scanner.adapter.scan.request+json; version=1.1"
	MimeScanRequest10 = "application/vnd.scanner.adapter.scan.request+json; version=1.0"
	MimeScanResponse  = "application/vnd.scanner.adapter.scan.response+json; version=1.0"
	MimeError         = "application/vnd.scanner.adapter.error+json; version=1.0"

	// MimeVulnReportHarbor is the original report format (version 1.0).
	MimeVulnReportHarbor = "application/vnd.scanner.adapter.vuln.report.harbor+json; version=1.0"
	// MimeVulnReport is the report format Harbor asks for since 2.2
	// (version 1.1: CVSS details, CWE ids, vendor attributes).
	MimeVulnReport = "application/vnd.security.vulnerability.report; version=1.1"
	// MimeVulnReportRaw is the scanner's own format (lading's JSON report).
	MimeVulnReportRaw = "application/vnd.scanner.adapter.vuln.report.raw"
	// MimeSBOMReport wraps an SBOM document.
	MimeSBOMReport = "application/vnd.security.sbom.report+json; version=1.0"

	// The SBOM formats a scan request may ask for.
	MediaTypeSPDX      = "application/spdx+json"
	MediaTypeCycloneDX = "application/vnd.cyclonedx+json"

	// The artifact types scanners consume.
	MimeOCIManifest    = "application/vnd.oci.image.manifest.v1+json"
	MimeDockerManifest = "application/vnd.docker.distribution.manifest.v2+json"
)

// The capability types.
const (
	TypeVulnerability = "vulnerability"
	TypeSBOM          = "sbom"
)

// Scanner names a scanner.
type Scanner struct {
	Name    string `json:"name"`
	Vendor  string `json:"vendor"`
	Version string `json:"version"`
}

// Capability is what a scanner consumes and produces.
type Capability struct {
	Type                 string         `json:"type,omitempty"`
	ConsumesMimeTypes    []string       `json:"consumes_mime_types"`
	ProducesMimeTypes    []string       `json:"produces_mime_types"`
	AdditionalAttributes map[string]any `json:"additional_attributes,omitempty"`
}

// Metadata is the scanner adapter's metadata.
type Metadata struct {
	Scanner      Scanner           `json:"scanner"`
	Capabilities []Capability      `json:"capabilities"`
	Properties   map[string]string `json:"properties,omitempty"`
}

// Produces reports whether a capability of type typ produces mime.
func (m Metadata) Produces(typ, mime string) bool {
	for _, c := range m.Capabilities {
		t := c.Type
		if t == "" {
			t = TypeVulnerability
		}
		if t != typ {
			continue
		}
		for _, p := range c.ProducesMimeTypes {
			if p == mime {
				return true
			}
		}
	}
	return false
}

// Registry is where to pull the artifact from.
type Registry struct {
	URL string `json:"url"`
	// Authorization is the value of the Authorization header for the
	// registry's /v2 API ("Basic ...", "Bearer ..."). Secret: never
	// logged.
	Authorization string `json:"authorization,omitempty"`
}

// Artifact is the artifact to scan.
type Artifact struct {
	Repository string `json:"repository"`
	Digest     string `json:"digest"`
	Tag        string `json:"tag,omitempty"`
	MimeType   string `json:"mime_type,omitempty"`
	Size       int64  `json:"size,omitempty"`
}

// EnabledCapability selects what a scan request asks for.
type EnabledCapability struct {
	Type              string      `json:"type"`
	ProducesMimeTypes []string    `json:"produces_mime_types,omitempty"`
	Parameters        *Parameters `json:"parameters,omitempty"`
}

// Parameters are a capability's parameters.
type Parameters struct {
	SBOMMediaTypes []string `json:"sbom_media_types,omitempty"`
}

// ScanRequest asks for a scan.
type ScanRequest struct {
	Registry            Registry            `json:"registry"`
	Artifact            Artifact            `json:"artifact"`
	EnabledCapabilities []EnabledCapability `json:"enabled_capabilities,omitempty"`
}

// Wants reports whether the request asks for a capability of type typ
// (a request that enables none asks for all, as the specification says).
func (r ScanRequest) Wants(typ string) bool {
	if len(r.EnabledCapabilities) == 0 {
		return true
	}
	for _, c := range r.EnabledCapabilities {
		if c.Type == typ {
			return true
		}
	}
	return false
}

// ScanResponse answers a scan request.
type ScanResponse struct {
	ID string `json:"id"`
}

// The severities of the specification.
const (
	SeverityUnknown    = "Unknown"
	SeverityNegligible = "Negligible"
	SeverityLow        = "Low"
	SeverityMedium     = "Medium"
	SeverityHigh       = "High"
	SeverityCritical   = "Critical"
)

// SeverityRank orders severities: Unknown 1 ... Critical 6, 0 for none.
func SeverityRank(s string) int {
	switch s {
	case SeverityUnknown:
		return 1
	case SeverityNegligible:
		return 2
	case SeverityLow:
		return 3
	case SeverityMedium:
		return 4
	case SeverityHigh:
		return 5
	case SeverityCritical:
		return 6
	}
	return 0
}

// VulnerabilityReport is HarborVulnerabilityReport.
type VulnerabilityReport struct {
	GeneratedAt     time.Time           `json:"generated_at"`
	Artifact        Artifact            `json:"artifact"`
	Scanner         Scanner             `json:"scanner"`
	Severity        string              `json:"severity"`
	Vulnerabilities []VulnerabilityItem `json:"vulnerabilities"`
}

// VulnerabilityItem is one vulnerability of one package. Layer is lading's
// addition: the layer that brought the package.
type VulnerabilityItem struct {
	ID               string         `json:"id"`
	Package          string         `json:"package"`
	Version          string         `json:"version"`
	FixVersion       string         `json:"fix_version"`
	Severity         string         `json:"severity"`
	Description      string         `json:"description"`
	Links            []string       `json:"links"`
	PreferredCVSS    *CVSS          `json:"preferred_cvss,omitempty"`
	CWEIDs           []string       `json:"cwe_ids,omitempty"`
	VendorAttributes map[string]any `json:"vendor_attributes,omitempty"`
	ArtifactDigests  []string       `json:"artifact_digests,omitempty"`
	Layer            *Layer         `json:"layer,omitempty"`
}

// CVSS is CVSSDetails.
type CVSS struct {
	ScoreV3  *float64 `json:"score_v3,omitempty"`
	ScoreV2  *float64 `json:"score_v2,omitempty"`
	VectorV3 string   `json:"vector_v3,omitempty"`
	VectorV2 string   `json:"vector_v2,omitempty"`
}

// Layer is the layer that brought a package.
type Layer struct {
	Index     int    `json:"index"`
	Digest    string `json:"digest,omitempty"`
	DiffID    string `json:"diff_id,omitempty"`
	CreatedBy string `json:"created_by,omitempty"`
}

// SBOMReport is HarborSbomReport.
type SBOMReport struct {
	GeneratedAt      time.Time       `json:"generated_at"`
	Artifact         Artifact        `json:"artifact"`
	Scanner          Scanner         `json:"scanner"`
	VendorAttributes map[string]any  `json:"vendor_attributes,omitempty"`
	MediaType        string          `json:"media_type"`
	SBOM             json.RawMessage `json:"sbom"`
}

// ErrorResponse is the error document.
type ErrorResponse struct {
	Error struct {
		Message string `json:"message"`
	} `json:"error"`
}

// KnownReportType reports whether mime is one of the specification's
// report MIME types.
func KnownReportType(mime string) bool {
	switch mime {
	case MimeVulnReportHarbor, MimeVulnReport, MimeVulnReportRaw, MimeSBOMReport:
		return true
	}
	return false
}
