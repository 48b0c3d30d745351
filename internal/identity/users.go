package identity

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/lading-dev/lading/internal/access"
	"github.com/lading-dev/lading/internal/audit"
	"github.com/lading-dev/lading/internal/errdefs"
	"github.com/lading-dev/lading/internal/query"
	"github.com/lading-dev/lading/internal/sqldb"
)

// User is a user account.
type User struct {
	ID       int64
	Username string
	Email    string
	Realname string
	Comment  string
	SysAdmin bool
	// AdminInAuth: the identity source makes the user an administrator
	// (ldap_group_admin_dn, oidc_admin_group), as of their last login.
	AdminInAuth bool
	// Source authenticates the user: "db", "ldap", "oidc".
	Source  string
	Created time.Time
	Updated time.Time
}

// UserCreate is what creating a user takes.
type UserCreate struct {
	Username, Email, Realname, Comment, Password string
}

// Profile is what a user may change of themselves.
type Profile struct {
	Email, Realname, Comment string
}

// AdminID is the first administrator's id, who can be neither deleted nor
// authenticated elsewhere than in the database.
const AdminID = 1

const userCols = `id, username, email, realname, comment, sysadmin, admin_in_auth, source, created, updated`

func scanUser(row sqldb.Row, extra ...any) (User, error) {
	var u User
	var created, updated int64
	err := row.Scan(append([]any{&u.ID, &u.Username, &u.Email, &u.Realname, &u.Comment, &u.SysAdmin, &u.AdminInAuth, &u.Source, &created, &updated}, extra...)...)
	u.Created, u.Updated = sqldb.Time(created), sqldb.Time(updated)
	return u, err
}

// userByName returns a user and their password hash.
func (s *Service) userByName(ctx context.Context, name string) (User, string, error) {
	var hash string
	u, err := scanUser(s.db.QueryRow(ctx, `SELECT `+userCols+`, password FROM users WHERE username = ?`, name), &hash)
	if errors.Is(err, sql.ErrNoRows) {
		return User{}, "", errdefs.NotFound(fmt.Errorf("user %s", name))
	}
	return u, hash, s.db.Wrap("user "+name, err)
}

func (s *Service) userByID(ctx context.Context, id int64) (User, error) {
	u, err := scanUser(s.db.QueryRow(ctx, `SELECT `+userCols+` FROM users WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return User{}, errdefs.NotFound(fmt.Errorf("user %d not found", id))
	}
	return u, s.db.Wrap("user", err)
}

// UserByName returns a user (for project members named by username). It
// needs no permission: names are not secret to authenticated callers
// (Harbor's user search shows them).
func (s *Service) UserByName(ctx context.Context, name string) (User, error) {
	u, _, err := s.userByName(ctx, name)
	return u, err
}

// UserByID returns a user without a permission check, for services that
// show who owns or belongs to what.
func (s *Service) UserByID(ctx context.Context, id int64) (User, error) { return s.userByID(ctx, id) }

// Harbor's rules for names and profiles.
const illegalNameChars = `,"~#%$`

var emailRe = regexp.MustCompile(`^(([^<>()[\]\\.,;:\s@\"]+(\.[^<>()[\]\\.,;:\s@\"]+)*)|(\".+\"))@((\[[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}\])|(([a-zA-Z\-0-9]+\.)+[a-zA-Z]{2,}))$`)

func checkUsername(name string) error {
	if len(name) < 1 || len(name) > 255 {
		return errdefs.InvalidArgument(errors.New("username with illegal length"))
	}
	if strings.ContainsAny(name, illegalNameChars) || strings.ContainsFunc(name, func(r rune) bool { return r < 32 || r == 127 }) {
		return errdefs.InvalidArgument(errors.New("username contains illegal characters"))
	}
	return nil
}

func checkProfile(p Profile) error {
	if p.Email == "" {
		return errdefs.InvalidArgument(errors.New("email can't be empty"))
	}
	if len(p.Email) > 255 || !emailRe.MatchString(p.Email) {
		return errdefs.InvalidArgument(errors.New("email with illegal format"))
	}
	if len(p.Realname) < 1 || len(p.Realname) > 255 {
		return errdefs.InvalidArgument(errors.New("realname with illegal length"))
	}
	if strings.ContainsAny(p.Realname, illegalNameChars) {
		return errdefs.InvalidArgument(errors.New("realname contains illegal characters"))
	}
	if len(p.Comment) > 30 {
		return errdefs.InvalidArgument(errors.New("comment with illegal length"))
	}
	return nil
}

// CreateUser creates a database user: sysadmins may; anyone may when
// self-registration is on. Users are created only under db_auth.
func (s *Service) CreateUser(ctx context.Context, who access.Subject, c UserCreate) (User, error) {
	st, err := s.settings.Get(ctx)
	if err != nil {
		return User{}, err
	}
	if st.AuthMode != "db_auth" {
		return User{}, errdefs.Denied(fmt.Errorf("creating local user is not allowed under auth mode: %s", st.AuthMode))
	}
	if !st.SelfRegistration {
		if err := s.access.Require(ctx, who, access.Create, access.User, 0); err != nil {
			return User{}, err
		}
	}
	if err := CheckPasswordRule(c.Password); err != nil {
		return User{}, err
	}
	if err := checkProfile(Profile{Email: c.Email, Realname: c.Realname, Comment: c.Comment}); err != nil {
		return User{}, err
	}
	if err := checkUsername(c.Username); err != nil {
		return User{}, err
	}
	return s.insertUser(ctx, c, HashPassword(c.Password), false)
}

func (s *Service) insertUser(ctx context.Context, c UserCreate, hash string, admin bool) (User, error) {
	var id int64
	err := s.db.Tx(ctx, "create user "+c.Username, func(tx *sqldb.Tx) error {
		var n int
		if err := tx.QueryRow(ctx, `SELECT COUNT(*) FROM users WHERE username = ? OR (email = ? AND email <> '')`, c.Username, c.Email).Scan(&n); err != nil {
			return err
		}
		if n > 0 {
			return errdefs.Conflict(fmt.Errorf("username %s or email %s is already used", c.Username, c.Email))
		}
		now := sqldb.Nanos(s.db.Now())
		if err := tx.QueryRow(ctx, `INSERT INTO users (username, email, realname, comment, password, source, sysadmin, created, updated)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`, c.Username, c.Email, c.Realname, c.Comment, hash, DB, admin, now, now).Scan(&id); err != nil {
			return err
		}
		return s.audit.Record(ctx, tx, audit.Event{Operation: "create", ResourceType: "user", Resource: c.Username})
	})
	if err != nil {
		return User{}, err
	}
	return s.userByID(ctx, id)
}

// GetUser returns a user: oneself, or anyone for sysadmins.
func (s *Service) GetUser(ctx context.Context, who access.Subject, id int64) (User, error) {
	if !isSelf(who, id) {
		if err := s.access.Require(ctx, who, access.Read, access.User, 0); err != nil {
			return User{}, err
		}
	}
	return s.userByID(ctx, id)
}

// CurrentUser returns the subject's own account; robots have none.
func (s *Service) CurrentUser(ctx context.Context, who access.Subject) (User, error) {
	if !who.Authenticated() {
		return User{}, access.Refuse(who, access.Read, access.User)
	}
	if who.Kind != access.KindUser {
		return User{}, errdefs.FailedPrecondition(fmt.Errorf("get current user not available for security context: %s", who.Kind))
	}
	return s.userByID(ctx, who.ID)
}

func isSelf(who access.Subject, id int64) bool { return who.Kind == access.KindUser && who.ID == id }

// UserFields are the keys a user listing may filter and sort by.
var UserFields = query.Fields{
	"user_id":       {Column: "id", Kind: query.Int},
	"username":      {Column: "username"},
	"email":         {Column: "email"},
	"realname":      {Column: "realname"},
	"sysadmin_flag": {Column: "sysadmin", Kind: query.Bool},
	"creation_time": {Column: "created", Kind: query.Time},
	"update_time":   {Column: "updated", Kind: query.Time},
}

// ListUsers lists users (sysadmins).
func (s *Service) ListUsers(ctx context.Context, who access.Subject, q query.Query, page query.Page) ([]User, int64, error) {
	if err := s.access.Require(ctx, who, access.List, access.User, 0); err != nil {
		return nil, 0, err
	}
	return s.listUsers(ctx, q, page)
}

// SearchUsers finds users by a part of their name (any authenticated
// subject, to add members).
func (s *Service) SearchUsers(ctx context.Context, who access.Subject, name string, page query.Page) ([]User, int64, error) {
	if !who.Authenticated() {
		return nil, 0, access.Refuse(who, access.List, access.User)
	}
	return s.listUsers(ctx, query.Query{}.WithFuzzy("username", name), page)
}

func (s *Service) listUsers(ctx context.Context, q query.Query, page query.Page) ([]User, int64, error) {
	c, err := q.SQL(s.db.Dialect(), UserFields, "id ASC", "id")
	if err != nil {
		return nil, 0, err
	}
	var total int64
	if err := s.db.QueryRow(ctx, `SELECT COUNT(*) FROM users`+c.WhereSQL(), c.Args...).Scan(&total); err != nil {
		return nil, 0, s.db.Wrap("users", err)
	}
	rows, err := s.db.Query(ctx, `SELECT `+userCols+` FROM users`+c.WhereSQL()+` ORDER BY `+c.OrderBy+page.LimitSQL(), c.Args...)
	if err != nil {
		return nil, 0, s.db.Wrap("users", err)
	}
	defer rows.Close()
	out := []User{}
	for rows.Next() {
		u, err := scanUser(rows)
		if err != nil {
			return nil, 0, s.db.Wrap("users", err)
		}
		out = append(out, u)
	}
	return out, total, s.db.Wrap("users", rows.Err())
}

// requireModifiable: under db_auth, oneself or a sysadmin; under other
// modes only the first administrator's account, by a sysadmin.
func (s *Service) requireModifiable(ctx context.Context, who access.Subject, id int64) error {
	st, err := s.settings.Get(ctx)
	if err != nil {
		return err
	}
	if st.AuthMode == "db_auth" {
		if isSelf(who, id) {
			return nil
		}
		return s.access.Require(ctx, who, access.Update, access.User, 0)
	}
	if id != AdminID {
		if !who.Authenticated() {
			return access.Refuse(who, access.Update, access.User)
		}
		return errdefs.Denied(fmt.Errorf("user with ID %d can't be updated", id))
	}
	return s.access.Require(ctx, who, access.Update, access.User, 0)
}

// UpdateProfile changes a user's email, real name and comment.
func (s *Service) UpdateProfile(ctx context.Context, who access.Subject, id int64, p Profile) error {
	if err := s.requireModifiable(ctx, who, id); err != nil {
		return err
	}
	if err := checkProfile(p); err != nil {
		return err
	}
	return s.db.Tx(ctx, "update user", func(tx *sqldb.Tx) error {
		var name string
		if err := tx.QueryRow(ctx, `SELECT username FROM users WHERE id = ?`, id).Scan(&name); errors.Is(err, sql.ErrNoRows) {
			return errdefs.NotFound(fmt.Errorf("user %d not found", id))
		} else if err != nil {
			return err
		}
		var n int
		if err := tx.QueryRow(ctx, `SELECT COUNT(*) FROM users WHERE email = ? AND id <> ?`, p.Email, id).Scan(&n); err != nil {
			return err
		}
		if n > 0 {
			return errdefs.Conflict(fmt.Errorf("email %s is already used", p.Email))
		}
		if _, err := tx.Exec(ctx, `UPDATE users SET email = ?, realname = ?, comment = ?, updated = ? WHERE id = ?`, p.Email, p.Realname, p.Comment, sqldb.Nanos(s.db.Now()), id); err != nil {
			return err
		}
		return s.audit.Record(ctx, tx, audit.Event{Operation: "update", ResourceType: "user", Resource: name, Description: "update user profile: " + name})
	})
}

// SetPassword changes a user's password: oneself (giving the old one) or
// a sysadmin (a reset). The sessions of the user end.
func (s *Service) SetPassword(ctx context.Context, who access.Subject, id int64, oldPassword, newPassword string) error {
	if err := s.requireModifiable(ctx, who, id); err != nil {
		return err
	}
	var name, hash, source string
	err := s.db.QueryRow(ctx, `SELECT username, password, source FROM users WHERE id = ?`, id).Scan(&name, &hash, &source)
	if errors.Is(err, sql.ErrNoRows) {
		return errdefs.NotFound(fmt.Errorf("user %d not found", id))
	}
	if err != nil {
		return s.db.Wrap("user", err)
	}
	if source != DB {
		return errdefs.FailedPrecondition(fmt.Errorf("user %s authenticates with %s; the password is changed there", name, source))
	}
	if isSelf(who, id) && !CheckPassword(hash, oldPassword) {
		return errdefs.Denied(errors.New("current password is incorrect"))
	}
	if err := CheckPasswordRule(newPassword); err != nil {
		return err
	}
	if CheckPassword(hash, newPassword) {
		return errdefs.InvalidArgument(errors.New("new password is identical to old password"))
	}
	newHash := HashPassword(newPassword)
	return s.db.Tx(ctx, "set password", func(tx *sqldb.Tx) error {
		if _, err := tx.Exec(ctx, `UPDATE users SET password = ?, updated = ? WHERE id = ?`, newHash, sqldb.Nanos(s.db.Now()), id); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `DELETE FROM sessions WHERE user_id = ?`, id); err != nil {
			return err
		}
		return s.audit.Record(ctx, tx, audit.Event{Operation: "update", ResourceType: "user", Resource: name, Description: "change password of user: " + name})
	})
}

// SetSysAdmin grants or revokes the administrator flag (sysadmins).
func (s *Service) SetSysAdmin(ctx context.Context, who access.Subject, id int64, admin bool) error {
	if err := s.access.Require(ctx, who, access.Update, access.User, 0); err != nil {
		return err
	}
	return s.db.Tx(ctx, "set sysadmin", func(tx *sqldb.Tx) error {
		var name string
		if err := tx.QueryRow(ctx, `SELECT username FROM users WHERE id = ?`, id).Scan(&name); errors.Is(err, sql.ErrNoRows) {
			return errdefs.NotFound(fmt.Errorf("user %d not found", id))
		} else if err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `UPDATE users SET sysadmin = ?, updated = ? WHERE id = ?`, admin, sqldb.Nanos(s.db.Now()), id); err != nil {
			return err
		}
		return s.audit.Record(ctx, tx, audit.Event{Operation: "update", ResourceType: "user", Resource: name, Description: fmt.Sprintf("set sysadmin of user %s: %v", name, admin)})
	})
}

// DeleteUser deletes a user (sysadmins), with their sessions and
// memberships; neither oneself nor the first administrator.
func (s *Service) DeleteUser(ctx context.Context, who access.Subject, id int64) error {
	if err := s.access.Require(ctx, who, access.Delete, access.User, 0); err != nil {
		return err
	}
	if isSelf(who, id) || id == AdminID {
		return errdefs.Denied(fmt.Errorf("user with ID %d cannot be deleted", id))
	}
	return s.db.Tx(ctx, "delete user", func(tx *sqldb.Tx) error {
		var name string
		if err := tx.QueryRow(ctx, `SELECT username FROM users WHERE id = ?`, id).Scan(&name); errors.Is(err, sql.ErrNoRows) {
			return errdefs.NotFound(fmt.Errorf("user %d not found", id))
		} else if err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `DELETE FROM users WHERE id = ?`, id); err != nil {
			return err
		}
		return s.audit.Record(ctx, tx, audit.Event{Operation: "delete", ResourceType: "user", Resource: name})
	})
}

// CanChangeAuthMode refuses, as Harbor does, to change auth_mode once
// users other than the first admin exist (they belong to the current
// mode's source). The wiring installs it as config's auth_mode guard.
func (s *Service) CanChangeAuthMode(ctx context.Context) error {
	var n int64
	if err := s.db.QueryRow(ctx, `SELECT COUNT(*) FROM users WHERE id <> 1`).Scan(&n); err != nil {
		return s.db.Wrap("users", err)
	}
	if n > 0 {
		return errdefs.InvalidArgument(errors.New("the auth mode cannot be modified as new users have been inserted into database"))
	}
	return nil
}

// CountUsers counts the users (for first start).
func (s *Service) CountUsers(ctx context.Context) (int64, error) {
	var n int64
	err := s.db.QueryRow(ctx, `SELECT COUNT(*) FROM users`).Scan(&n)
	return n, s.db.Wrap("users", err)
}
