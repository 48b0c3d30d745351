// Package label keeps Harbor's labels: named, coloured marks that users
// put on artifacts, global (scope "g", managed by system administrators)
// or of one project (scope "p", managed by its admins and maintainers).
// Artifacts listed through the API carry their labels, and listings filter
// by them (q=labels=(1 2): artifacts with both).
//
// # Tables (owner "label")
//
//	labels      id, name, description, color, scope ('g' or 'p'),
//	            project_id (NULL for global labels; deleted with the
//	            project), owner (the project id, 0 for global: names are
//	            unique per scope and owner), created, updated
//	label_refs  label_id, artifact_id (both cascade), created
package label

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/lading-dev/lading/internal/access"
	"github.com/lading-dev/lading/internal/artifact"
	"github.com/lading-dev/lading/internal/audit"
	"github.com/lading-dev/lading/internal/errdefs"
	"github.com/lading-dev/lading/internal/project"
	"github.com/lading-dev/lading/internal/query"
	"github.com/lading-dev/lading/internal/sqldb"
)

// Migrations create the label tables; they follow the artifact view's.
var Migrations = []sqldb.Migration{{Owner: "label", Name: "labels and their artifacts", SQL: []string{
	`CREATE TABLE labels (
		id {{id}},
		name {{text}} NOT NULL,
		description {{text}} NOT NULL,
		color {{text}} NOT NULL,
		scope {{text}} NOT NULL,
		project_id {{int}} REFERENCES projects (id) ON DELETE CASCADE,
		owner {{int}} NOT NULL,
		created {{int}} NOT NULL,
		updated {{int}} NOT NULL,
		UNIQUE (scope, owner, name))`,
	`CREATE TABLE label_refs (
		label_id {{int}} NOT NULL REFERENCES labels (id) ON DELETE CASCADE,
		artifact_id {{int}} NOT NULL REFERENCES artifacts (id) ON DELETE CASCADE,
		created {{int}} NOT NULL,
		PRIMARY KEY (label_id, artifact_id))`,
	`CREATE INDEX label_refs_artifact ON label_refs (artifact_id, label_id)`,
}}}

// Scopes, as Harbor names them.
const (
	Global  = "g"
	Project = "p"
)

// Label is a label.
type Label struct {
	ID          int64
	Name        string
	Description string
	Color       string
	Scope       string
	ProjectID   int64
	Created     time.Time
	Updated     time.Time
}

// ArtifactField is the "labels" key of artifact listings: q=labels=(1 2)
// keeps the artifacts that have every label named, labels={1 2} those
// that have one of them.
var ArtifactField = query.Field{Column: "lr.label_id", Kind: query.Int, Match: "a.id IN (SELECT lr.artifact_id FROM label_refs lr WHERE %s)"}

// Service keeps labels.
type Service struct {
	db        *sqldb.DB
	access    *access.Checker
	audit     *audit.Log
	projects  *project.Service
	artifacts *artifact.Service
}

// New returns the service.
func New(db *sqldb.DB, checker *access.Checker, log *audit.Log, projects *project.Service, artifacts *artifact.Service) *Service {
	return &Service{db: db, access: checker, audit: log, projects: projects, artifacts: artifacts}
}

// lookup is who the service looks artifacts up as, once the caller's
// permission is checked.
var lookup = access.Subject{Kind: access.KindUser, Name: "lading", SysAdmin: true}

func check(l *Label) error {
	l.Name = strings.TrimSpace(l.Name)
	switch {
	case l.Name == "":
		return errdefs.InvalidArgument(errors.New("label name cannot be empty"))
	case utf8.RuneCountInString(l.Name) > 128:
		return errdefs.InvalidArgument(errors.New("label name: max length is 128"))
	case len(l.Description) > 1024:
		return errdefs.InvalidArgument(errors.New("label description: max length is 1024 bytes"))
	case len(l.Color) > 32 || strings.ContainsAny(l.Color, "\r\n\x00"):
		return errdefs.InvalidArgument(errors.New("label color: at most 32 bytes, such as #1D5100"))
	}
	return nil
}

// require checks who may do a on a label of the scope.
func (s *Service) require(ctx context.Context, who access.Subject, scope string, projectID int64, a access.Action) error {
	switch scope {
	case Global:
		return s.access.Require(ctx, who, a, access.Label, 0)
	case Project:
		_, err := s.projects.Authorize(ctx, who, project.Ref{ID: projectID}, a, access.Label)
		return err
	}
	return errdefs.InvalidArgument(fmt.Errorf("label scope %.16q: want g (global) or p (project)", scope))
}

const cols = `id, name, description, color, scope, COALESCE(project_id, 0), created, updated`

func scan(r sqldb.Row) (Label, error) {
	var l Label
	var created, updated int64
	err := r.Scan(&l.ID, &l.Name, &l.Description, &l.Color, &l.Scope, &l.ProjectID, &created, &updated)
	l.Created, l.Updated = sqldb.Time(created), sqldb.Time(updated)
	return l, err
}

func (s *Service) get(ctx context.Context, id int64) (Label, error) {
	l, err := scan(s.db.QueryRow(ctx, `SELECT `+cols+` FROM labels WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return Label{}, errdefs.NotFound(fmt.Errorf("label %d not found", id))
	}
	return l, s.db.Wrap("label", err)
}

// Create adds a label and returns its id.
func (s *Service) Create(ctx context.Context, who access.Subject, l Label) (int64, error) {
	if l.Scope == "" {
		l.Scope = Global
	}
	if l.Scope == Global {
		l.ProjectID = 0
	} else if l.Scope == Project && l.ProjectID <= 0 {
		return 0, errdefs.InvalidArgument(fmt.Errorf("a project label needs a project_id, not %d", l.ProjectID))
	}
	if err := s.require(ctx, who, l.Scope, l.ProjectID, access.Create); err != nil {
		return 0, err
	}
	if err := check(&l); err != nil {
		return 0, err
	}
	var pid any
	if l.Scope == Project {
		pid = l.ProjectID
	}
	now := sqldb.Nanos(s.db.Now())
	var id int64
	err := s.db.Tx(ctx, "create label", func(tx *sqldb.Tx) error {
		err := tx.QueryRow(ctx, `INSERT INTO labels (name, description, color, scope, project_id, owner, created, updated) VALUES (?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`,
			l.Name, l.Description, l.Color, l.Scope, pid, l.ProjectID, now, now).Scan(&id)
		if sqldb.IsUniqueViolation(err) {
			return errdefs.Conflict(fmt.Errorf("label %s already exists", l.Name))
		}
		if err != nil {
			return err
		}
		return s.audit.Record(ctx, tx, audit.Event{ProjectID: l.ProjectID, Operation: "create", ResourceType: "label", Resource: l.Name})
	})
	return id, err
}

// Get returns a label.
func (s *Service) Get(ctx context.Context, who access.Subject, id int64) (Label, error) {
	l, err := s.get(ctx, id)
	if err != nil {
		return Label{}, err
	}
	return l, s.require(ctx, who, l.Scope, l.ProjectID, access.Read)
}

// Fields are the keys a label listing may filter and sort by.
var Fields = query.Fields{
	"id":            {Column: "id", Kind: query.Int},
	"name":          {Column: "name"},
	"creation_time": {Column: "created", Kind: query.Time},
	"update_time":   {Column: "updated", Kind: query.Time},
}

// List lists the global labels (anyone may), or a project's (who may list
// them there), optionally those whose name holds name.
func (s *Service) List(ctx context.Context, who access.Subject, scope string, projectID int64, name string, q query.Query, page query.Page) ([]Label, int64, error) {
	if scope == "" {
		scope = Global
	}
	where, args := "scope = ? AND owner = 0", []any{Global}
	switch scope {
	case Global:
	case Project:
		if projectID <= 0 {
			return nil, 0, errdefs.InvalidArgument(errors.New("must with project ID when to query project labels"))
		}
		if err := s.require(ctx, who, Project, projectID, access.List); err != nil {
			return nil, 0, err
		}
		where, args = "scope = ? AND owner = ?", []any{Project, projectID}
	default:
		return nil, 0, errdefs.InvalidArgument(fmt.Errorf("invalid scope: %.16s", scope))
	}
	if name != "" {
		q = q.WithFuzzy("name", name)
	}
	c, err := q.SQL(s.db.Dialect(), Fields, "name ASC", "id")
	if err != nil {
		return nil, 0, err
	}
	w := c.WhereSQL(where)
	args = append(args, c.Args...)
	var total int64
	if err := s.db.QueryRow(ctx, `SELECT COUNT(*) FROM labels`+w, args...).Scan(&total); err != nil {
		return nil, 0, s.db.Wrap("labels", err)
	}
	out, err := s.query(ctx, `SELECT `+cols+` FROM labels`+w+` ORDER BY `+c.OrderBy+page.LimitSQL(), args...)
	return out, total, err
}

func (s *Service) query(ctx context.Context, stmt string, args ...any) ([]Label, error) {
	rows, err := s.db.Query(ctx, stmt, args...)
	if err != nil {
		return nil, s.db.Wrap("labels", err)
	}
	defer rows.Close()
	out := []Label{}
	for rows.Next() {
		l, err := scan(rows)
		if err != nil {
			return nil, s.db.Wrap("labels", err)
		}
		out = append(out, l)
	}
	return out, s.db.Wrap("labels", rows.Err())
}

// Update changes a label's name, description and color.
func (s *Service) Update(ctx context.Context, who access.Subject, id int64, u Label) error {
	l, err := s.get(ctx, id)
	if err != nil {
		return err
	}
	if err := s.require(ctx, who, l.Scope, l.ProjectID, access.Update); err != nil {
		return err
	}
	l.Name, l.Description, l.Color = u.Name, u.Description, u.Color
	if err := check(&l); err != nil {
		return err
	}
	return s.db.Tx(ctx, "update label", func(tx *sqldb.Tx) error {
		_, err := tx.Exec(ctx, `UPDATE labels SET name = ?, description = ?, color = ?, updated = ? WHERE id = ?`, l.Name, l.Description, l.Color, sqldb.Nanos(s.db.Now()), id)
		if sqldb.IsUniqueViolation(err) {
			return errdefs.Conflict(fmt.Errorf("label %s already exists", l.Name))
		}
		if err != nil {
			return err
		}
		return s.audit.Record(ctx, tx, audit.Event{ProjectID: l.ProjectID, Operation: "update", ResourceType: "label", Resource: l.Name})
	})
}

// Delete removes a label from every artifact and deletes it.
func (s *Service) Delete(ctx context.Context, who access.Subject, id int64) error {
	l, err := s.get(ctx, id)
	if err != nil {
		return err
	}
	if err := s.require(ctx, who, l.Scope, l.ProjectID, access.Delete); err != nil {
		return err
	}
	return s.db.Tx(ctx, "delete label", func(tx *sqldb.Tx) error {
		if _, err := tx.Exec(ctx, `DELETE FROM label_refs WHERE label_id = ?`, id); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `DELETE FROM labels WHERE id = ?`, id); err != nil {
			return err
		}
		return s.audit.Record(ctx, tx, audit.Event{ProjectID: l.ProjectID, Operation: "delete", ResourceType: "label", Resource: l.Name})
	})
}

// target authorizes an artifact label change and finds the artifact.
func (s *Service) target(ctx context.Context, who access.Subject, ref project.Ref, repo, reference string, a access.Action) (access.ProjectInfo, artifact.Artifact, error) {
	p, err := s.projects.Authorize(ctx, who, ref, a, access.ArtifactLabel)
	if err != nil {
		return p, artifact.Artifact{}, err
	}
	art, err := s.artifacts.Artifact(ctx, lookup, project.Ref{ID: p.ID}, repo, reference)
	return p, art, err
}

// Attach puts a label on an artifact: a global label, or one of the
// artifact's project.
func (s *Service) Attach(ctx context.Context, who access.Subject, ref project.Ref, repo, reference string, labelID int64) error {
	p, art, err := s.target(ctx, who, ref, repo, reference, access.Create)
	if err != nil {
		return err
	}
	l, err := s.get(ctx, labelID)
	if errdefs.IsNotFound(err) {
		return errdefs.NotFound(fmt.Errorf("label %d not found", labelID))
	}
	if err != nil {
		return err
	}
	if l.Scope == Project && l.ProjectID != p.ID {
		return errdefs.InvalidArgument(fmt.Errorf("label %s belongs to another project; only global labels and project %s's may go on its artifacts", l.Name, p.Name))
	}
	return s.db.Tx(ctx, "attach label", func(tx *sqldb.Tx) error {
		_, err := tx.Exec(ctx, `INSERT INTO label_refs (label_id, artifact_id, created) VALUES (?, ?, ?)`, l.ID, art.ID, sqldb.Nanos(s.db.Now()))
		if sqldb.IsUniqueViolation(err) {
			return errdefs.Conflict(fmt.Errorf("label %s is already on %s@%s", l.Name, art.RepositoryName, art.Digest))
		}
		if err != nil {
			return err
		}
		return s.audit.Record(ctx, tx, audit.Event{ProjectID: p.ID, Operation: "create", ResourceType: "artifact_label", Resource: art.RepositoryName + "@" + art.Digest + ":" + l.Name})
	})
}

// Detach takes a label off an artifact.
func (s *Service) Detach(ctx context.Context, who access.Subject, ref project.Ref, repo, reference string, labelID int64) error {
	p, art, err := s.target(ctx, who, ref, repo, reference, access.Delete)
	if err != nil {
		return err
	}
	return s.db.Tx(ctx, "detach label", func(tx *sqldb.Tx) error {
		res, err := tx.Exec(ctx, `DELETE FROM label_refs WHERE label_id = ? AND artifact_id = ?`, labelID, art.ID)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return errdefs.NotFound(fmt.Errorf("label %d is not on %s@%s", labelID, art.RepositoryName, art.Digest))
		}
		return s.audit.Record(ctx, tx, audit.Event{ProjectID: p.ID, Operation: "delete", ResourceType: "artifact_label", Resource: fmt.Sprintf("%s@%s:%d", art.RepositoryName, art.Digest, labelID)})
	})
}

// Of returns the labels of artifacts, by artifact id, in one query.
func (s *Service) Of(ctx context.Context, artifacts []int64) (map[int64][]Label, error) {
	out := map[int64][]Label{}
	if len(artifacts) == 0 {
		return out, nil
	}
	args := make([]any, len(artifacts))
	for i, id := range artifacts {
		args[i] = id
	}
	rows, err := s.db.Query(ctx, `SELECT r.artifact_id, l.id, l.name, l.description, l.color, l.scope, COALESCE(l.project_id, 0), l.created, l.updated
		FROM label_refs r JOIN labels l ON l.id = r.label_id WHERE r.artifact_id IN (`+marks(len(args))+`) ORDER BY r.artifact_id, l.name`, args...)
	if err != nil {
		return nil, s.db.Wrap("artifact labels", err)
	}
	defer rows.Close()
	for rows.Next() {
		var a int64
		var l Label
		var created, updated int64
		if err := rows.Scan(&a, &l.ID, &l.Name, &l.Description, &l.Color, &l.Scope, &l.ProjectID, &created, &updated); err != nil {
			return nil, s.db.Wrap("artifact labels", err)
		}
		l.Created, l.Updated = sqldb.Time(created), sqldb.Time(updated)
		out[a] = append(out[a], l)
	}
	return out, s.db.Wrap("artifact labels", rows.Err())
}

func marks(n int) string { return strings.TrimSuffix(strings.Repeat("?, ", n), ", ") }
