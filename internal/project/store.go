package project

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/lading-dev/lading/internal/access"
	"github.com/lading-dev/lading/internal/errdefs"
	"github.com/lading-dev/lading/internal/sqldb"
)

// Store reads projects and memberships without permission checks: it is
// the access checker's Directory and identity's view of projects.
type Store struct {
	db *sqldb.DB
}

// NewStore returns the store.
func NewStore(db *sqldb.DB) *Store { return &Store{db: db} }

var _ access.Directory = (*Store)(nil)

// ProjectInfo implements access.Directory.
func (s *Store) ProjectInfo(ctx context.Context, id int64) (access.ProjectInfo, error) {
	p := access.ProjectInfo{ID: id}
	err := s.db.QueryRow(ctx, `SELECT name, public FROM projects WHERE id = ?`, id).Scan(&p.Name, &p.Public)
	if errors.Is(err, sql.ErrNoRows) {
		return p, errdefs.NotFound(fmt.Errorf("project %d not found", id))
	}
	return p, s.db.Wrap("project", err)
}

// ProjectByName implements access.Directory.
func (s *Store) ProjectByName(ctx context.Context, name string) (access.ProjectInfo, error) {
	p := access.ProjectInfo{Name: name}
	err := s.db.QueryRow(ctx, `SELECT id, public FROM projects WHERE name = ?`, name).Scan(&p.ID, &p.Public)
	if errors.Is(err, sql.ErrNoRows) {
		return p, errdefs.NotFound(fmt.Errorf("project %s not found", name))
	}
	return p, s.db.Wrap("project "+name, err)
}

// memberWhere is the condition for members of a user and their groups.
func memberWhere(userID int64, groups []int64) (string, []any) {
	cond := "user_id = ?"
	args := []any{userID}
	if len(groups) > 0 {
		cond = "(user_id = ? OR group_id IN (" + strings.TrimSuffix(strings.Repeat("?, ", len(groups)), ", ") + "))"
		for _, g := range groups {
			args = append(args, g)
		}
	}
	return cond, args
}

// MemberRoles implements access.Directory.
func (s *Store) MemberRoles(ctx context.Context, project, userID int64, groups []int64) ([]access.Role, error) {
	cond, args := memberWhere(userID, groups)
	rows, err := s.db.Query(ctx, `SELECT DISTINCT role FROM members WHERE project_id = ? AND `+cond+` ORDER BY role`, append([]any{project}, args...)...)
	if err != nil {
		return nil, s.db.Wrap("member roles", err)
	}
	defer rows.Close()
	var out []access.Role
	for rows.Next() {
		var r int
		if err := rows.Scan(&r); err != nil {
			return nil, err
		}
		out = append(out, access.Role(r))
	}
	return out, s.db.Wrap("member roles", rows.Err())
}

// MemberProjects implements access.Directory.
func (s *Store) MemberProjects(ctx context.Context, userID int64, groups []int64) (map[int64][]access.Role, error) {
	cond, args := memberWhere(userID, groups)
	rows, err := s.db.Query(ctx, `SELECT project_id, role FROM members WHERE `+cond, args...)
	if err != nil {
		return nil, s.db.Wrap("member projects", err)
	}
	defer rows.Close()
	out := map[int64][]access.Role{}
	for rows.Next() {
		var p int64
		var r int
		if err := rows.Scan(&p, &r); err != nil {
			return nil, err
		}
		out[p] = append(out[p], access.Role(r))
	}
	return out, s.db.Wrap("member projects", rows.Err())
}

// ProjectOf returns the project holding a repository ("PROJECT/REPO"), in
// tx.
func ProjectOf(ctx context.Context, tx *sqldb.Tx, repo string) (id int64, ok bool, err error) {
	name, _, found := strings.Cut(repo, "/")
	if !found {
		return 0, false, nil
	}
	err = tx.QueryRow(ctx, `SELECT id FROM projects WHERE name = ?`, name).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, false, nil
	}
	return id, err == nil, err
}

// CountByRegistry counts, in tx, the proxy-cache projects of registry id.
func (s *Service) CountByRegistry(ctx context.Context, tx *sqldb.Tx, id int64) (int64, error) {
	var n int64
	err := tx.QueryRow(ctx, `SELECT COUNT(*) FROM projects WHERE registry_id = ?`, id).Scan(&n)
	return n, err
}

// Proxy is what serving a proxy-cache project needs.
type Proxy struct {
	ProjectID  int64
	RegistryID int64
	// SpeedKB limits fetches from the upstream, in KB/s (0: none).
	SpeedKB int64
}

// ProxyOf returns the proxy settings of a project by name; RegistryID is
// 0 when the project is not a proxy cache (or does not exist).
func (s *Store) ProxyOf(ctx context.Context, name string) (Proxy, error) {
	var p Proxy
	err := s.db.QueryRow(ctx, `SELECT id, registry_id FROM projects WHERE name = ?`, name).Scan(&p.ProjectID, &p.RegistryID)
	if errors.Is(err, sql.ErrNoRows) {
		return Proxy{}, nil
	}
	if err != nil || p.RegistryID == 0 {
		return p, s.db.Wrap("project "+name, err)
	}
	var speed string
	err = s.db.QueryRow(ctx, `SELECT value FROM project_metadata WHERE project_id = ? AND name = 'proxy_speed_kb'`, p.ProjectID).Scan(&speed)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return p, s.db.Wrap("project "+name, err)
	}
	p.SpeedKB, _ = strconv.ParseInt(speed, 10, 32)
	return p, nil
}
