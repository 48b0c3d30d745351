package identity

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
	"github.com/lading-dev/lading/internal/query"
	"github.com/lading-dev/lading/internal/sqldb"
)

// Group is a user group: an LDAP group (by DN), an HTTP or OIDC group (by
// name). Groups are project members like users; a user's groups are what
// their source said at their last login (or the last LDAP group sync).
type Group struct {
	ID   int64
	Name string
	Type int
	// ExternalID is the LDAP group's DN (normalized), or the OIDC group's
	// name.
	ExternalID string
	Created    time.Time
	Updated    time.Time
}

// GroupCreate is what creating a group takes.
type GroupCreate struct {
	Name   string
	Type   int
	LdapDN string
}

const groupCols = `id, name, type, external_id, created, updated`

func scanGroup(r sqldb.Row) (Group, error) {
	var g Group
	var created, updated int64
	err := r.Scan(&g.ID, &g.Name, &g.Type, &g.ExternalID, &created, &updated)
	g.Created, g.Updated = sqldb.Time(created), sqldb.Time(updated)
	return g, err
}

// GroupFields are the keys a group listing filters by.
var GroupFields = query.Fields{
	"group_name":    {Column: "name"},
	"group_type":    {Column: "type", Kind: query.Int},
	"ldap_group_dn": {Column: "external_id"},
	"id":            {Column: "id", Kind: query.Int},
}

// ListGroups lists groups (system permission user-group list). Under
// ldap_auth only LDAP groups are listed, under http_auth only HTTP ones,
// as in Harbor.
func (s *Service) ListGroups(ctx context.Context, who access.Subject, q query.Query, page query.Page) ([]Group, int64, error) {
	if err := s.access.Require(ctx, who, access.List, access.UserGroup, 0); err != nil {
		return nil, 0, err
	}
	st, err := s.settings.Get(ctx)
	if err != nil {
		return nil, 0, err
	}
	switch st.AuthMode {
	case "ldap_auth":
		q = q.With("group_type", int64(GroupLDAP))
		if dn, ok := q.Get("ldap_group_dn"); ok {
			q = q.With("ldap_group_dn", strings.ToLower(dn))
		}
	case "http_auth":
		q = q.With("group_type", int64(GroupHTTP))
	}
	return s.listGroups(ctx, q, page)
}

// SearchGroups finds groups by a part of their name (any authenticated
// subject, to add members).
func (s *Service) SearchGroups(ctx context.Context, who access.Subject, name string, page query.Page) ([]Group, int64, error) {
	if !who.Authenticated() {
		return nil, 0, access.Refuse(who, access.List, access.UserGroup)
	}
	if name == "" {
		return nil, 0, errdefs.InvalidArgument(errors.New("need to provide groupname to search user group"))
	}
	return s.listGroups(ctx, query.Query{}.WithFuzzy("group_name", name), page)
}

func (s *Service) listGroups(ctx context.Context, q query.Query, page query.Page) ([]Group, int64, error) {
	c, err := q.SQL(s.db.Dialect(), GroupFields, "id ASC", "id")
	if err != nil {
		return nil, 0, err
	}
	var total int64
	if err := s.db.QueryRow(ctx, `SELECT COUNT(*) FROM usergroups`+c.WhereSQL(), c.Args...).Scan(&total); err != nil {
		return nil, 0, s.db.Wrap("groups", err)
	}
	rows, err := s.db.Query(ctx, `SELECT `+groupCols+` FROM usergroups`+c.WhereSQL()+` ORDER BY `+c.OrderBy+page.LimitSQL(), c.Args...)
	if err != nil {
		return nil, 0, s.db.Wrap("groups", err)
	}
	defer rows.Close()
	out := []Group{}
	for rows.Next() {
		g, err := scanGroup(rows)
		if err != nil {
			return nil, 0, s.db.Wrap("groups", err)
		}
		out = append(out, g)
	}
	return out, total, s.db.Wrap("groups", rows.Err())
}

func (s *Service) groupByID(ctx context.Context, id int64) (Group, error) {
	g, err := scanGroup(s.db.QueryRow(ctx, `SELECT `+groupCols+` FROM usergroups WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return Group{}, errdefs.NotFound(fmt.Errorf("the user group with id %d is not found", id))
	}
	return g, s.db.Wrap("group", err)
}

// GetGroup returns a group (system permission user-group read).
func (s *Service) GetGroup(ctx context.Context, who access.Subject, id int64) (Group, error) {
	if err := s.access.Require(ctx, who, access.Read, access.UserGroup, 0); err != nil {
		return Group{}, err
	}
	return s.groupByID(ctx, id)
}

func checkGroupName(name string) error {
	if strings.TrimSpace(name) == "" || len(name) > 255 || strings.ContainsFunc(name, func(r rune) bool { return r < 32 || r == 127 }) {
		return errdefs.InvalidArgument(fmt.Errorf("group name %q: want 1 to 255 printable characters", name))
	}
	return nil
}

// CreateGroup creates a group (system permission user-group create). An
// LDAP group is checked against the directory, which must have it under
// the group base; HTTP and OIDC groups are taken by name.
func (s *Service) CreateGroup(ctx context.Context, who access.Subject, c GroupCreate) (Group, error) {
	if err := s.access.Require(ctx, who, access.Create, access.UserGroup, 0); err != nil {
		return Group{}, err
	}
	if err := checkGroupName(c.Name); err != nil {
		return Group{}, err
	}
	g := ExternalGroup{Type: c.Type, ID: c.Name, Name: c.Name}
	switch c.Type {
	case GroupLDAP:
		ext, err := s.lookupGroup(ctx, GroupLDAP, c.LdapDN)
		if errdefs.IsNotFound(err) {
			return Group{}, errdefs.InvalidArgument(errors.New(err.Error())) // Harbor's 400
		}
		if err != nil {
			return Group{}, err
		}
		g.ID = ext.ID
	case GroupHTTP:
		g.ID = ""
	case GroupOIDC:
	default:
		return Group{}, errdefs.InvalidArgument(fmt.Errorf("group type %d: want 1 (LDAP), 2 (HTTP) or 3 (OIDC)", c.Type))
	}
	var id int64
	err := s.db.Tx(ctx, "create group", func(tx *sqldb.Tx) error {
		var n int
		if err := tx.QueryRow(ctx, `SELECT COUNT(*) FROM usergroups WHERE type = ? AND (name = ? OR (external_id = ? AND external_id <> ''))`, g.Type, g.Name, g.ID).Scan(&n); err != nil {
			return err
		}
		if n > 0 {
			return errdefs.Conflict(fmt.Errorf("duplicate user group, group name:%s, group type: %d, ldap group DN: %s", g.Name, g.Type, c.LdapDN))
		}
		now := sqldb.Nanos(s.db.Now())
		if err := tx.QueryRow(ctx, `INSERT INTO usergroups (name, type, external_id, created, updated) VALUES (?, ?, ?, ?, ?) RETURNING id`,
			g.Name, g.Type, g.ID, now, now).Scan(&id); err != nil {
			return err
		}
		return s.audit.Record(ctx, tx, audit.Event{Operation: "create", ResourceType: "user_group", Resource: g.Name})
	})
	if err != nil {
		return Group{}, err
	}
	return s.groupByID(ctx, id)
}

// lookupGroup asks the source of a group type about a group.
func (s *Service) lookupGroup(ctx context.Context, typ int, id string) (ExternalGroup, error) {
	mode := map[int]string{GroupLDAP: "ldap_auth", GroupHTTP: "http_auth", GroupOIDC: "oidc_auth"}[typ]
	gs, ok := s.sources[mode].(GroupSource)
	if !ok {
		if typ == GroupLDAP {
			return ExternalGroup{}, errdefs.FailedPrecondition(errors.New("LDAP groups need LDAP to be configured"))
		}
		return ExternalGroup{Type: typ, ID: id, Name: id}, nil
	}
	if typ == GroupLDAP && strings.TrimSpace(id) == "" {
		return ExternalGroup{}, errdefs.InvalidArgument(errors.New("an LDAP group needs ldap_group_dn"))
	}
	return gs.LookupGroup(ctx, id)
}

// UpdateGroup renames a group (system permission user-group update).
func (s *Service) UpdateGroup(ctx context.Context, who access.Subject, id int64, name string) error {
	if err := s.access.Require(ctx, who, access.Update, access.UserGroup, 0); err != nil {
		return err
	}
	if err := checkGroupName(name); err != nil {
		return err
	}
	g, err := s.groupByID(ctx, id)
	if err != nil {
		return err
	}
	return s.db.Tx(ctx, "rename group", func(tx *sqldb.Tx) error {
		var n int
		if err := tx.QueryRow(ctx, `SELECT COUNT(*) FROM usergroups WHERE type = ? AND name = ? AND id <> ?`, g.Type, name, id).Scan(&n); err != nil {
			return err
		}
		if n > 0 {
			return errdefs.Conflict(fmt.Errorf("a group of type %d is named %s already", g.Type, name))
		}
		if _, err := tx.Exec(ctx, `UPDATE usergroups SET name = ?, updated = ? WHERE id = ?`, name, sqldb.Nanos(s.db.Now()), id); err != nil {
			return err
		}
		return s.audit.Record(ctx, tx, audit.Event{Operation: "update", ResourceType: "user_group", Resource: name, Description: "rename user group " + g.Name + " to " + name})
	})
}

// DeleteGroup deletes a group, with its project memberships (system
// permission user-group delete).
func (s *Service) DeleteGroup(ctx context.Context, who access.Subject, id int64) error {
	if err := s.access.Require(ctx, who, access.Delete, access.UserGroup, 0); err != nil {
		return err
	}
	g, err := s.groupByID(ctx, id)
	if err != nil {
		return err
	}
	return s.db.Tx(ctx, "delete group", func(tx *sqldb.Tx) error {
		if _, err := tx.Exec(ctx, `DELETE FROM usergroups WHERE id = ?`, id); err != nil {
			return err
		}
		return s.audit.Record(ctx, tx, audit.Event{Operation: "delete", ResourceType: "user_group", Resource: g.Name})
	})
}

// EnsureGroup returns the group a project member names, creating it the
// first time as Harbor onboards groups: an LDAP group by DN (checked
// against the directory), an OIDC group by name under oidc_auth. Other
// groups must exist.
func (s *Service) EnsureGroup(ctx context.Context, typ int, id string) (Group, error) {
	switch typ {
	case GroupLDAP:
	case GroupOIDC:
		st, err := s.settings.Get(ctx)
		if err != nil {
			return Group{}, err
		}
		if st.AuthMode != "oidc_auth" {
			return s.groupByName(ctx, typ, id)
		}
	default:
		return s.groupByName(ctx, typ, id)
	}
	ext, err := s.lookupGroup(ctx, typ, id)
	if err != nil {
		return Group{}, err
	}
	var gid int64
	err = s.db.Tx(ctx, "onboard group", func(tx *sqldb.Tx) error {
		var err error
		gid, err = ensureGroup(ctx, tx, ext, sqldb.Nanos(s.db.Now()))
		return err
	})
	if err != nil {
		return Group{}, err
	}
	return s.groupByID(ctx, gid)
}

func (s *Service) groupByName(ctx context.Context, typ int, name string) (Group, error) {
	g, err := scanGroup(s.db.QueryRow(ctx, `SELECT `+groupCols+` FROM usergroups WHERE name = ? AND (type = ? OR ? = 0)`, name, typ, typ))
	if errors.Is(err, sql.ErrNoRows) {
		return Group{}, errdefs.NotFound(errors.New("user group not found"))
	}
	return g, s.db.Wrap("group", err)
}

// SourceUser is a user of an external source, as the LDAP group sync
// walks them.
type SourceUser struct {
	ID         int64
	Username   string
	ExternalID string
}

// SourceUsers lists the users of a source ("ldap", "oidc").
func (s *Service) SourceUsers(ctx context.Context, source string) ([]SourceUser, error) {
	rows, err := s.db.Query(ctx, `SELECT id, username, external_id FROM users WHERE source = ? ORDER BY id`, source)
	if err != nil {
		return nil, s.db.Wrap("users of "+source, err)
	}
	defer rows.Close()
	var out []SourceUser
	for rows.Next() {
		var u SourceUser
		if err := rows.Scan(&u.ID, &u.Username, &u.ExternalID); err != nil {
			return nil, s.db.Wrap("users of "+source, err)
		}
		out = append(out, u)
	}
	return out, s.db.Wrap("users of "+source, rows.Err())
}

// Refresh sets what a source says now of one of its users (profile,
// administrator role, groups) without a login: the LDAP group sync.
func (s *Service) Refresh(ctx context.Context, id int64, ext External) error {
	return s.db.Tx(ctx, "refresh user", func(tx *sqldb.Tx) error {
		now := sqldb.Nanos(s.db.Now())
		if _, err := tx.Exec(ctx, `UPDATE users SET external_id = ? WHERE id = ?`, ext.ID, id); err != nil {
			return err
		}
		if err := s.refreshProfile(ctx, tx, id, ext, now); err != nil {
			return err
		}
		return setGroups(ctx, tx, id, ext.Groups, now)
	})
}

// ImportUser creates a user a source vouches for without their logging in
// (Harbor's /ldap/users/import), or finds them when they exist. Users are
// imported only under the source's auth mode.
func (s *Service) ImportUser(ctx context.Context, who access.Subject, mode string, ext External) (User, error) {
	if err := s.access.Require(ctx, who, access.Create, access.LdapUser, 0); err != nil {
		return User{}, err
	}
	if err := s.RequireMode(ctx, mode); err != nil {
		return User{}, err
	}
	return s.Onboard(ctx, sourceOf(mode), ext)
}

// RequireMode refuses (errdefs.ErrFailedPrecondition) unless the auth
// mode is mode.
func (s *Service) RequireMode(ctx context.Context, mode string) error {
	st, err := s.settings.Get(ctx)
	if err != nil {
		return err
	}
	if st.AuthMode != mode {
		return errdefs.FailedPrecondition(fmt.Errorf("this needs auth mode %s; it is %s", mode, st.AuthMode))
	}
	return nil
}

// UserLookup is a Source that finds its users by name without their
// password (an LDAP directory): users it has are taken in when they are
// named, before their first login (a project member added by name).
type UserLookup interface {
	Lookup(ctx context.Context, name, externalID string) (External, error)
}

// UserOrOnboard returns the user of a name, taking them in from the
// current auth mode's source when lading does not know them yet, as
// Harbor does when a member is added by name under ldap_auth.
func (s *Service) UserOrOnboard(ctx context.Context, name string) (User, error) {
	u, err := s.UserByName(ctx, name)
	if !errdefs.IsNotFound(err) {
		return u, err
	}
	st, serr := s.settings.Get(ctx)
	if serr != nil {
		return User{}, serr
	}
	src, ok := s.sources[st.AuthMode].(UserLookup)
	if !ok || st.AuthMode == "db_auth" {
		return User{}, err
	}
	ext, lerr := src.Lookup(ctx, name, "")
	if errors.Is(lerr, ErrGone) {
		return User{}, err
	}
	if lerr != nil {
		return User{}, lerr
	}
	return s.Onboard(ctx, sourceOf(st.AuthMode), ext)
}
