// Package immutable keeps Harbor's immutable tag rules: per project, a
// repository selector and a tag selector (package selector) naming tags
// that, once they exist, may not be pushed over, moved to another
// artifact, or deleted, whoever asks (the registry's Gate, the artifact
// API, retention, garbage collection of untagged artifacts). Pushing a tag
// that does not exist yet is always allowed: a rule protects what is
// there.
//
// A rule protects a tag of a repository when it is enabled, its
// repository selector takes the repository's name within the project and
// its tag selector takes the tag (untagged artifacts are never protected,
// as in Harbor). Unlike Harbor, pushing exactly the content an immutable
// tag already points at is allowed: it changes nothing, and CI pipelines
// that re-run a push no longer fail.
//
// # Table (owner "immutable")
//
//	immutable_rules
//	  id, project_id (deleted with the project), disabled, priority,
//	  selectors (canonical JSON of the two selectors: unique per
//	  project, so a rule cannot be added twice), tag_selectors and
//	  scope_selectors (JSON, as Harbor's API has them), created, updated
package immutable

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/lading-dev/lading/internal/access"
	"github.com/lading-dev/lading/internal/audit"
	"github.com/lading-dev/lading/internal/errdefs"
	"github.com/lading-dev/lading/internal/project"
	"github.com/lading-dev/lading/internal/query"
	"github.com/lading-dev/lading/internal/selector"
	"github.com/lading-dev/lading/internal/sqldb"
)

// Migrations create the rules' table; they follow the project tables.
var Migrations = []sqldb.Migration{{Owner: "immutable", Name: "immutable tag rules", SQL: []string{
	`CREATE TABLE immutable_rules (
		id {{id}},
		project_id {{int}} NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
		disabled {{bool}} NOT NULL,
		priority {{int}} NOT NULL,
		selectors {{text}} NOT NULL,
		tag_selectors {{text}} NOT NULL,
		scope_selectors {{text}} NOT NULL,
		created {{int}} NOT NULL,
		updated {{int}} NOT NULL,
		UNIQUE (project_id, selectors))`,
}}}

// Harbor's fixed action and template of immutable rules.
const (
	Action   = "immutable"
	Template = "immutable_template"
)

// MaxRules bounds a project's rules (Harbor's limit).
const MaxRules = 15

// Rule is an immutable tag rule.
type Rule struct {
	ID        int64
	ProjectID int64
	Disabled  bool
	Priority  int
	// Tags and Repositories are the rule's selectors; Harbor's API holds
	// them in lists (tag_selectors, scope_selectors.repository) of which
	// only the first counts.
	Tags         selector.Selector
	Repositories selector.Selector
	Created      time.Time
	Updated      time.Time
}

// String describes the rule: `rule 3 (repositories matching "**", tags
// matching "v*")`.
func (r Rule) String() string {
	return fmt.Sprintf("immutable rule %d (%s, %s)", r.ID, r.Repositories, r.Tags)
}

// Protects reports whether the rule protects tag of repo (its name within
// the project).
func (r Rule) Protects(repo, tag string) bool {
	return !r.Disabled && r.Repositories.SelectsRepository(repo) && r.Tags.Tag(tag)
}

// ProtectedError refuses a change to an immutable tag. Its class is
// errdefs.ErrFailedPrecondition (Harbor's 412).
type ProtectedError struct {
	Repository string // "project/name"
	Tag        string
	Rule       Rule
}

func (e *ProtectedError) Error() string {
	return fmt.Sprintf("the tag %s:%s is immutable: it is protected by %s; it cannot be pushed over, moved or deleted", e.Repository, e.Tag, e.Rule)
}

// Unwrap gives a ProtectedError its class.
func (e *ProtectedError) Unwrap() error { return errdefs.ErrFailedPrecondition }

// Service keeps the rules.
type Service struct {
	db       *sqldb.DB
	audit    *audit.Log
	projects *project.Service
}

// New returns the service.
func New(db *sqldb.DB, log *audit.Log, projects *project.Service) *Service {
	return &Service{db: db, audit: log, projects: projects}
}

// check validates a rule and fills Harbor's defaults.
func check(r *Rule) error {
	if r.Repositories.Kind == "" && r.Repositories.Decoration == "" {
		return errdefs.InvalidArgument(errors.New("an immutable rule needs a repository selector (scope_selectors.repository)"))
	}
	if r.Tags.Kind == "" && r.Tags.Decoration == "" {
		return errdefs.InvalidArgument(errors.New("an immutable rule needs a tag selector (tag_selectors)"))
	}
	if err := selector.Check(r.Repositories, selector.RepoDecorations); err != nil {
		return fmt.Errorf("repository selector: %w", err)
	}
	if err := selector.Check(r.Tags, selector.TagDecorations); err != nil {
		return fmt.Errorf("tag selector: %w", err)
	}
	if r.Priority < 0 || r.Priority > 1<<20 {
		return errdefs.InvalidArgument(fmt.Errorf("priority %d out of range", r.Priority))
	}
	return nil
}

func (r Rule) key() string {
	b, _ := json.Marshal([2]selector.Selector{r.Repositories, r.Tags})
	return string(b)
}

const cols = `id, project_id, disabled, priority, tag_selectors, scope_selectors, created, updated`

func scan(row sqldb.Row) (Rule, error) {
	var r Rule
	var tags, scopes string
	var created, updated int64
	if err := row.Scan(&r.ID, &r.ProjectID, &r.Disabled, &r.Priority, &tags, &scopes, &created, &updated); err != nil {
		return r, err
	}
	var ts []selector.Selector
	var ss map[string][]selector.Selector
	json.Unmarshal([]byte(tags), &ts)
	json.Unmarshal([]byte(scopes), &ss)
	if len(ts) > 0 {
		r.Tags = ts[0]
	}
	if rs := ss["repository"]; len(rs) > 0 {
		r.Repositories = rs[0]
	}
	r.Created, r.Updated = sqldb.Time(created), sqldb.Time(updated)
	return r, nil
}

func encode(r Rule) (tags, scopes string) {
	t, _ := json.Marshal([]selector.Selector{r.Tags})
	s, _ := json.Marshal(map[string][]selector.Selector{"repository": {r.Repositories}})
	return string(t), string(s)
}

// Fields are the keys a rule listing may filter and sort by.
var Fields = query.Fields{
	"id":       {Column: "id", Kind: query.Int},
	"disabled": {Column: "disabled", Kind: query.Bool},
	"priority": {Column: "priority", Kind: query.Int},
}

// List lists a project's rules.
func (s *Service) List(ctx context.Context, who access.Subject, ref project.Ref, q query.Query, page query.Page) ([]Rule, int64, error) {
	p, err := s.projects.Authorize(ctx, who, ref, access.List, access.ImmutableTag)
	if err != nil {
		return nil, 0, err
	}
	c, err := q.SQL(s.db.Dialect(), Fields, "priority ASC, id ASC", "id")
	if err != nil {
		return nil, 0, err
	}
	where := c.WhereSQL("project_id = ?")
	args := append([]any{p.ID}, c.Args...)
	var total int64
	if err := s.db.QueryRow(ctx, `SELECT COUNT(*) FROM immutable_rules`+where, args...).Scan(&total); err != nil {
		return nil, 0, s.db.Wrap("immutable rules", err)
	}
	out, err := s.query(ctx, `SELECT `+cols+` FROM immutable_rules`+where+` ORDER BY `+c.OrderBy+page.LimitSQL(), args...)
	return out, total, err
}

func (s *Service) query(ctx context.Context, stmt string, args ...any) ([]Rule, error) {
	rows, err := s.db.Query(ctx, stmt, args...)
	if err != nil {
		return nil, s.db.Wrap("immutable rules", err)
	}
	defer rows.Close()
	out := []Rule{}
	for rows.Next() {
		r, err := scan(rows)
		if err != nil {
			return nil, s.db.Wrap("immutable rules", err)
		}
		out = append(out, r)
	}
	return out, s.db.Wrap("immutable rules", rows.Err())
}

// Create adds a rule to a project and returns its id. A rule with the
// same selectors is a conflict.
func (s *Service) Create(ctx context.Context, who access.Subject, ref project.Ref, r Rule) (int64, error) {
	p, err := s.projects.Authorize(ctx, who, ref, access.Create, access.ImmutableTag)
	if err != nil {
		return 0, err
	}
	if err := check(&r); err != nil {
		return 0, err
	}
	tags, scopes := encode(r)
	now := sqldb.Nanos(s.db.Now())
	var id int64
	err = s.db.Tx(ctx, "create immutable rule", func(tx *sqldb.Tx) error {
		var n int
		if err := tx.QueryRow(ctx, `SELECT COUNT(*) FROM immutable_rules WHERE project_id = ?`, p.ID).Scan(&n); err != nil {
			return err
		}
		if n >= MaxRules {
			return errdefs.InvalidArgument(fmt.Errorf("project %s has %d immutable rules: at most %d", p.Name, n, MaxRules))
		}
		err := tx.QueryRow(ctx, `INSERT INTO immutable_rules (project_id, disabled, priority, selectors, tag_selectors, scope_selectors, created, updated)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`, p.ID, r.Disabled, r.Priority, r.key(), tags, scopes, now, now).Scan(&id)
		if sqldb.IsUniqueViolation(err) {
			return errdefs.Conflict(fmt.Errorf("immutable rule already exists in project %s: %s, %s", p.Name, r.Repositories, r.Tags))
		}
		if err != nil {
			return err
		}
		r.ID = id
		return s.audit.Record(ctx, tx, audit.Event{ProjectID: p.ID, Operation: "create", ResourceType: "immutable_rule", Resource: fmt.Sprintf("%s/%d", p.Name, id),
			Description: "create " + r.String() + " in project " + p.Name})
	})
	return id, err
}

func (s *Service) rule(ctx context.Context, projectID, id int64) (Rule, error) {
	r, err := scan(s.db.QueryRow(ctx, `SELECT `+cols+` FROM immutable_rules WHERE id = ? AND project_id = ?`, id, projectID))
	if errors.Is(err, sql.ErrNoRows) {
		return Rule{}, errdefs.NotFound(fmt.Errorf("immutable rule %d not found in project %d", id, projectID))
	}
	return r, s.db.Wrap("immutable rule", err)
}

// Update replaces a rule's selectors, priority and disabled flag.
func (s *Service) Update(ctx context.Context, who access.Subject, ref project.Ref, id int64, r Rule) error {
	p, err := s.projects.Authorize(ctx, who, ref, access.Update, access.ImmutableTag)
	if err != nil {
		return err
	}
	if _, err := s.rule(ctx, p.ID, id); err != nil {
		return err
	}
	if err := check(&r); err != nil {
		return err
	}
	r.ID = id
	tags, scopes := encode(r)
	return s.db.Tx(ctx, "update immutable rule", func(tx *sqldb.Tx) error {
		_, err := tx.Exec(ctx, `UPDATE immutable_rules SET disabled = ?, priority = ?, selectors = ?, tag_selectors = ?, scope_selectors = ?, updated = ? WHERE id = ? AND project_id = ?`,
			r.Disabled, r.Priority, r.key(), tags, scopes, sqldb.Nanos(s.db.Now()), id, p.ID)
		if sqldb.IsUniqueViolation(err) {
			return errdefs.Conflict(fmt.Errorf("immutable rule already exists in project %s: %s, %s", p.Name, r.Repositories, r.Tags))
		}
		if err != nil {
			return err
		}
		what := "update "
		if r.Disabled {
			what = "update (disabled) "
		}
		return s.audit.Record(ctx, tx, audit.Event{ProjectID: p.ID, Operation: "update", ResourceType: "immutable_rule", Resource: fmt.Sprintf("%s/%d", p.Name, id),
			Description: what + r.String() + " in project " + p.Name})
	})
}

// Delete removes a rule.
func (s *Service) Delete(ctx context.Context, who access.Subject, ref project.Ref, id int64) error {
	p, err := s.projects.Authorize(ctx, who, ref, access.Delete, access.ImmutableTag)
	if err != nil {
		return err
	}
	r, err := s.rule(ctx, p.ID, id)
	if err != nil {
		return err
	}
	return s.db.Tx(ctx, "delete immutable rule", func(tx *sqldb.Tx) error {
		if _, err := tx.Exec(ctx, `DELETE FROM immutable_rules WHERE id = ? AND project_id = ?`, id, p.ID); err != nil {
			return err
		}
		return s.audit.Record(ctx, tx, audit.Event{ProjectID: p.ID, Operation: "delete", ResourceType: "immutable_rule", Resource: fmt.Sprintf("%s/%d", p.Name, id),
			Description: "delete " + r.String() + " in project " + p.Name})
	})
}

// Rules returns the enabled rules of a project, in priority order,
// without permission checks (the registry's Gate, retention).
func (s *Service) Rules(ctx context.Context, projectID int64) ([]Rule, error) {
	return s.query(ctx, `SELECT `+cols+` FROM immutable_rules WHERE project_id = ? AND disabled = FALSE ORDER BY priority, id`, projectID)
}

// Protected returns, for the tags of repo ("project/name") that a rule
// protects, the first rule that does. A repository outside any project
// has no rules.
func (s *Service) Protected(ctx context.Context, repo string, tags []string) (map[string]Rule, error) {
	if len(tags) == 0 {
		return nil, nil
	}
	name, rest, ok := strings.Cut(repo, "/")
	if !ok {
		return nil, nil
	}
	p, err := s.projects.Resolve(ctx, project.Ref{Name: name})
	if errdefs.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	rules, err := s.Rules(ctx, p.ID)
	if err != nil || len(rules) == 0 {
		return nil, err
	}
	return Matcher(rules).Protected(rest, tags), nil
}

// Check refuses, with a *ProtectedError, when one of tags of repo is
// protected.
func (s *Service) Check(ctx context.Context, repo string, tags []string) error {
	prot, err := s.Protected(ctx, repo, tags)
	if err != nil {
		return err
	}
	for _, t := range tags {
		if r, ok := prot[t]; ok {
			return &ProtectedError{Repository: repo, Tag: t, Rule: r}
		}
	}
	return nil
}

// Matcher is a project's enabled rules, for deciding many tags at once.
type Matcher []Rule

// Protected returns the tags of repo (the name within the project) that a
// rule protects, with the first such rule.
func (m Matcher) Protected(repo string, tags []string) map[string]Rule {
	var out map[string]Rule
	for _, r := range m {
		if r.Disabled || !r.Repositories.SelectsRepository(repo) {
			continue
		}
		for _, t := range tags {
			if _, done := out[t]; done || !r.Tags.Tag(t) {
				continue
			}
			if out == nil {
				out = map[string]Rule{}
			}
			out[t] = r
		}
	}
	return out
}
