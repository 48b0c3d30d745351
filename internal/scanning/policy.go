package scanning

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"

	"github.com/lading-dev/lading/internal/access"
	"github.com/lading-dev/lading/internal/audit"
	"github.com/lading-dev/lading/internal/errdefs"
	"github.com/lading-dev/lading/internal/scanning/scanapi"
	"github.com/lading-dev/lading/internal/sqldb"
)

// The vulnerability prevention policy (project metadata prevent_vul and
// severity) and the CVE allowlists it honours: the system's
// (/system/CVEAllowlist) and a project's own (its cve_allowlist), which
// replaces the system's unless reuse_sys_cve_allowlist is true. An
// allowlist whose expires_at has passed no longer applies.

// CheckPull refuses, with Harbor's message, the pull of an artifact that
// its project's policy blocks: one with a vulnerability at or above the
// project's severity that no allowlist covers, one not yet scanned, or
// one whose scan failed. The scanner's own pulls are exempt.
func (s *Service) CheckPull(ctx context.Context, who access.Subject, scannerPull bool, repo, dgst string) error {
	if scannerPull {
		return nil
	}
	name, _, ok := strings.Cut(repo, "/")
	if !ok {
		return nil
	}
	p, err := s.d.Projects.Resolve(ctx, projectRef(name))
	if err != nil {
		return nil // the registry answers for a repository outside any project
	}
	md, err := s.metadata(ctx, p.ID)
	if err != nil {
		return err
	}
	if md["prevent_vul"] != "true" {
		return nil
	}
	a, err := s.d.Artifacts.InRepository(ctx, repo, dgst)
	if err != nil {
		return nil // not an artifact of the view (yet)
	}
	if !scannable(a.ManifestMediaType, a.ArtifactType, a.MediaType) || isIndex(a.ManifestMediaType) {
		// What no scanner reads (signatures, SBOMs), and an index (each
		// image is checked when it is pulled), pass.
		return nil
	}
	severity := md["severity"]
	min := severityOf(severity)
	policy := fmt.Sprintf(`'Prevent images with vulnerability severity of "%s" or higher from running.'`, displaySeverity(severity))
	reg, err := s.scannerOf(ctx, nil, p.ID)
	if err != nil {
		return err
	}
	rows, err := s.reportsOf(ctx, []string{dgst}, reg.UUID, scanapi.TypeVulnerability)
	if err != nil {
		return err
	}
	r, ok := rows[dgst]
	if !ok {
		return errdefs.FailedPrecondition(fmt.Errorf("current image without vulnerability scanning cannot be pulled due to configured policy in %s To continue with pull, please contact your project administrator for help.", policy))
	}
	statuses, err := s.statuses(ctx, rows)
	if err != nil {
		return err
	}
	if st := statuses[dgst]; st != scanapi.StatusSuccess {
		return errdefs.FailedPrecondition(fmt.Errorf(`current image with "%s" status of vulnerability scanning cannot be pulled due to configured policy in %s To continue with pull, please contact your project administrator for help.`, st, policy))
	}
	v, err := s.storedVerdict(ctx, r)
	if err != nil {
		return err
	}
	allowed, err := s.allowed(ctx, p.ID, md)
	if err != nil {
		return err
	}
	blocking := v.blocking(min, func(id string) bool { return allowed[id] })
	if len(blocking) == 0 {
		return nil
	}
	thing := "vulnerability"
	if len(blocking) > 1 {
		thing = "vulnerabilities"
	}
	var ids []string
	for _, f := range blocking {
		if !slices.Contains(ids, f.ID) {
			ids = append(ids, f.ID)
		}
	}
	more := ""
	if len(ids) > 10 {
		more = fmt.Sprintf(" and %d more", len(ids)-10)
		ids = ids[:10]
	}
	return errdefs.FailedPrecondition(fmt.Errorf("current image with %d %s cannot be pulled due to configured policy in %s To continue with pull, please contact your project administrator to exempt matched vulnerabilities through configuring the CVE allowlist. (%s%s)",
		len(blocking), thing, policy, strings.Join(ids, ", "), more))
}

// displaySeverity writes a severity as Harbor's messages do ("High").
func displaySeverity(s string) string {
	if s == "" {
		return "None"
	}
	return strings.ToUpper(s[:1]) + strings.ToLower(s[1:])
}

// metadata reads a project's metadata.
func (s *Service) metadata(ctx context.Context, projectID int64) (map[string]string, error) {
	p, err := s.d.Projects.Get(ctx, system, projectRefID(projectID))
	if err != nil {
		return nil, err
	}
	return p.Metadata, nil
}

// allowed is the set of CVE ids the allowlist in force for a project
// exempts: its own, or the system's when it reuses the system's; none
// when that one has expired.
func (s *Service) allowed(ctx context.Context, projectID int64, md map[string]string) (map[string]bool, error) {
	id := projectID
	if md["reuse_sys_cve_allowlist"] == "true" {
		id = 0
	}
	l, err := s.allowlist(ctx, id)
	if err != nil {
		return nil, err
	}
	out := map[string]bool{}
	if l.ExpiresAt != nil && *l.ExpiresAt > 0 && s.d.DB.Now().Unix() >= *l.ExpiresAt {
		return out, nil
	}
	for _, item := range l.Items {
		out[item] = true
	}
	return out, nil
}

func (s *Service) allowlist(ctx context.Context, projectID int64) (scanapi.Allowlist, error) {
	l := scanapi.Allowlist{ProjectID: projectID, Items: []string{}}
	var items string
	var expires sql.NullInt64
	var created, updated int64
	err := s.d.DB.QueryRow(ctx, `SELECT id, items, expires_at, created, updated FROM cve_allowlists WHERE project_id = ?`, projectID).Scan(&l.ID, &items, &expires, &created, &updated)
	if errors.Is(err, sql.ErrNoRows) {
		return l, nil
	}
	if err != nil {
		return l, s.d.DB.Wrap("CVE allowlist", err)
	}
	json.Unmarshal([]byte(items), &l.Items)
	if expires.Valid {
		l.ExpiresAt = &expires.Int64
	}
	l.Created, l.Updated = sqldb.Time(created), sqldb.Time(updated)
	return l, nil
}

var cveID = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9]*(-[A-Za-z0-9]+){1,4}$`)

func (s *Service) setAllowlist(ctx context.Context, projectID int64, l scanapi.Allowlist, ev audit.Event) error {
	var items []string
	for _, it := range l.Items {
		it = strings.TrimSpace(it)
		if it == "" {
			continue
		}
		if len(it) > 64 || !cveID.MatchString(it) {
			return errdefs.InvalidArgument(fmt.Errorf("allowlist item %.70q is not a vulnerability id (CVE-2024-1234, GHSA-xxxx-xxxx-xxxx)", it))
		}
		if !slices.Contains(items, it) {
			items = append(items, it)
		}
	}
	if len(items) > 10000 {
		return errdefs.InvalidArgument(fmt.Errorf("an allowlist holds at most 10000 items, not %d", len(items)))
	}
	if l.ExpiresAt != nil && *l.ExpiresAt < 0 {
		return errdefs.InvalidArgument(errors.New("expires_at is a Unix time in seconds"))
	}
	if items == nil {
		items = []string{}
	}
	b, _ := json.Marshal(items)
	var expires any
	if l.ExpiresAt != nil && *l.ExpiresAt > 0 {
		expires = *l.ExpiresAt
	}
	now := sqldb.Nanos(s.d.DB.Now())
	return s.d.DB.Tx(ctx, "CVE allowlist", func(tx *sqldb.Tx) error {
		if _, err := tx.Exec(ctx, `INSERT INTO cve_allowlists (project_id, items, expires_at, created, updated) VALUES (?, ?, ?, ?, ?)
			ON CONFLICT (project_id) DO UPDATE SET items = excluded.items, expires_at = excluded.expires_at, updated = excluded.updated`,
			projectID, string(b), expires, now, now); err != nil {
			return err
		}
		return s.d.Audit.Record(ctx, tx, ev)
	})
}

func (s *Service) SystemAllowlist(ctx context.Context, who access.Subject) (scanapi.Allowlist, error) {
	if !who.Authenticated() {
		return scanapi.Allowlist{}, access.Refuse(who, access.Read, access.Configuration)
	}
	return s.allowlist(ctx, 0)
}

func (s *Service) SetSystemAllowlist(ctx context.Context, who access.Subject, l scanapi.Allowlist) error {
	if err := s.requireSystem(ctx, who, access.Update, access.Configuration); err != nil {
		return err
	}
	return s.setAllowlist(ctx, 0, l, audit.Event{Operation: "update", ResourceType: "configuration", Resource: "CVE allowlist", Description: "update the system CVE allowlist"})
}

func (s *Service) ProjectAllowlist(ctx context.Context, projectID int64) (scanapi.Allowlist, error) {
	return s.allowlist(ctx, projectID)
}

func (s *Service) SetProjectAllowlist(ctx context.Context, who access.Subject, projectID int64, l scanapi.Allowlist) error {
	p, err := s.d.Projects.Authorize(ctx, who, projectRefID(projectID), access.Update, access.Self)
	if err != nil {
		return err
	}
	return s.setAllowlist(ctx, p.ID, l, audit.Event{ProjectID: p.ID, Operation: "update", ResourceType: "project", Resource: p.Name, Description: "update the project's CVE allowlist"})
}
