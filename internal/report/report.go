// Package report holds the result of a vulnerability scan and writes it:
// a table for people, versioned JSON for machines, SARIF for code-scanning
// services, CycloneDX and SPDX documents, and Go templates. It also filters
// findings: by severity, fix availability, package type, an ignore file, and
// VEX documents.
//
// The JSON form of Report is a documented, versioned schema (SchemaVersion);
// fields are only ever added within a schema version. Field names follow
// Trivy's report where the meaning is the same, so tools written for one read
// the other with few changes.
package report

import (
	"cmp"
	"slices"
	"strings"
	"time"
)

// SchemaVersion is the version of the JSON schema of Report.
const SchemaVersion = 1

// Severity levels, lowest first. A source's "negligible" is LOW here.
const (
	Unknown  = "UNKNOWN"
	Low      = "LOW"
	Medium   = "MEDIUM"
	High     = "HIGH"
	Critical = "CRITICAL"
)

// StatusUnderInvestigation is the status of a finding the distribution has
// not evaluated yet (Ubuntu's needs-triage). Scans leave such findings out
// unless asked; when they are in a report, they count in no total and no
// exit code.
const StatusUnderInvestigation = "under_investigation"

// Counted reports whether f counts in totals and exit codes.
func (f Finding) Counted() bool { return f.Status != StatusUnderInvestigation }

// Severities lists the levels, lowest first.
var Severities = []string{Unknown, Low, Medium, High, Critical}

// SeverityRank orders levels: UNKNOWN 0 ... CRITICAL 4; -1 for other words.
func SeverityRank(s string) int { return slices.Index(Severities, strings.ToUpper(s)) }

// Report is the result of one scan.
type Report struct {
	SchemaVersion int       `json:"SchemaVersion"`
	CreatedAt     time.Time `json:"CreatedAt"`
	// ArtifactName is what was scanned, as the user named it.
	ArtifactName string `json:"ArtifactName"`
	// ArtifactType is "container_image", "filesystem" or "sbom".
	ArtifactType string   `json:"ArtifactType"`
	Metadata     Metadata `json:"Metadata"`
	// Results hold one entry per target: the OS packages first, then each
	// lockfile, package directory, binary or archive.
	Results []Result `json:"Results"`
	// Removed are packages that a lower layer installed and a higher layer
	// removed: they are not in the container's filesystem but their bytes
	// ship in the image. Informational: they count in no total and no exit
	// code.
	Removed []RemovedPackage `json:"RemovedPackages,omitempty"`
	// Database says which vulnerability data was used.
	Database Database `json:"Database"`
	// Warnings are what the analysis could not read; the rest was scanned.
	Warnings []string `json:"Warnings,omitempty"`
}

// Metadata describes the scanned image.
type Metadata struct {
	ImageID     string   `json:"ImageID,omitempty"`
	Digest      string   `json:"Digest,omitempty"`
	RepoTags    []string `json:"RepoTags,omitempty"`
	OS          *OS      `json:"OS,omitempty"`
	Platform    string   `json:"Platform,omitempty"`
	Layers      []Layer  `json:"Layers,omitempty"`
	DiffIDs     []string `json:"DiffIDs,omitempty"`
	PackageSize int      `json:"Packages"` // how many packages were found
}

// OS is the image's operating system.
type OS struct {
	Family string `json:"Family"` // alpine, debian, ubuntu, redhat, ...
	Name   string `json:"Name"`   // its version: "3.10.4", "12", "18.04"
	EOSL   bool   `json:"EOSL,omitempty"`
	// Unscanned is set when the database has no advisories for this
	// release: its packages were not checked, and finding nothing says
	// nothing.
	Unscanned *Unscanned `json:"Unscanned,omitempty"`
}

// Unscanned says that the database has no advisories for an OS release.
type Unscanned struct {
	// Namespace is what was looked for: "alpine:3.22".
	Namespace string `json:"Namespace"`
	// Covered are the releases of the same distribution the database has
	// advisories for ("alpine:3.19", ...); empty when it has none.
	Covered []string `json:"Covered"`
	// Message says it in a sentence.
	Message string `json:"Message"`
}

// Layer is one layer of the image.
type Layer struct {
	Index     int    `json:"Index"`
	DiffID    string `json:"DiffID,omitempty"`
	Digest    string `json:"Digest,omitempty"`
	CreatedBy string `json:"CreatedBy,omitempty"`
	// Base is set on layers that belong to the base image the image was
	// built FROM (see BaseLayers).
	Base bool `json:"Base,omitempty"`
}

// Database says which vulnerability database was used.
type Database struct {
	Path    string    `json:"Path,omitempty"`
	BuiltAt time.Time `json:"BuiltAt,omitempty"`
	Sources []string  `json:"Sources,omitempty"`
}

// Result is one target's findings.
type Result struct {
	// Target is "alpine 3.10.4 (alpine)" for OS packages, else the path of
	// the lockfile, package directory, binary or archive.
	Target string `json:"Target"`
	// Class is "os-pkgs" or "lang-pkgs".
	Class string `json:"Class"`
	// Type is the package database or lockfile type: alpine, debian, npm...
	Type string `json:"Type"`
	// Packages is how many packages the target has.
	Packages        int       `json:"Packages"`
	Vulnerabilities []Finding `json:"Vulnerabilities"`
	// Unscanned is set on the OS packages' result when the database has no
	// advisories for the OS release: they were not checked.
	Unscanned *Unscanned `json:"Unscanned,omitempty"`
}

// Finding is one vulnerability of one package.
type Finding struct {
	VulnerabilityID  string   `json:"VulnerabilityID"`
	Aliases          []string `json:"Aliases,omitempty"`
	PkgName          string   `json:"PkgName"`
	PkgPURL          string   `json:"PkgPURL,omitempty"`
	PkgPath          string   `json:"PkgPath,omitempty"` // the file that declared the package
	SrcName          string   `json:"SrcName,omitempty"`
	SrcVersion       string   `json:"SrcVersion,omitempty"`
	InstalledVersion string   `json:"InstalledVersion"`
	FixedVersion     string   `json:"FixedVersion,omitempty"` // comma-separated, as Trivy writes it
	// Status is fixed, affected, will_not_fix, fix_deferred, end_of_life,
	// or under_investigation (see StatusUnderInvestigation).
	Status         string `json:"Status"`
	Severity       string `json:"Severity"`
	SeveritySource string `json:"SeveritySource,omitempty"`
	// SeverityFrom says where Severity was found: "advisory" (an advisory
	// for this package), "record" (the data source's record of the
	// vulnerability), "alias" (another feed's record of the same
	// vulnerability, under its ID or an alias: a CVE, a GHSA).
	SeverityFrom  string   `json:"SeverityFrom,omitempty"`
	CVSS          []CVSS   `json:"CVSS,omitempty"`
	Title         string   `json:"Title,omitempty"`
	Description   string   `json:"Description,omitempty"`
	PrimaryURL    string   `json:"PrimaryURL,omitempty"`
	References    []string `json:"References,omitempty"`
	DataSource    string   `json:"DataSource,omitempty"`
	SourceID      string   `json:"SourceID,omitempty"` // the ID the data source publishes it under
	PublishedDate string   `json:"PublishedDate,omitempty"`
	// Layer is the layer that brought the package (where it was
	// introduced); ChangedIn, when different, the layer that last changed
	// its record.
	Layer     *Layer `json:"Layer,omitempty"`
	ChangedIn *Layer `json:"ChangedIn,omitempty"`
	// Suppressed says why a filter with --show-suppressed kept it.
	Suppressed string `json:"Suppressed,omitempty"`
}

// RemovedPackage is a package a lower layer installed and a higher layer
// removed, with the vulnerabilities it would have.
type RemovedPackage struct {
	PkgName         string    `json:"PkgName"`
	Version         string    `json:"Version"`
	Ecosystem       string    `json:"Ecosystem"`
	PkgPURL         string    `json:"PkgPURL,omitempty"`
	PkgPath         string    `json:"PkgPath,omitempty"`
	InstalledIn     *Layer    `json:"InstalledIn,omitempty"`
	RemovedIn       *Layer    `json:"RemovedIn,omitempty"`
	Vulnerabilities []Finding `json:"Vulnerabilities"`
}

// CVSS is one CVSS assessment.
type CVSS struct {
	Source  string  `json:"Source,omitempty"`
	Version string  `json:"Version"` // "2.0", "3.1", "4.0"
	Vector  string  `json:"Vector"`
	Score   float64 `json:"Score"`
}

// Counts returns the number of counted findings at each severity level
// (not those under investigation).
func (r Result) Counts() map[string]int {
	c := map[string]int{}
	for _, s := range Severities {
		c[s] = 0
	}
	for _, f := range r.Vulnerabilities {
		if f.Counted() {
			c[f.Severity]++
		}
	}
	return c
}

// Total is the number of counted findings in every result (removed
// packages and findings under investigation excluded).
func (r *Report) Total() int {
	n := 0
	for _, res := range r.Results {
		for _, f := range res.Vulnerabilities {
			if f.Counted() {
				n++
			}
		}
	}
	return n
}

// Unscanned reports whether the database had no advisories for the
// image's OS release.
func (r *Report) Unscanned() bool { return r.Metadata.OS != nil && r.Metadata.OS.Unscanned != nil }

// Sort orders findings the way the table shows them: by package, then
// severity (highest first), then ID.
func (r *Report) Sort() {
	sortFindings := func(fs []Finding) {
		slices.SortStableFunc(fs, func(a, b Finding) int {
			return cmp.Or(
				cmp.Compare(a.PkgName, b.PkgName),
				cmp.Compare(a.InstalledVersion, b.InstalledVersion),
				cmp.Compare(SeverityRank(b.Severity), SeverityRank(a.Severity)),
				cmp.Compare(a.VulnerabilityID, b.VulnerabilityID),
				cmp.Compare(a.PkgPath, b.PkgPath),
			)
		})
	}
	for i := range r.Results {
		sortFindings(r.Results[i].Vulnerabilities)
	}
	for i := range r.Removed {
		sortFindings(r.Removed[i].Vulnerabilities)
	}
	slices.SortStableFunc(r.Removed, func(a, b RemovedPackage) int {
		return cmp.Or(cmp.Compare(a.PkgPath, b.PkgPath), cmp.Compare(a.PkgName, b.PkgName), cmp.Compare(a.Version, b.Version))
	})
}
