package scanning

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/lading-dev/lading/internal/access"
	"github.com/lading-dev/lading/internal/audit"
	"github.com/lading-dev/lading/internal/errdefs"
	"github.com/lading-dev/lading/internal/outbound"
	"github.com/lading-dev/lading/internal/project"
	"github.com/lading-dev/lading/internal/query"
	"github.com/lading-dev/lading/internal/scanning/adapter"
	"github.com/lading-dev/lading/internal/scanning/scanapi"
	"github.com/lading-dev/lading/internal/sqldb"
)

// Scanner registrations, Harbor's way: lading's own scanner is registered
// at first start (the default, immutable), external scanners (a scanner
// adapter: Trivy's, another lading) are added through /scanners, one is
// the system's default and a project may choose its own.

// The built-in scanner's registration.
const (
	builtinUUID = "6c616469-6e67-4000-8000-000000000001"
	builtinURL  = "lading:builtin"
)

type registration struct{ scanapi.Registration }

func (r registration) builtin() bool { return r.URL == builtinURL }

func projectRef(name string) project.Ref { return project.Ref{Name: name} }

const regCols = `uuid, name, description, url, disabled, is_default, auth, access_credential, skip_cert_verify, use_internal_addr, immutable, created, updated`

func scanRegistration(row sqldb.Row) (registration, error) {
	var r registration
	var created, updated int64
	err := row.Scan(&r.UUID, &r.Name, &r.Description, &r.URL, &r.Disabled, &r.IsDefault, &r.Auth, &r.AccessCredential, &r.SkipCertVerify, &r.UseInternalAddr,
		&r.Immutable, &created, &updated)
	r.Created, r.Updated = sqldb.Time(created), sqldb.Time(updated)
	return r, err
}

// ensureBuiltin registers lading's own scanner, the default when there is
// none.
func (s *Service) ensureBuiltin(ctx context.Context) error {
	now := sqldb.Nanos(s.d.DB.Now())
	return s.d.DB.Tx(ctx, "register the built-in scanner", func(tx *sqldb.Tx) error {
		var n int64
		if err := tx.QueryRow(ctx, `SELECT COUNT(*) FROM scanner_registrations WHERE is_default = TRUE`).Scan(&n); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `INSERT INTO scanner_registrations (`+regCols+`) VALUES (?, 'lading', ?, ?, FALSE, ?, '', '', FALSE, FALSE, TRUE, ?, ?)
			ON CONFLICT (uuid) DO NOTHING`, builtinUUID, "lading's built-in scanner: layers read from the registry's storage, each analyzed once", builtinURL, n == 0, now, now)
		return err
	})
}

func (s *Service) registration(ctx context.Context, uuid string) (registration, error) {
	r, err := scanRegistration(s.d.DB.QueryRow(ctx, `SELECT `+regCols+` FROM scanner_registrations WHERE uuid = ?`, uuid))
	if errors.Is(err, sql.ErrNoRows) {
		return registration{}, errdefs.NotFound(fmt.Errorf("scanner registration %s not found", uuid))
	}
	return r, s.d.DB.Wrap("scanner registration", err)
}

// scannerOf is the scanner of a project: its own, else the system's
// default.
func (s *Service) scannerOf(ctx context.Context, tx *sqldb.Tx, projectID int64) (registration, error) {
	var row sqldb.Row
	q := `SELECT ` + regCols + ` FROM scanner_registrations WHERE uuid = (SELECT registration FROM scanner_projects WHERE project_id = ?) AND disabled = FALSE`
	if tx != nil {
		row = tx.QueryRow(ctx, q, projectID)
	} else {
		row = s.d.DB.QueryRow(ctx, q, projectID)
	}
	r, err := scanRegistration(row)
	if err == nil {
		return r, nil
	}
	if !errors.Is(err, sql.ErrNoRows) {
		return registration{}, err
	}
	q = `SELECT ` + regCols + ` FROM scanner_registrations WHERE is_default = TRUE`
	if tx != nil {
		row = tx.QueryRow(ctx, q)
	} else {
		row = s.d.DB.QueryRow(ctx, q)
	}
	r, err = scanRegistration(row)
	if errors.Is(err, sql.ErrNoRows) {
		return registration{}, errdefs.FailedPrecondition(errors.New("no default scanner is set"))
	}
	if err == nil && r.Disabled {
		return registration{}, errdefs.FailedPrecondition(fmt.Errorf("the default scanner %s is disabled", r.Name))
	}
	return r, err
}

// requireSystem checks a system-level permission.
func (s *Service) requireSystem(ctx context.Context, who access.Subject, a access.Action, r access.Resource) error {
	return s.d.Access.Require(ctx, who, a, r, 0)
}

// RegistrationFields are the keys a scanner listing may filter and sort
// by.
var RegistrationFields = query.Fields{
	"name":        {Column: "name"},
	"description": {Column: "description"},
	"url":         {Column: "url"},
	"disabled":    {Column: "disabled", Kind: query.Bool},
}

func (s *Service) ListScanners(ctx context.Context, who access.Subject, q query.Query, page query.Page) ([]scanapi.Registration, int64, error) {
	if err := s.requireSystem(ctx, who, access.List, access.Scanner); err != nil {
		return nil, 0, err
	}
	return s.listRegistrations(ctx, q, page)
}

func (s *Service) listRegistrations(ctx context.Context, q query.Query, page query.Page) ([]scanapi.Registration, int64, error) {
	c, err := q.SQL(s.d.DB.Dialect(), RegistrationFields, "created ASC, uuid", "uuid")
	if err != nil {
		return nil, 0, err
	}
	var total int64
	if err := s.d.DB.QueryRow(ctx, `SELECT COUNT(*) FROM scanner_registrations`+c.WhereSQL(), c.Args...).Scan(&total); err != nil {
		return nil, 0, s.d.DB.Wrap("scanners", err)
	}
	rows, err := s.d.DB.Query(ctx, `SELECT `+regCols+` FROM scanner_registrations`+c.WhereSQL()+` ORDER BY `+c.OrderBy+page.LimitSQL(), c.Args...)
	if err != nil {
		return nil, 0, s.d.DB.Wrap("scanners", err)
	}
	var list []registration
	for rows.Next() {
		r, err := scanRegistration(rows)
		if err != nil {
			rows.Close()
			return nil, 0, s.d.DB.Wrap("scanners", err)
		}
		list = append(list, r)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, 0, s.d.DB.Wrap("scanners", err)
	}
	out := make([]scanapi.Registration, len(list))
	for i, r := range list {
		out[i] = s.describe(ctx, r)
	}
	return out, total, nil
}

// describe fills what a registration's metadata tells (cached a minute),
// with the credential hidden.
func (s *Service) describe(ctx context.Context, r registration) scanapi.Registration {
	out := r.Registration
	if out.AccessCredential != "" {
		out.AccessCredential = "*****"
	}
	m, err := s.metadataOf(ctx, r)
	if err != nil {
		out.Health = "unhealthy"
		return out
	}
	out.Health, out.Adapter, out.Vendor, out.Version = "healthy", m.Scanner.Name, m.Scanner.Vendor, m.Scanner.Version
	return out
}

type cachedMeta struct {
	m   adapter.Metadata
	err error
	at  time.Time
}

// metadataOf asks a scanner for its metadata (the built-in one answers
// itself), remembering the answer a minute.
func (s *Service) metadataOf(ctx context.Context, r registration) (adapter.Metadata, error) {
	if r.builtin() {
		return s.builtinMetadata(), nil
	}
	s.mu.Lock()
	c, ok := s.metaTTL[r.UUID]
	s.mu.Unlock()
	if ok && time.Since(c.at) < time.Minute && c.at.After(r.Updated) {
		return c.m, c.err
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	m, err := s.client(r).Metadata(ctx)
	s.mu.Lock()
	s.metaTTL[r.UUID] = cachedMeta{m: m, err: err, at: time.Now()}
	s.mu.Unlock()
	return m, err
}

// client calls an external scanner through the outbound policy.
func (s *Service) client(r registration) *adapter.Client {
	return &adapter.Client{URL: r.URL, Auth: r.Auth, Credential: r.AccessCredential,
		HTTP: s.d.Outbound.Client(outbound.ClientOptions{Timeout: 30 * time.Second, InsecureSkipVerify: r.SkipCertVerify})}
}

// builtinMetadata is the built-in scanner's metadata (also the adapter
// API's).
func (s *Service) builtinMetadata() adapter.Metadata {
	props := map[string]string{"harbor.scanner-adapter/scanner-type": "os-package-vulnerability"}
	if h, err := s.keeper.acquire(); err == nil {
		props["harbor.scanner-adapter/vulnerability-database-updated-at"] = h.db.Metadata().BuiltAt.UTC().Format(time.RFC3339)
		props["lading/vulnerability-database-digest"] = h.digest
		h.release()
	}
	consumes := []string{adapter.MimeOCIManifest, adapter.MimeDockerManifest}
	return adapter.Metadata{
		Scanner: s.scanner(),
		Capabilities: []adapter.Capability{
			{Type: adapter.TypeVulnerability, ConsumesMimeTypes: consumes,
				ProducesMimeTypes: []string{adapter.MimeVulnReport, adapter.MimeVulnReportHarbor, adapter.MimeVulnReportRaw}},
			{Type: adapter.TypeSBOM, ConsumesMimeTypes: consumes, ProducesMimeTypes: []string{adapter.MimeSBOMReport},
				AdditionalAttributes: map[string]any{"sbom_media_types": []string{adapter.MediaTypeSPDX, adapter.MediaTypeCycloneDX}}},
		},
		Properties: props,
	}
}

// checkRegistration validates a registration as it is saved.
func (s *Service) checkRegistration(r *scanapi.Registration) error {
	r.Name = strings.TrimSpace(r.Name)
	if r.Name == "" || len(r.Name) > 128 {
		return errdefs.InvalidArgument(errors.New("a scanner needs a name of at most 128 characters"))
	}
	if r.URL == builtinURL {
		return errdefs.InvalidArgument(errors.New("that URL is the built-in scanner's"))
	}
	u, err := s.d.Outbound.CheckURL(r.URL)
	if err != nil {
		return err
	}
	r.URL = strings.TrimSuffix(u.String(), "/")
	return adapter.CheckAuth(r.Auth, r.AccessCredential)
}

func (s *Service) CreateScanner(ctx context.Context, who access.Subject, r scanapi.Registration) (string, error) {
	if err := s.requireSystem(ctx, who, access.Create, access.Scanner); err != nil {
		return "", err
	}
	if err := s.checkRegistration(&r); err != nil {
		return "", err
	}
	uuid := newUUID()
	now := sqldb.Nanos(s.d.DB.Now())
	err := s.d.DB.Tx(ctx, "create scanner "+r.Name, func(tx *sqldb.Tx) error {
		_, err := tx.Exec(ctx, `INSERT INTO scanner_registrations (`+regCols+`) VALUES (?, ?, ?, ?, ?, FALSE, ?, ?, ?, ?, FALSE, ?, ?)`,
			uuid, r.Name, r.Description, r.URL, r.Disabled, r.Auth, r.AccessCredential, r.SkipCertVerify, r.UseInternalAddr, now, now)
		if sqldb.IsUniqueViolation(err) {
			return errdefs.Conflict(fmt.Errorf("a scanner named %q exists", r.Name))
		}
		if err != nil {
			return err
		}
		return s.d.Audit.Record(ctx, tx, audit.Event{Operation: "create", ResourceType: "scanner", Resource: r.Name})
	})
	return uuid, err
}

func (s *Service) Scanner(ctx context.Context, who access.Subject, uuid string) (scanapi.Registration, error) {
	if err := s.requireSystem(ctx, who, access.Read, access.Scanner); err != nil {
		return scanapi.Registration{}, err
	}
	r, err := s.registration(ctx, uuid)
	if err != nil {
		return scanapi.Registration{}, err
	}
	return s.describe(ctx, r), nil
}

func (s *Service) UpdateScanner(ctx context.Context, who access.Subject, uuid string, r scanapi.Registration) error {
	if err := s.requireSystem(ctx, who, access.Update, access.Scanner); err != nil {
		return err
	}
	old, err := s.registration(ctx, uuid)
	if err != nil {
		return err
	}
	if old.Immutable {
		return errdefs.Denied(fmt.Errorf("the built-in scanner %s cannot be changed", old.Name))
	}
	if r.AccessCredential == "*****" {
		r.AccessCredential = old.AccessCredential
	}
	if err := s.checkRegistration(&r); err != nil {
		return err
	}
	return s.d.DB.Tx(ctx, "update scanner "+r.Name, func(tx *sqldb.Tx) error {
		_, err := tx.Exec(ctx, `UPDATE scanner_registrations SET name = ?, description = ?, url = ?, disabled = ?, auth = ?, access_credential = ?, skip_cert_verify = ?,
			use_internal_addr = ?, updated = ? WHERE uuid = ?`, r.Name, r.Description, r.URL, r.Disabled, r.Auth, r.AccessCredential, r.SkipCertVerify, r.UseInternalAddr,
			sqldb.Nanos(s.d.DB.Now()), uuid)
		if sqldb.IsUniqueViolation(err) {
			return errdefs.Conflict(fmt.Errorf("a scanner named %q exists", r.Name))
		}
		if err != nil {
			return err
		}
		return s.d.Audit.Record(ctx, tx, audit.Event{Operation: "update", ResourceType: "scanner", Resource: r.Name})
	})
}

func (s *Service) DeleteScanner(ctx context.Context, who access.Subject, uuid string) (scanapi.Registration, error) {
	if err := s.requireSystem(ctx, who, access.Delete, access.Scanner); err != nil {
		return scanapi.Registration{}, err
	}
	r, err := s.registration(ctx, uuid)
	if err != nil {
		return scanapi.Registration{}, err
	}
	if r.Immutable {
		return scanapi.Registration{}, errdefs.Denied(fmt.Errorf("the built-in scanner %s cannot be deleted", r.Name))
	}
	if r.IsDefault {
		return scanapi.Registration{}, errdefs.FailedPrecondition(fmt.Errorf("scanner %s is the default: make another the default first", r.Name))
	}
	err = s.d.DB.Tx(ctx, "delete scanner "+r.Name, func(tx *sqldb.Tx) error {
		if _, err := tx.Exec(ctx, `DELETE FROM scanner_registrations WHERE uuid = ?`, uuid); err != nil {
			return err
		}
		return s.d.Audit.Record(ctx, tx, audit.Event{Operation: "delete", ResourceType: "scanner", Resource: r.Name})
	})
	return r.Registration, err
}

func (s *Service) SetDefaultScanner(ctx context.Context, who access.Subject, uuid string, isDefault bool) error {
	if err := s.requireSystem(ctx, who, access.Update, access.Scanner); err != nil {
		return err
	}
	r, err := s.registration(ctx, uuid)
	if err != nil {
		return err
	}
	if !isDefault {
		return nil // Harbor ignores unsetting: another must be made the default
	}
	if r.Disabled {
		return errdefs.FailedPrecondition(fmt.Errorf("scanner %s is disabled", r.Name))
	}
	return s.d.DB.Tx(ctx, "default scanner "+r.Name, func(tx *sqldb.Tx) error {
		if _, err := tx.Exec(ctx, `UPDATE scanner_registrations SET is_default = (uuid = ?)`, uuid); err != nil {
			return err
		}
		return s.d.Audit.Record(ctx, tx, audit.Event{Operation: "update", ResourceType: "scanner", Resource: r.Name, Description: "set as the default scanner"})
	})
}

func (s *Service) ScannerMetadata(ctx context.Context, who access.Subject, uuid string) (adapter.Metadata, error) {
	if err := s.requireSystem(ctx, who, access.Read, access.Scanner); err != nil {
		return adapter.Metadata{}, err
	}
	r, err := s.registration(ctx, uuid)
	if err != nil {
		return adapter.Metadata{}, err
	}
	if r.builtin() {
		return s.builtinMetadata(), nil
	}
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	return s.client(r).Metadata(ctx)
}

func (s *Service) PingScanner(ctx context.Context, who access.Subject, r scanapi.Registration) error {
	if err := s.requireSystem(ctx, who, access.Read, access.Scanner); err != nil {
		return err
	}
	if r.Name == "" {
		r.Name = "ping"
	}
	if err := s.checkRegistration(&r); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	m, err := s.client(registration{r}).Metadata(ctx)
	if err != nil {
		return err
	}
	if !m.Produces(adapter.TypeVulnerability, adapter.MimeVulnReport) && !m.Produces(adapter.TypeVulnerability, adapter.MimeVulnReportHarbor) {
		return errdefs.InvalidArgument(fmt.Errorf("scanner %s produces no vulnerability report Harbor reads", m.Scanner.Name))
	}
	return nil
}

// ProjectScanner is a project's scanner: its own, else the default.
func (s *Service) ProjectScanner(ctx context.Context, who access.Subject, ref project.Ref) (scanapi.Registration, error) {
	p, err := s.d.Projects.Authorize(ctx, who, ref, access.Read, access.Scanner)
	if err != nil {
		return scanapi.Registration{}, err
	}
	r, err := s.scannerOf(ctx, nil, p.ID)
	if err != nil {
		return scanapi.Registration{}, err
	}
	return s.describe(ctx, r), nil
}

func (s *Service) SetProjectScanner(ctx context.Context, who access.Subject, ref project.Ref, uuid string) error {
	p, err := s.d.Projects.Authorize(ctx, who, ref, access.Create, access.Scanner)
	if err != nil {
		return err
	}
	r, err := s.registration(ctx, uuid)
	if errdefs.IsNotFound(err) {
		return errdefs.InvalidArgument(err)
	}
	if err != nil {
		return err
	}
	if r.Disabled {
		return errdefs.InvalidArgument(fmt.Errorf("scanner %s is disabled", r.Name))
	}
	return s.d.DB.Tx(ctx, "project scanner", func(tx *sqldb.Tx) error {
		if _, err := tx.Exec(ctx, `INSERT INTO scanner_projects (project_id, registration) VALUES (?, ?)
			ON CONFLICT (project_id) DO UPDATE SET registration = excluded.registration`, p.ID, uuid); err != nil {
			return err
		}
		return s.d.Audit.Record(ctx, tx, audit.Event{ProjectID: p.ID, Operation: "update", ResourceType: "project", Resource: p.Name, Description: "set the project's scanner to " + r.Name})
	})
}

func (s *Service) ScannerCandidates(ctx context.Context, who access.Subject, ref project.Ref, q query.Query, page query.Page) ([]scanapi.Registration, int64, error) {
	if _, err := s.d.Projects.Authorize(ctx, who, ref, access.Create, access.Scanner); err != nil {
		return nil, 0, err
	}
	q = q.With("disabled", false)
	return s.listRegistrations(ctx, q, page)
}

func projectRefID(id int64) project.Ref { return project.Ref{ID: id} }
