package project

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/lading-dev/lading/internal/access"
	"github.com/lading-dev/lading/internal/audit"
	"github.com/lading-dev/lading/internal/errdefs"
	"github.com/lading-dev/lading/internal/identity"
	"github.com/lading-dev/lading/internal/query"
	"github.com/lading-dev/lading/internal/sqldb"
)

// Ref names a project by id or by name.
type Ref struct {
	ID   int64
	Name string
}

func (r Ref) String() string {
	if r.Name != "" {
		return r.Name
	}
	return strconv.FormatInt(r.ID, 10)
}

// ParseRef reads Harbor's project_name_or_id: a name when isName (the
// X-Is-Resource-Name header) or when it is not a number.
func ParseRef(s string, isName bool) Ref {
	if !isName {
		if id, err := strconv.ParseInt(s, 10, 64); err == nil {
			return Ref{ID: id}
		}
	}
	return Ref{Name: s}
}

// Harbor's project name rule.
var nameRe = regexp.MustCompile(`^[a-z0-9]+(?:[._-][a-z0-9]+)*$`)

// CheckName applies Harbor's project name rule: 1 to 255 lower-case
// letters and digits, with single '.', '_' or '-' between them.
func CheckName(name string) error {
	if len(name) < 1 || len(name) > 255 {
		return errdefs.InvalidArgument(fmt.Errorf("project name %.40q is illegal in length (1 to 255)", name))
	}
	if !nameRe.MatchString(name) {
		return errdefs.InvalidArgument(errors.New("project name is not in lower case or contains illegal characters"))
	}
	return nil
}

// Resolve finds a project without permission checks.
func (s *Service) Resolve(ctx context.Context, ref Ref) (access.ProjectInfo, error) {
	if ref.Name != "" {
		return s.store.ProjectByName(ctx, ref.Name)
	}
	return s.store.ProjectInfo(ctx, ref.ID)
}

// Authorize resolves ref and checks that who may do a on r in it, as
// Harbor's RequireProjectAccess: a project that does not exist is "not
// found" to sysadmins and "denied" (or "unauthorized") to everyone else,
// so guessing names and ids learns nothing.
func (s *Service) Authorize(ctx context.Context, who access.Subject, ref Ref, a access.Action, r access.Resource) (access.ProjectInfo, error) {
	p, err := s.Resolve(ctx, ref)
	if errdefs.IsNotFound(err) {
		if who.SysAdmin && who.Kind == access.KindUser {
			return p, errdefs.NotFound(fmt.Errorf("project %s not found", ref))
		}
		return p, access.Refuse(who, a, r)
	}
	if err != nil {
		return p, err
	}
	return p, s.access.Require(ctx, who, a, r, p.ID)
}

// Create is what creating a project takes.
type Create struct {
	Name string
	// Public, or Metadata["public"], makes the project public.
	Public   *bool
	Metadata map[string]string
	// StorageLimit in bytes (-1: unlimited); only sysadmins choose it,
	// others get storage_per_project.
	StorageLimit *int64
	// RegistryID makes the project a proxy cache of that registry
	// endpoint; only system administrators create those.
	RegistryID int64
}

// metadataKeys are the project metadata Harbor knows, with their checks.
var metadataKeys = map[string]func(string) error{
	"public":                      boolString,
	"enable_content_trust":        boolString,
	"enable_content_trust_cosign": boolString,
	"prevent_vul":                 boolString,
	"auto_scan":                   boolString,
	"auto_sbom_generation":        boolString,
	"reuse_sys_cve_allowlist":     boolString,
	"severity": func(v string) error {
		if !slices.Contains([]string{"none", "low", "medium", "high", "critical"}, strings.ToLower(v)) {
			return fmt.Errorf("severity %q is not none, low, medium, high or critical", v)
		}
		return nil
	},
	"retention_id": func(string) error { return nil },
	"proxy_speed_kb": func(v string) error {
		if _, err := strconv.ParseInt(v, 10, 32); err != nil {
			return fmt.Errorf("should by an int32, but got: '%.20s'", v)
		}
		return nil
	},
}

func boolString(v string) error {
	if v != "true" && v != "false" {
		return fmt.Errorf("should only be 'true' or 'false', but got: '%s'", v)
	}
	return nil
}

// CheckMetadata validates project metadata.
func CheckMetadata(md map[string]string) error {
	for k, v := range md {
		check, ok := metadataKeys[k]
		if !ok {
			return errdefs.InvalidArgument(fmt.Errorf("invalid metadata key %q", k))
		}
		if err := check(v); err != nil {
			return errdefs.InvalidArgument(fmt.Errorf("metadata.%s: %w", k, err))
		}
	}
	return nil
}

// canCreate checks who may create a project under the creation
// restriction: any authenticated user (everyone) or only sysadmins
// (adminonly); robots need the system permission project:create and a
// system-level account.
func (s *Service) canCreate(ctx context.Context, who access.Subject) (admin bool, err error) {
	if !who.Authenticated() {
		return false, access.Refuse(who, access.Create, access.Project)
	}
	admin, err = s.access.Can(ctx, who, access.Create, access.Project, 0)
	if err != nil {
		return false, err
	}
	if who.Kind == access.KindRobot && (who.Robot == nil || who.Robot.Level != access.LevelSystem || !admin) {
		return false, errdefs.Denied(errors.New("only system level robots with the project create permission can create projects"))
	}
	st, err := s.settings.Get(ctx)
	if err != nil {
		return false, err
	}
	if st.ProjectCreationRestriction == "adminonly" && !admin {
		return false, errdefs.Denied(errors.New("only system admin can create project"))
	}
	return admin, nil
}

// Create creates a project; its creator becomes its project admin (a
// robot's projects are owned by the first administrator).
func (s *Service) Create(ctx context.Context, who access.Subject, c Create) (Project, error) {
	admin, err := s.canCreate(ctx, who)
	if err != nil {
		return Project{}, err
	}
	if err := CheckName(c.Name); err != nil {
		return Project{}, err
	}
	if c.RegistryID < 0 {
		return Project{}, errdefs.InvalidArgument(fmt.Errorf("%d is invalid value of registry_id, it should be geater than 0", c.RegistryID))
	}
	if c.RegistryID > 0 && (!admin || s.upstreams == nil) {
		if !admin {
			return Project{}, errdefs.Denied(errors.New("Only system admin can create proxy cache project"))
		}
		return Project{}, errdefs.Unsupported(errors.New("proxy cache projects are not available"))
	}
	md := maps.Clone(c.Metadata)
	if md == nil {
		md = map[string]string{}
	}
	if c.Public != nil && md["public"] == "" {
		md["public"] = strconv.FormatBool(*c.Public)
	}
	if md["public"] == "" {
		md["public"] = "false"
	}
	delete(md, "retention_id")
	if c.RegistryID == 0 {
		delete(md, "proxy_speed_kb")
	}
	if err := CheckMetadata(md); err != nil {
		return Project{}, err
	}
	st, err := s.settings.Get(ctx)
	if err != nil {
		return Project{}, err
	}
	limit := st.StoragePerProject
	if c.StorageLimit != nil && *c.StorageLimit != 0 && admin {
		limit = *c.StorageLimit
	}
	if err := checkLimit(limit); err != nil {
		return Project{}, err
	}
	owner := who.ID
	if who.Kind != access.KindUser {
		owner = identity.AdminID
	}
	var id int64
	err = s.db.Tx(ctx, "create project "+c.Name, func(tx *sqldb.Tx) error {
		var err error
		if c.RegistryID > 0 {
			if err := s.upstreams.RegistryExists(ctx, tx, c.RegistryID); err != nil {
				return err
			}
		}
		id, err = s.insert(ctx, tx, c.Name, owner, md, limit)
		if err != nil {
			return err
		}
		if c.RegistryID > 0 {
			if _, err := tx.Exec(ctx, `UPDATE projects SET registry_id = ? WHERE id = ?`, c.RegistryID, id); err != nil {
				return err
			}
		}
		return s.audit.Record(ctx, tx, audit.Event{ProjectID: id, Operation: "create", ResourceType: "project", Resource: c.Name})
	})
	if err != nil {
		return Project{}, err
	}
	return s.get(ctx, who, id)
}

// insert creates the project row, its metadata, its owner's membership
// and its quota.
func (s *Service) insert(ctx context.Context, tx *sqldb.Tx, name string, owner int64, md map[string]string, limit int64) (int64, error) {
	var n int
	if err := tx.QueryRow(ctx, `SELECT COUNT(*) FROM projects WHERE name = ?`, name).Scan(&n); err != nil {
		return 0, err
	}
	if n > 0 {
		return 0, errdefs.Conflict(fmt.Errorf("the project named %s already exists", name))
	}
	now := sqldb.Nanos(s.db.Now())
	var id int64
	if err := tx.QueryRow(ctx, `INSERT INTO projects (name, owner_id, public, created, updated) VALUES (?, ?, ?, ?, ?) RETURNING id`,
		name, owner, md["public"] == "true", now, now).Scan(&id); err != nil {
		return 0, err
	}
	for _, k := range slices.Sorted(maps.Keys(md)) {
		if k == "public" {
			continue
		}
		if _, err := tx.Exec(ctx, `INSERT INTO project_metadata (project_id, name, value) VALUES (?, ?, ?)`, id, k, md[k]); err != nil {
			return 0, err
		}
	}
	if _, err := tx.Exec(ctx, `INSERT INTO members (project_id, user_id, role, created, updated) VALUES (?, ?, ?, ?, ?)`, id, owner, int(access.ProjectAdmin), now, now); err != nil {
		return 0, err
	}
	if _, err := tx.Exec(ctx, `INSERT INTO quotas (project_id, hard, used, created, updated) VALUES (?, ?, 0, ?, ?)`, id, limit, now, now); err != nil {
		return 0, err
	}
	return id, nil
}

// Bootstrap creates the public project "library" on first start (no
// project yet), owned by the first administrator.
func (s *Service) Bootstrap(ctx context.Context) error {
	st, err := s.settings.Get(ctx)
	if err != nil {
		return err
	}
	return s.db.Tx(ctx, "create library", func(tx *sqldb.Tx) error {
		var n int
		if err := tx.QueryRow(ctx, `SELECT COUNT(*) FROM projects`).Scan(&n); err != nil || n > 0 {
			return err
		}
		_, err := s.insert(ctx, tx, "library", identity.AdminID, map[string]string{"public": "true"}, st.StoragePerProject)
		return err
	})
}

// Get returns a project the subject may read.
func (s *Service) Get(ctx context.Context, who access.Subject, ref Ref) (Project, error) {
	p, err := s.Authorize(ctx, who, ref, access.Read, access.Self)
	if err != nil {
		return Project{}, err
	}
	return s.get(ctx, who, p.ID)
}

// Exists reports, to any authenticated subject, whether a project of that
// name exists (Harbor's HEAD /projects).
func (s *Service) Exists(ctx context.Context, who access.Subject, name string) error {
	if !who.Authenticated() {
		return access.Refuse(who, access.Read, access.Project)
	}
	_, err := s.store.ProjectByName(ctx, name)
	return err
}

const projectCols = `p.id, p.name, COALESCE(p.owner_id, 0), COALESCE(u.username, ''), p.public, p.created, p.updated, p.registry_id`

func (s *Service) get(ctx context.Context, who access.Subject, id int64) (Project, error) {
	list, err := s.scan(ctx, who, `SELECT `+projectCols+` FROM projects p LEFT JOIN users u ON u.id = p.owner_id WHERE p.id = ?`, id)
	if err != nil {
		return Project{}, err
	}
	if len(list) == 0 {
		return Project{}, errdefs.NotFound(fmt.Errorf("project %d not found", id))
	}
	return list[0], nil
}

// scan reads projects and fills their metadata, repository counts and the
// subject's roles.
func (s *Service) scan(ctx context.Context, who access.Subject, stmt string, args ...any) ([]Project, error) {
	rows, err := s.db.Query(ctx, stmt, args...)
	if err != nil {
		return nil, s.db.Wrap("projects", err)
	}
	out := []Project{}
	byID := map[int64]int{}
	for rows.Next() {
		var p Project
		var created, updated int64
		if err := rows.Scan(&p.ID, &p.Name, &p.OwnerID, &p.OwnerName, &p.Public, &created, &updated, &p.RegistryID); err != nil {
			rows.Close()
			return nil, s.db.Wrap("projects", err)
		}
		p.Created, p.Updated = sqldb.Time(created), sqldb.Time(updated)
		p.Metadata = map[string]string{"public": strconv.FormatBool(p.Public)}
		byID[p.ID] = len(out)
		out = append(out, p)
	}
	rows.Close()
	if err := rows.Err(); err != nil || len(out) == 0 {
		return out, s.db.Wrap("projects", err)
	}
	ids := make([]any, 0, len(out))
	for _, p := range out {
		ids = append(ids, p.ID)
	}
	in := "(" + strings.TrimSuffix(strings.Repeat("?, ", len(ids)), ", ") + ")"
	if err := s.each(ctx, `SELECT project_id, name, value FROM project_metadata WHERE project_id IN `+in, ids, func(r *sql.Rows) error {
		var id int64
		var k, v string
		if err := r.Scan(&id, &k, &v); err != nil {
			return err
		}
		out[byID[id]].Metadata[k] = v
		return nil
	}); err != nil {
		return nil, err
	}
	if who.Kind == access.KindUser {
		cond, margs := memberWhere(who.ID, who.Groups)
		if err := s.each(ctx, `SELECT project_id, role FROM members WHERE project_id IN `+in+` AND `+cond+` ORDER BY role`, append(ids, margs...), func(r *sql.Rows) error {
			var id int64
			var role int
			if err := r.Scan(&id, &role); err != nil {
				return err
			}
			out[byID[id]].Roles = append(out[byID[id]].Roles, access.Role(role))
			return nil
		}); err != nil {
			return nil, err
		}
	}
	if s.contents != nil {
		pids := make([]int64, len(out))
		for i, p := range out {
			pids[i] = p.ID
		}
		counts, err := s.contents.RepositoryCounts(ctx, pids)
		if err != nil {
			return nil, err
		}
		for i := range out {
			out[i].RepoCount = counts[out[i].ID]
		}
	}
	return out, nil
}

func (s *Service) each(ctx context.Context, stmt string, args []any, fn func(*sql.Rows) error) error {
	rows, err := s.db.Query(ctx, stmt, args...)
	if err != nil {
		return s.db.Wrap("projects", err)
	}
	defer rows.Close()
	for rows.Next() {
		if err := fn(rows); err != nil {
			return s.db.Wrap("projects", err)
		}
	}
	return s.db.Wrap("projects", rows.Err())
}

// Fields are the keys a project listing may filter and sort by.
var Fields = query.Fields{
	"project_id":    {Column: "p.id", Kind: query.Int},
	"name":          {Column: "p.name"},
	"public":        {Column: "p.public", Kind: query.Bool},
	"owner":         {Column: "u.username"},
	"creation_time": {Column: "p.created", Kind: query.Time},
	"update_time":   {Column: "p.updated", Kind: query.Time},
}

// List lists the projects the subject may see: everything for sysadmins
// (and robots over every project), public projects and those where they
// are members for users, public ones and those their permissions name for
// robots, public ones for anonymous callers.
func (s *Service) List(ctx context.Context, who access.Subject, q query.Query, page query.Page) ([]Project, int64, error) {
	scope, scopeArgs, err := s.visible(ctx, who, q)
	if err != nil {
		return nil, 0, err
	}
	c, err := q.SQL(s.db.Dialect(), Fields, "p.name ASC", "p.id")
	if err != nil {
		return nil, 0, err
	}
	where := c.WhereSQL(scope)
	args := append(scopeArgs, c.Args...)
	from := ` FROM projects p LEFT JOIN users u ON u.id = p.owner_id`
	var total int64
	if err := s.db.QueryRow(ctx, `SELECT COUNT(*)`+from+where, args...).Scan(&total); err != nil {
		return nil, 0, s.db.Wrap("projects", err)
	}
	if total == 0 {
		return []Project{}, 0, nil
	}
	list, err := s.scan(ctx, who, `SELECT `+projectCols+from+where+` ORDER BY `+c.OrderBy+page.LimitSQL(), args...)
	return list, total, err
}

// VisibleSQL is a condition on a column holding project ids: the projects
// the subject may see, as List shows them. Other services use it to list
// what lives in those projects.
func (s *Service) VisibleSQL(ctx context.Context, who access.Subject, column string) (string, []any, error) {
	cond, args, err := s.visible(ctx, who, query.Query{})
	if err != nil || cond == "" {
		return "", nil, err
	}
	return column + " IN (SELECT p.id FROM projects p WHERE " + cond + ")", args, nil
}

// visible is the condition for the projects who may see.
func (s *Service) visible(ctx context.Context, who access.Subject, q query.Query) (string, []any, error) {
	all, err := s.access.Can(ctx, who, access.List, access.Project, 0)
	if err != nil {
		return "", nil, err
	}
	if who.SysAdmin && who.Kind == access.KindUser {
		all = true
	}
	public := "p.public = TRUE"
	if v, ok := q.Get("public"); ok && v == "false" {
		public = "1 = 0"
	}
	switch {
	case all:
		return "", nil, nil
	case who.Kind == access.KindUser:
		cond, args := memberWhere(who.ID, who.Groups)
		return "(" + public + " OR p.id IN (SELECT project_id FROM members WHERE " + cond + "))", args, nil
	case who.Kind == access.KindRobot && who.Robot != nil:
		var names []any
		for _, p := range who.Robot.Permissions {
			if p.Kind != access.LevelProject {
				continue
			}
			if p.Namespace == "*" {
				return "", nil, nil
			}
			names = append(names, p.Namespace)
		}
		if who.Robot.Level == access.LevelProject {
			if len(names) == 0 {
				return public, nil, nil
			}
			return "(" + public + " OR p.id = ?)", []any{who.Robot.ProjectID}, nil
		}
		if len(names) == 0 {
			return public, nil, nil
		}
		return "(" + public + " OR p.name IN (" + strings.TrimSuffix(strings.Repeat("?, ", len(names)), ", ") + "))", names, nil
	}
	return public, nil, nil
}

// Update is what updating a project takes.
type Update struct {
	Public   *bool
	Metadata map[string]string
}

// Update changes a project's visibility and metadata.
func (s *Service) Update(ctx context.Context, who access.Subject, ref Ref, u Update) error {
	p, err := s.Authorize(ctx, who, ref, access.Update, access.Self)
	if err != nil {
		return err
	}
	md := maps.Clone(u.Metadata)
	if md == nil {
		md = map[string]string{}
	}
	if u.Public != nil && md["public"] == "" {
		md["public"] = strconv.FormatBool(*u.Public)
	}
	delete(md, "retention_id")
	if err := CheckMetadata(md); err != nil {
		return err
	}
	return s.db.Tx(ctx, "update project "+p.Name, func(tx *sqldb.Tx) error {
		if err := s.setMetadata(ctx, tx, p.ID, md); err != nil {
			return err
		}
		return s.audit.Record(ctx, tx, audit.Event{ProjectID: p.ID, Operation: "update", ResourceType: "project", Resource: p.Name, Description: "update project: " + p.Name})
	})
}

func (s *Service) setMetadata(ctx context.Context, tx *sqldb.Tx, id int64, md map[string]string) error {
	now := sqldb.Nanos(s.db.Now())
	for _, k := range slices.Sorted(maps.Keys(md)) {
		if k == "public" {
			if _, err := tx.Exec(ctx, `UPDATE projects SET public = ?, updated = ? WHERE id = ?`, md[k] == "true", now, id); err != nil {
				return err
			}
			continue
		}
		if _, err := tx.Exec(ctx, `INSERT INTO project_metadata (project_id, name, value) VALUES (?, ?, ?)
			ON CONFLICT (project_id, name) DO UPDATE SET value = excluded.value`, id, k, md[k]); err != nil {
			return err
		}
	}
	_, err := tx.Exec(ctx, `UPDATE projects SET updated = ? WHERE id = ?`, now, id)
	return err
}

// Deletable says whether a project may be deleted, and why not.
func (s *Service) Deletable(ctx context.Context, who access.Subject, ref Ref) (bool, string, error) {
	p, err := s.Authorize(ctx, who, ref, access.Delete, access.Self)
	if err != nil {
		return false, "", err
	}
	return s.deletable(ctx, p.ID)
}

func (s *Service) deletable(ctx context.Context, id int64) (bool, string, error) {
	if s.contents == nil {
		return true, "", nil
	}
	counts, err := s.contents.RepositoryCounts(ctx, []int64{id})
	if err != nil {
		return false, "", err
	}
	if counts[id] > 0 {
		return false, "the project contains repositories, can not be deleted", nil
	}
	return true, "", nil
}

// Delete deletes a project that holds no repository (412 otherwise), with
// its members, metadata, quota and robots.
func (s *Service) Delete(ctx context.Context, who access.Subject, ref Ref) error {
	p, err := s.Authorize(ctx, who, ref, access.Delete, access.Self)
	if err != nil {
		return err
	}
	ok, msg, err := s.deletable(ctx, p.ID)
	if err != nil {
		return err
	}
	if !ok {
		return errdefs.FailedPrecondition(errors.New(msg))
	}
	err = s.db.Tx(ctx, "delete project "+p.Name, func(tx *sqldb.Tx) error {
		if err := identity.DeleteProjectRobots(ctx, tx, p.ID); err != nil {
			return err
		}
		if s.contents != nil {
			if err := s.contents.Forget(ctx, tx, p.Name); err != nil {
				return err
			}
		}
		if _, err := tx.Exec(ctx, `DELETE FROM projects WHERE id = ?`, p.ID); err != nil {
			return err
		}
		return s.audit.Record(ctx, tx, audit.Event{ProjectID: p.ID, Operation: "delete", ResourceType: "project", Resource: p.Name})
	})
	if err != nil && isForeignKey(err) {
		// A repository appeared meanwhile: the view's rows hold the
		// project.
		return errdefs.FailedPrecondition(errors.New("the project contains repositories, can not be deleted"))
	}
	return err
}

func isForeignKey(err error) bool {
	s := err.Error()
	return strings.Contains(s, "FOREIGN KEY constraint failed") || strings.Contains(s, "SQLSTATE 23503") || strings.Contains(s, "violates foreign key")
}

// Summary is a project's summary.
type Summary struct {
	RepoCount                                                     int64
	ProjectAdmins, Maintainers, Developers, Guests, LimitedGuests int64
	// Members is false when the subject may not list members.
	Members bool
	// Quota is nil when the subject may not read it.
	Quota *Quota
}

// Summary returns a project's repository count, and, to those allowed,
// its member counts and quota.
func (s *Service) Summary(ctx context.Context, who access.Subject, ref Ref) (Summary, error) {
	p, err := s.Authorize(ctx, who, ref, access.Read, access.Self)
	if err != nil {
		return Summary{}, err
	}
	var sum Summary
	if s.contents != nil {
		counts, err := s.contents.RepositoryCounts(ctx, []int64{p.ID})
		if err != nil {
			return Summary{}, err
		}
		sum.RepoCount = counts[p.ID]
	}
	if ok, err := s.access.Can(ctx, who, access.List, access.Member, p.ID); err != nil {
		return Summary{}, err
	} else if ok {
		sum.Members = true
		err := s.each(ctx, `SELECT role, COUNT(*) FROM members WHERE project_id = ? GROUP BY role`, []any{p.ID}, func(r *sql.Rows) error {
			var role int
			var n int64
			if err := r.Scan(&role, &n); err != nil {
				return err
			}
			switch access.Role(role) {
			case access.ProjectAdmin:
				sum.ProjectAdmins = n
			case access.Maintainer:
				sum.Maintainers = n
			case access.Developer:
				sum.Developers = n
			case access.Guest:
				sum.Guests = n
			case access.LimitedGuest:
				sum.LimitedGuests = n
			}
			return nil
		})
		if err != nil {
			return Summary{}, err
		}
	}
	if ok, err := s.access.Can(ctx, who, access.Read, access.Quota, p.ID); err != nil {
		return Summary{}, err
	} else if ok {
		q, err := s.quota(ctx, p.ID)
		if err != nil {
			return Summary{}, err
		}
		sum.Quota = &q
	}
	return sum, nil
}
