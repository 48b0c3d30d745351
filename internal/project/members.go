package project

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/lading-dev/lading/internal/access"
	"github.com/lading-dev/lading/internal/audit"
	"github.com/lading-dev/lading/internal/errdefs"
	"github.com/lading-dev/lading/internal/identity"
	"github.com/lading-dev/lading/internal/query"
	"github.com/lading-dev/lading/internal/sqldb"
)

// Member is a user or a group in a project's role.
type Member struct {
	ID         int64
	ProjectID  int64
	EntityID   int64
	EntityName string
	// EntityType is "u" for a user, "g" for a group.
	EntityType string
	Role       access.Role
}

// MemberCreate names the user (by id or name) or the group (by id, by
// name and type, or by LDAP DN) to add, and its role.
type MemberCreate struct {
	Role        access.Role
	UserID      int64
	Username    string
	GroupID     int64
	GroupName   string
	GroupType   int
	LdapGroupDN string
}

const memberSelect = `SELECT m.id, m.project_id, COALESCE(m.user_id, m.group_id),
	CASE WHEN m.user_id IS NOT NULL THEN u.username ELSE g.name END,
	CASE WHEN m.user_id IS NOT NULL THEN 'u' ELSE 'g' END, m.role
	FROM members m LEFT JOIN users u ON u.id = m.user_id LEFT JOIN usergroups g ON g.id = m.group_id`

func scanMember(r sqldb.Row) (Member, error) {
	var m Member
	var role int
	err := r.Scan(&m.ID, &m.ProjectID, &m.EntityID, &m.EntityName, &m.EntityType, &role)
	m.Role = access.Role(role)
	return m, err
}

// Members lists a project's members, filtered by a part of their name.
func (s *Service) Members(ctx context.Context, who access.Subject, ref Ref, entityName string, page query.Page) ([]Member, int64, error) {
	p, err := s.Authorize(ctx, who, ref, access.List, access.Member)
	if err != nil {
		return nil, 0, err
	}
	where := ` WHERE m.project_id = ?`
	args := []any{p.ID}
	if entityName != "" {
		q := query.Query{}.WithFuzzy("name", entityName)
		c, err := q.SQL(s.db.Dialect(), query.Fields{"name": {Column: "COALESCE(u.username, g.name)"}}, "", "")
		if err != nil {
			return nil, 0, err
		}
		where += " AND " + c.Where
		args = append(args, c.Args...)
	}
	from := ` FROM members m LEFT JOIN users u ON u.id = m.user_id LEFT JOIN usergroups g ON g.id = m.group_id`
	var total int64
	if err := s.db.QueryRow(ctx, `SELECT COUNT(*)`+from+where, args...).Scan(&total); err != nil {
		return nil, 0, s.db.Wrap("members", err)
	}
	rows, err := s.db.Query(ctx, memberSelect+where+` ORDER BY m.id`+page.LimitSQL(), args...)
	if err != nil {
		return nil, 0, s.db.Wrap("members", err)
	}
	defer rows.Close()
	out := []Member{}
	for rows.Next() {
		m, err := scanMember(rows)
		if err != nil {
			return nil, 0, s.db.Wrap("members", err)
		}
		out = append(out, m)
	}
	return out, total, s.db.Wrap("members", rows.Err())
}

// member returns a member of project p; a member of another project is
// not found.
func (s *Service) member(ctx context.Context, p int64, id int64) (Member, error) {
	m, err := scanMember(s.db.QueryRow(ctx, memberSelect+` WHERE m.id = ? AND m.project_id = ?`, id, p))
	if errors.Is(err, sql.ErrNoRows) {
		return Member{}, errdefs.NotFound(fmt.Errorf("project member %d not found", id))
	}
	return m, s.db.Wrap("member", err)
}

// Member returns one member.
func (s *Service) Member(ctx context.Context, who access.Subject, ref Ref, id int64) (Member, error) {
	p, err := s.Authorize(ctx, who, ref, access.Read, access.Member)
	if err != nil {
		return Member{}, err
	}
	return s.member(ctx, p.ID, id)
}

// AddMember adds a user or a group to a project in a role.
func (s *Service) AddMember(ctx context.Context, who access.Subject, ref Ref, c MemberCreate) (Member, error) {
	p, err := s.Authorize(ctx, who, ref, access.Create, access.Member)
	if err != nil {
		return Member{}, err
	}
	if !c.Role.Valid() {
		return Member{}, errdefs.InvalidArgument(fmt.Errorf("role id %d: want 1 (projectAdmin), 2 (developer), 3 (guest), 4 (maintainer) or 5 (limitedGuest)", c.Role))
	}
	userID, groupID, name, err := s.entity(ctx, c)
	if err != nil {
		return Member{}, err
	}
	var id int64
	err = s.db.Tx(ctx, "add member", func(tx *sqldb.Tx) error {
		var n int
		if err := tx.QueryRow(ctx, `SELECT COUNT(*) FROM members WHERE project_id = ? AND (user_id = ? OR group_id = ?)`, p.ID, userID, groupID).Scan(&n); err != nil {
			return err
		}
		if n > 0 {
			return errdefs.Conflict(fmt.Errorf("%s is already a member of project %s", name, p.Name))
		}
		now := sqldb.Nanos(s.db.Now())
		if err := tx.QueryRow(ctx, `INSERT INTO members (project_id, user_id, group_id, role, created, updated) VALUES (?, ?, ?, ?, ?, ?) RETURNING id`,
			p.ID, nullID(userID), nullID(groupID), int(c.Role), now, now).Scan(&id); err != nil {
			return err
		}
		return s.audit.Record(ctx, tx, audit.Event{ProjectID: p.ID, Operation: "create", ResourceType: "member", Resource: name,
			Description: fmt.Sprintf("add %s to project %s as %s", name, p.Name, c.Role.Name())})
	})
	if err != nil {
		return Member{}, err
	}
	return s.member(ctx, p.ID, id)
}

func nullID(id int64) any {
	if id == 0 {
		return nil
	}
	return id
}

// entity resolves the user or group of a new member.
func (s *Service) entity(ctx context.Context, c MemberCreate) (userID, groupID int64, name string, err error) {
	switch {
	case c.UserID > 0:
		u, err := s.identity.UserByID(ctx, c.UserID)
		return u.ID, 0, u.Username, err
	case c.Username != "":
		u, err := s.identity.UserOrOnboard(ctx, c.Username)
		return u.ID, 0, u.Username, err
	case c.GroupID > 0:
		err = s.db.QueryRow(ctx, `SELECT id, name FROM usergroups WHERE id = ?`, c.GroupID).Scan(&groupID, &name)
	case c.LdapGroupDN != "":
		// Onboarded from the directory the first time, as in Harbor.
		g, err := s.identity.EnsureGroup(ctx, identity.GroupLDAP, c.LdapGroupDN)
		return 0, g.ID, g.Name, err
	case c.GroupName != "":
		g, err := s.identity.EnsureGroup(ctx, c.GroupType, c.GroupName)
		return 0, g.ID, g.Name, err
	default:
		return 0, 0, "", errdefs.InvalidArgument(errors.New("a member needs member_user or member_group"))
	}
	if errors.Is(err, sql.ErrNoRows) {
		return 0, 0, "", errdefs.NotFound(errors.New("user group not found"))
	}
	return 0, groupID, name, s.db.Wrap("group", err)
}

// SetMemberRole changes a member's role.
func (s *Service) SetMemberRole(ctx context.Context, who access.Subject, ref Ref, id int64, role access.Role) error {
	p, err := s.Authorize(ctx, who, ref, access.Update, access.Member)
	if err != nil {
		return err
	}
	if !role.Valid() {
		return errdefs.InvalidArgument(fmt.Errorf("role id %d: want 1 to 5", role))
	}
	m, err := s.member(ctx, p.ID, id)
	if err != nil {
		return err
	}
	return s.db.Tx(ctx, "update member", func(tx *sqldb.Tx) error {
		if _, err := tx.Exec(ctx, `UPDATE members SET role = ?, updated = ? WHERE id = ? AND project_id = ?`, int(role), sqldb.Nanos(s.db.Now()), id, p.ID); err != nil {
			return err
		}
		return s.audit.Record(ctx, tx, audit.Event{ProjectID: p.ID, Operation: "update", ResourceType: "member", Resource: m.EntityName,
			Description: fmt.Sprintf("change the role of %s in project %s to %s", m.EntityName, p.Name, role.Name())})
	})
}

// RemoveMember removes a member.
func (s *Service) RemoveMember(ctx context.Context, who access.Subject, ref Ref, id int64) error {
	p, err := s.Authorize(ctx, who, ref, access.Delete, access.Member)
	if err != nil {
		return err
	}
	m, err := s.member(ctx, p.ID, id)
	if err != nil {
		return err
	}
	return s.db.Tx(ctx, "remove member", func(tx *sqldb.Tx) error {
		if _, err := tx.Exec(ctx, `DELETE FROM members WHERE id = ? AND project_id = ?`, id, p.ID); err != nil {
			return err
		}
		return s.audit.Record(ctx, tx, audit.Event{ProjectID: p.ID, Operation: "delete", ResourceType: "member", Resource: m.EntityName,
			Description: fmt.Sprintf("remove %s from project %s", m.EntityName, p.Name)})
	})
}

// Metadata returns a project's metadata (all of it, or one key).
func (s *Service) Metadata(ctx context.Context, who access.Subject, ref Ref, key string) (map[string]string, error) {
	action := access.List
	if key != "" {
		action = access.Read
	}
	p, err := s.Authorize(ctx, who, ref, action, access.Metadata)
	if err != nil {
		return nil, err
	}
	full, err := s.get(ctx, who, p.ID)
	if err != nil {
		return nil, err
	}
	if key == "" {
		return full.Metadata, nil
	}
	v, ok := full.Metadata[key]
	if !ok {
		return nil, errdefs.NotFound(fmt.Errorf("metadata %s of project %s not found", key, p.Name))
	}
	return map[string]string{key: v}, nil
}

// SetMetadata adds or changes metadata (action create or update).
func (s *Service) SetMetadata(ctx context.Context, who access.Subject, ref Ref, md map[string]string, action access.Action) error {
	p, err := s.Authorize(ctx, who, ref, action, access.Metadata)
	if err != nil {
		return err
	}
	if err := CheckMetadata(md); err != nil {
		return err
	}
	return s.db.Tx(ctx, "set metadata", func(tx *sqldb.Tx) error {
		if err := s.setMetadata(ctx, tx, p.ID, md); err != nil {
			return err
		}
		return s.audit.Record(ctx, tx, audit.Event{ProjectID: p.ID, Operation: "update", ResourceType: "project", Resource: p.Name, Description: "update project metadata: " + p.Name})
	})
}

// DeleteMetadata removes a metadata key ("public" cannot go).
func (s *Service) DeleteMetadata(ctx context.Context, who access.Subject, ref Ref, key string) error {
	p, err := s.Authorize(ctx, who, ref, access.Delete, access.Metadata)
	if err != nil {
		return err
	}
	if key == "public" {
		return errdefs.InvalidArgument(errors.New("the public metadata cannot be deleted"))
	}
	return s.db.Tx(ctx, "delete metadata", func(tx *sqldb.Tx) error {
		res, err := tx.Exec(ctx, `DELETE FROM project_metadata WHERE project_id = ? AND name = ?`, p.ID, key)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return errdefs.NotFound(fmt.Errorf("metadata %s of project %s not found", key, p.Name))
		}
		return s.audit.Record(ctx, tx, audit.Event{ProjectID: p.ID, Operation: "update", ResourceType: "project", Resource: p.Name, Description: "delete project metadata " + key})
	})
}
