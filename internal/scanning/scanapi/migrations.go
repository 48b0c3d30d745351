package scanapi

import "github.com/lading-dev/lading/internal/sqldb"

// Migrations create the scanning tables (owner "scanning"; package
// scanning reads and writes them). They follow the job service's and the
// projects' (scanner_projects references projects).
//
//	scan_layers    digest, part, data, used: per-layer analysis results,
//	               keyed by the digest of the layer blob the registry
//	               verified on upload and the analyzer part ("dpkg@3.f2"),
//	               never by a config's diffID; used is when the entry was
//	               last read (trimming)
//	scan_reports   one row per artifact digest, scanner registration and
//	               scan type: the report's uuid (report_id), status, job,
//	               times, the vulnerability database it was computed with,
//	               the verdict (max severity, summary, compact findings),
//	               the match inputs (packages) and the inventory for
//	               re-evaluation and full reports, an external scanner's
//	               report, an SBOM's accessory digest, an index's children
//	cve_allowlists project_id (0: the system), items (JSON), expires_at
//	scanner_registrations uuid, name, url, auth, access_credential, flags
//	scanner_projects project_id, registration: a project's scanner
//	scan_vulndb    the vulnerability database in force (one row): its
//	               digest, build time, when it changed
//	adapter_scans  scans asked for through the Pluggable Scanner API: the
//	               request (its registry authorization only until the
//	               scan ends), the caller, status, inventory
var Migrations = []sqldb.Migration{{Owner: "scanning", Name: "layers, reports, allowlists, scanners, database, adapter scans", SQL: []string{
	`CREATE TABLE scan_layers (
		digest {{text}} NOT NULL,
		part {{text}} NOT NULL,
		data {{bytes}} NOT NULL,
		size {{int}} NOT NULL,
		used {{int}} NOT NULL,
		PRIMARY KEY (digest, part))`,
	`CREATE INDEX scan_layers_used ON scan_layers (used)`,
	`CREATE TABLE scan_reports (
		id {{id}},
		uuid {{text}} NOT NULL UNIQUE,
		digest {{text}} NOT NULL,
		registration {{text}} NOT NULL,
		scan_type {{text}} NOT NULL,
		mime_type {{text}} NOT NULL,
		repository {{text}} NOT NULL,
		media_type {{text}} NOT NULL,
		status {{text}} NOT NULL,
		job_id {{int}} NOT NULL DEFAULT 0,
		start_time {{int}} NOT NULL DEFAULT 0,
		end_time {{int}} NOT NULL DEFAULT 0,
		db_digest {{text}} NOT NULL DEFAULT '',
		severity {{int}} NOT NULL DEFAULT 0,
		summary {{text}} NOT NULL DEFAULT '',
		findings {{bytes}},
		packages {{bytes}},
		inventory {{bytes}},
		report {{bytes}},
		accessory {{text}} NOT NULL DEFAULT '',
		children {{text}} NOT NULL DEFAULT '',
		UNIQUE (digest, registration, scan_type))`,
	`CREATE INDEX scan_reports_type ON scan_reports (scan_type, status, id)`,
	`CREATE TABLE cve_allowlists (
		id {{id}},
		project_id {{int}} NOT NULL UNIQUE,
		items {{text}} NOT NULL,
		expires_at {{int}},
		created {{int}} NOT NULL,
		updated {{int}} NOT NULL)`,
	`CREATE TABLE scanner_registrations (
		uuid {{text}} PRIMARY KEY,
		name {{text}} NOT NULL UNIQUE,
		description {{text}} NOT NULL,
		url {{text}} NOT NULL,
		disabled {{bool}} NOT NULL,
		is_default {{bool}} NOT NULL,
		auth {{text}} NOT NULL,
		access_credential {{text}} NOT NULL,
		skip_cert_verify {{bool}} NOT NULL,
		use_internal_addr {{bool}} NOT NULL,
		immutable {{bool}} NOT NULL,
		created {{int}} NOT NULL,
		updated {{int}} NOT NULL)`,
	`CREATE TABLE scanner_projects (
		project_id {{int}} PRIMARY KEY REFERENCES projects (id) ON DELETE CASCADE,
		registration {{text}} NOT NULL REFERENCES scanner_registrations (uuid) ON DELETE CASCADE)`,
	`CREATE TABLE scan_vulndb (
		id {{int}} PRIMARY KEY,
		digest {{text}} NOT NULL,
		size {{int}} NOT NULL,
		built_at {{int}} NOT NULL,
		source {{text}} NOT NULL,
		updated {{int}} NOT NULL)`,
	`CREATE TABLE adapter_scans (
		id {{text}} PRIMARY KEY,
		caller {{text}} NOT NULL,
		request {{text}} NOT NULL,
		registry_auth {{text}} NOT NULL,
		status {{text}} NOT NULL,
		error {{text}} NOT NULL,
		job_id {{int}} NOT NULL,
		inventory {{bytes}},
		created {{int}} NOT NULL,
		updated {{int}} NOT NULL)`,
	`CREATE INDEX adapter_scans_created ON adapter_scans (created)`,
}}}
