// Package scanapi is what the rest of lading serve knows of registry-side
// scanning: the role interfaces that Harbor's API (package api) and the
// registry's wiring (registry/server) call, the shapes they exchange, and
// the migrations of the scanning tables. Package scanning implements the
// interfaces; it reads layers, matches packages and keeps the
// vulnerability database, so the registry and everything it is assembled
// with reach it only through this package (internal/depcheck_test.go).
package scanapi

import (
	"context"
	"encoding/json"
	"net/http"
	"time"

	"github.com/lading-dev/lading/internal/access"
	"github.com/lading-dev/lading/internal/artifact"
	"github.com/lading-dev/lading/internal/project"
	"github.com/lading-dev/lading/internal/query"
	"github.com/lading-dev/lading/internal/scanning/adapter"
	"github.com/lading-dev/lading/internal/sqldb"
)

// The scan types of a scan request.
const (
	TypeVulnerability = adapter.TypeVulnerability
	TypeSBOM          = adapter.TypeSBOM
)

// The statuses of a scan, as Harbor names them.
const (
	StatusPending = "Pending"
	StatusRunning = "Running"
	StatusSuccess = "Success"
	StatusError   = "Error"
	StatusStopped = "Stopped"
)

// Scans is per-artifact scanning. The artifact has been resolved by the
// caller (who may read it); each method checks what else who needs.
type Scans interface {
	// Scan queues a scan of a (scanType TypeVulnerability or TypeSBOM);
	// an index's children are scanned each.
	Scan(ctx context.Context, who access.Subject, a artifact.Artifact, scanType string) error
	// StopScan stops a's scan of scanType.
	StopScan(ctx context.Context, who access.Subject, a artifact.Artifact, scanType string) error
	// ReportLog returns the log of the scan that made report reportID of a.
	ReportLog(ctx context.Context, who access.Subject, a artifact.Artifact, reportID string) ([]byte, error)
	// Overviews returns each artifact's scan overview (by report MIME
	// type, for the first of mimes it can give) and, when sbom is set, its
	// SBOM overview.
	Overviews(ctx context.Context, who access.Subject, arts []artifact.Artifact, mimes []string, sbom bool) ([]Overview, error)
	// Vulnerabilities returns a's full report for the first of mimes it
	// can give, keyed by that MIME type (empty when a has no report).
	Vulnerabilities(ctx context.Context, who access.Subject, a artifact.Artifact, mimes []string) (map[string]json.RawMessage, error)
	// SBOM returns a's SBOM document (a is the artifact or its SBOM
	// accessory) and its media type.
	SBOM(ctx context.Context, who access.Subject, a artifact.Artifact) ([]byte, string, error)
}

// ScanAll is the scan of every artifact.
type ScanAll interface {
	ScanAllSchedule(ctx context.Context, who access.Subject) (Schedule, error)
	// SetScanAllSchedule sets the schedule; Type Manual starts a scan of
	// every artifact now, None removes the schedule.
	SetScanAllSchedule(ctx context.Context, who access.Subject, s Schedule) error
	StopScanAll(ctx context.Context, who access.Subject) error
	// ScanAllMetrics describes the last scan of all (scheduled: the last
	// one a schedule started).
	ScanAllMetrics(ctx context.Context, who access.Subject, scheduled bool) (Stats, error)
}

// Allowlists are the CVE allowlists of the system and of projects.
type Allowlists interface {
	SystemAllowlist(ctx context.Context, who access.Subject) (Allowlist, error)
	SetSystemAllowlist(ctx context.Context, who access.Subject, l Allowlist) error
	// ProjectAllowlist returns a project's own allowlist (the caller
	// checked that who may read the project).
	ProjectAllowlist(ctx context.Context, projectID int64) (Allowlist, error)
	SetProjectAllowlist(ctx context.Context, who access.Subject, projectID int64, l Allowlist) error
}

// Scanners are the scanner registrations.
type Scanners interface {
	ListScanners(ctx context.Context, who access.Subject, q query.Query, page query.Page) ([]Registration, int64, error)
	CreateScanner(ctx context.Context, who access.Subject, r Registration) (string, error)
	Scanner(ctx context.Context, who access.Subject, uuid string) (Registration, error)
	UpdateScanner(ctx context.Context, who access.Subject, uuid string, r Registration) error
	DeleteScanner(ctx context.Context, who access.Subject, uuid string) (Registration, error)
	SetDefaultScanner(ctx context.Context, who access.Subject, uuid string, isDefault bool) error
	ScannerMetadata(ctx context.Context, who access.Subject, uuid string) (adapter.Metadata, error)
	// PingScanner checks that a scanner not yet registered answers.
	PingScanner(ctx context.Context, who access.Subject, r Registration) error
}

// ProjectScanners are the scanners of projects.
type ProjectScanners interface {
	ProjectScanner(ctx context.Context, who access.Subject, ref project.Ref) (Registration, error)
	SetProjectScanner(ctx context.Context, who access.Subject, ref project.Ref, uuid string) error
	ScannerCandidates(ctx context.Context, who access.Subject, ref project.Ref, q query.Query, page query.Page) ([]Registration, int64, error)
}

// Service is everything the API asks of scanning.
type Service interface {
	Scans
	ScanAll
	Allowlists
	Scanners
	ProjectScanners
}

// Registry is what the registry's wiring asks of scanning.
type Registry interface {
	// CheckPull refuses (errdefs.ErrFailedPrecondition, with Harbor's
	// message) the pull of a manifest of repo whose artifact a project's
	// vulnerability policy blocks. scannerPull is set for a pull by a
	// scanner (a token granting scanner-pull), which is exempt.
	CheckPull(ctx context.Context, who access.Subject, scannerPull bool, repo, dgst string) error
	// ManifestPut is told of a manifest put into repo, inside the
	// metadata store's transaction (scan on push).
	ManifestPut(ctx context.Context, tx *sqldb.Tx, repo, dgst, mediaType string, content []byte) error
	// Adapter serves the Pluggable Scanner API under /api/v1/.
	Adapter() http.Handler
}

// Overview is what an artifact listing shows of an artifact's scans.
type Overview struct {
	// Scan is Harbor's scan_overview: a report summary by MIME type.
	Scan map[string]ReportSummary
	// SBOM is Harbor's sbom_overview, nil when asked for none.
	SBOM *SBOMOverview
}

// ReportSummary is Harbor's NativeReportSummary.
type ReportSummary struct {
	ReportID        string                `json:"report_id"`
	ScanStatus      string                `json:"scan_status"`
	Severity        string                `json:"severity,omitempty"`
	Duration        int64                 `json:"duration"`
	Summary         *VulnerabilitySummary `json:"summary,omitempty"`
	StartTime       time.Time             `json:"start_time"`
	EndTime         time.Time             `json:"end_time"`
	CompletePercent int                   `json:"complete_percent"`
	Scanner         *adapter.Scanner      `json:"scanner,omitempty"`
}

// VulnerabilitySummary counts a report's vulnerabilities.
type VulnerabilitySummary struct {
	Total   int            `json:"total"`
	Fixable int            `json:"fixable"`
	Summary map[string]int `json:"summary"`
}

// SBOMOverview is Harbor's sbom_overview.
type SBOMOverview struct {
	ReportID   string           `json:"report_id"`
	ScanStatus string           `json:"scan_status"`
	SBOMDigest string           `json:"sbom_digest,omitempty"`
	StartTime  time.Time        `json:"start_time"`
	EndTime    time.Time        `json:"end_time"`
	Duration   int64            `json:"duration"`
	Scanner    *adapter.Scanner `json:"scanner,omitempty"`
}

// The schedule types, as Harbor names them.
const (
	ScheduleNone   = "None"
	ScheduleManual = "Manual"
	ScheduleHourly = "Hourly"
	ScheduleDaily  = "Daily"
	ScheduleWeekly = "Weekly"
	ScheduleCustom = "Custom"
)

// Schedule is Harbor's Schedule of a system job.
type Schedule struct {
	ID   int64
	Type string
	// Cron has six fields (seconds first), as Harbor's.
	Cron             string
	NextScheduled    time.Time
	Created, Updated time.Time
}

// Stats is Harbor's Stats of a scan of all.
type Stats struct {
	Total     int64            `json:"total"`
	Completed int64            `json:"completed"`
	Metrics   map[string]int64 `json:"metrics"`
	Ongoing   bool             `json:"ongoing"`
	Trigger   string           `json:"trigger,omitempty"`
}

// Allowlist is a CVE allowlist: the system's (ProjectID 0) or a
// project's. An allowlist whose ExpiresAt (Unix seconds) has passed no
// longer applies.
type Allowlist struct {
	ID        int64
	ProjectID int64
	ExpiresAt *int64
	Items     []string
	Created   time.Time
	Updated   time.Time
}

// Registration is a scanner registration (Harbor's ScannerRegistration).
type Registration struct {
	UUID             string
	Name             string
	Description      string
	URL              string
	Disabled         bool
	IsDefault        bool
	Auth             string
	AccessCredential string
	SkipCertVerify   bool
	UseInternalAddr  bool
	// Immutable is set for lading's built-in scanner.
	Immutable bool
	Created   time.Time
	Updated   time.Time
	// Adapter, Vendor and Version come from the scanner's metadata;
	// Health is "healthy" or "unhealthy" (listings ask each scanner).
	Adapter, Vendor, Version, Health string
}
