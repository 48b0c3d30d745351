package identity

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"errors"
	"fmt"
	"maps"
	"strings"
	"time"

	"github.com/lading-dev/lading/internal/access"
	"github.com/lading-dev/lading/internal/audit"
	"github.com/lading-dev/lading/internal/errdefs"
	"github.com/lading-dev/lading/internal/sqldb"
)

// cached is a verified login, remembered so the password hash (slow by
// design) runs once per client session, not once per request. It is keyed
// by an HMAC of the name, the password and the stored hash, so it forgets
// itself when the password changes, and it is no state a second replica
// needs: a replica without it checks the hash.
type cached struct{ until time.Time }

const loginCacheTTL = 5 * time.Minute

func randomKey(b []byte) { rand.Read(b) }

func (s *Service) cacheKey(name, password, hash string) [32]byte {
	m := hmac.New(sha256.New, s.cacheK[:])
	m.Write([]byte(name + "\x00" + password + "\x00" + hash))
	var k [32]byte
	copy(k[:], m.Sum(nil))
	return k
}

// checkCached checks password against hash, through the cache.
func (s *Service) checkCached(name, password, hash string) bool {
	k := s.cacheKey(name, password, hash)
	now := time.Now()
	s.cacheMu.Lock()
	c, ok := s.cache[k]
	s.cacheMu.Unlock()
	if ok && now.Before(c.until) {
		return true
	}
	if !CheckPassword(hash, password) {
		return false
	}
	s.cacheMu.Lock()
	if len(s.cache) > 10000 {
		clear(s.cache)
	}
	s.cache[k] = cached{until: now.Add(loginCacheTTL)}
	s.cacheMu.Unlock()
	return true
}

// errBadCredentials is what every failed login says, whatever failed.
var errBadCredentials = errdefs.Unauthorized(errors.New("invalid username or password"))

// Login checks credentials, a user's password or a robot's secret, and
// returns the subject. Failed logins are throttled per name and per
// address (see throttle) and audited; successful ones are audited when
// audit says so (interactive logins; the registry's per-request basic
// authentication passes audited=false).
func (s *Service) Login(ctx context.Context, name, password, address string, audited bool) (access.Subject, error) {
	return s.login(ctx, name, password, address, audited, true)
}

// UserLogin is an interactive Login of a user, the login form's
// (/c/login): robots authenticate with basic credentials only, so a
// robot's name fails here as an unknown user's does (Harbor's form checks
// users only).
func (s *Service) UserLogin(ctx context.Context, name, password, address string) (access.Subject, error) {
	return s.login(ctx, name, password, address, true, false)
}

func (s *Service) login(ctx context.Context, name, password, address string, audited, robots bool) (access.Subject, error) {
	if name == "" || len(name) > 255 || len(password) > 1024 {
		return access.Subject{}, errBadCredentials
	}
	keys := throttleKeys(name, address)
	if err := s.throttled(ctx, keys); err != nil {
		return access.Subject{}, err
	}
	st, err := s.settings.Get(ctx)
	if err != nil {
		return access.Subject{}, err
	}
	var subj access.Subject
	if rest, ok := strings.CutPrefix(name, st.RobotNamePrefix); ok && robots {
		subj, err = s.robotLogin(ctx, rest, password)
	} else if ok {
		CheckPassword(dummyHash(), password)
		err = errBadCredentials
	} else {
		subj, err = s.userLogin(ctx, name, password, st.AuthMode)
	}
	subj.Address = address
	if errdefs.IsUnauthorized(err) {
		// As Harbor's core logs failed authentications: for whoever
		// watches the log (fail2ban, the log collector), never with
		// the password; the context names the request.
		s.log.WarnContext(ctx, "login failed", "user", name, "address", address)
		if ferr := s.fail(ctx, keys); ferr != nil {
			s.log.Warn("login throttle: cannot record a failure", "error", ferr)
		}
		s.audit.RecordNow(ctx, audit.Event{Operation: "login", ResourceType: "user", Resource: name, Username: name, Address: address,
			Description: "login", Failed: true})
		return access.Subject{}, err
	}
	if err != nil {
		return access.Subject{}, err
	}
	if err := s.succeed(ctx, keys); err != nil {
		return access.Subject{}, err
	}
	if audited {
		s.audit.RecordNow(ctx, audit.Event{Operation: "login", ResourceType: "user", Resource: name, Username: subj.Name, Address: address, Description: "login"})
	}
	return subj, nil
}

func (s *Service) userLogin(ctx context.Context, name, password, mode string) (access.Subject, error) {
	u, hash, err := s.userByName(ctx, name)
	if errdefs.IsNotFound(err) {
		if src := s.sources[mode]; src != nil && mode != "db_auth" {
			return s.sourceLogin(ctx, src, mode, name, password)
		}
		CheckPassword(dummyHash(), password)
		return access.Subject{}, errBadCredentials
	}
	if err != nil {
		return access.Subject{}, err
	}
	if u.Source != DB {
		src := s.sources[mode]
		if src == nil || sourceOf(mode) != u.Source {
			return access.Subject{}, errdefs.Unauthorized(fmt.Errorf("user %s authenticates with %s, which is not the current auth mode", name, u.Source))
		}
		return s.sourceLogin(ctx, src, mode, name, password)
	}
	if hash == "" || !s.checkCached(u.Username, password, hash) {
		return access.Subject{}, errBadCredentials
	}
	if isBcrypt(hash) {
		// Imported from htpasswd: move to argon2id now that the
		// password is known.
		newHash := HashPassword(password)
		if _, err := s.db.Exec(ctx, `UPDATE users SET password = ? WHERE id = ? AND password = ?`, newHash, u.ID, hash); err != nil {
			s.log.Warn("cannot rehash an imported password", "user", u.Username, "error", err)
		}
	}
	return s.subjectOf(ctx, u)
}

// sourceOf names the source of an auth mode ("ldap_auth" -> "ldap").
func sourceOf(mode string) string { return strings.TrimSuffix(mode, "_auth") }

// sourceLogin authenticates at an external source and onboards or
// refreshes the user and their groups.
func (s *Service) sourceLogin(ctx context.Context, src Source, mode, name, password string) (access.Subject, error) {
	ext, err := src.Authenticate(ctx, name, password)
	if errors.Is(err, ErrGone) {
		if ferr := s.forgetByName(ctx, sourceOf(mode), name); ferr != nil {
			s.log.Warn("cannot forget the groups and sessions of a user the source no longer has", "user", name, "error", ferr)
		}
		return access.Subject{}, errBadCredentials
	}
	if errors.Is(err, errdefs.ErrUnavailable) {
		return access.Subject{}, &UnavailableError{Source: sourceOf(mode), Err: err}
	}
	if err != nil {
		return access.Subject{}, err
	}
	u, err := s.Onboard(ctx, sourceOf(mode), ext)
	if err != nil {
		return access.Subject{}, err
	}
	return s.subjectOf(ctx, u)
}

// Onboard creates or refreshes the user a source vouches for (matched on
// source and external id), with their groups.
func (s *Service) Onboard(ctx context.Context, source string, ext External) (User, error) {
	if ext.ID == "" || ext.Username == "" {
		return User{}, errdefs.InvalidArgument(errors.New("a source's user needs an id and a name"))
	}
	if u, ok, err := s.unchanged(ctx, source, ext); err != nil || ok {
		return u, err
	}
	var id int64
	err := s.db.Tx(ctx, "onboard "+ext.Username, func(tx *sqldb.Tx) error {
		now := sqldb.Nanos(s.db.Now())
		err := tx.QueryRow(ctx, `SELECT id FROM users WHERE source = ? AND external_id = ?`, source, ext.ID).Scan(&id)
		if errors.Is(err, sql.ErrNoRows) && ext.AdoptByName {
			err = tx.QueryRow(ctx, `SELECT id FROM users WHERE source = ? AND username = ?`, source, ext.Username).Scan(&id)
			if err == nil {
				if _, err := tx.Exec(ctx, `UPDATE users SET external_id = ? WHERE id = ?`, ext.ID, id); err != nil {
					return err
				}
			}
		}
		switch {
		case errors.Is(err, sql.ErrNoRows):
			if err := checkUsername(ext.Username); err != nil {
				return err
			}
			var taken int
			if err := tx.QueryRow(ctx, `SELECT COUNT(*) FROM users WHERE email = ? AND email <> ''`, ext.Email).Scan(&taken); err != nil {
				return err
			}
			if taken > 0 {
				s.log.Warn("the source's email of a new user belongs to another user; onboarding without it", "user", ext.Username)
				ext.Email = ""
			}
			if err := tx.QueryRow(ctx, `INSERT INTO users (username, email, realname, comment, source, external_id, admin_in_auth, created, updated)
				VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`, ext.Username, ext.Email, ext.Realname, "from "+strings.ToUpper(source), source, ext.ID, ext.Admin, now, now).Scan(&id); err != nil {
				if sqldb.IsUniqueViolation(err) {
					return errdefs.Conflict(fmt.Errorf("a user named %s or with email %s exists already", ext.Username, ext.Email))
				}
				return err
			}
			if err := s.audit.Record(ctx, tx, audit.Event{Operation: "create", ResourceType: "user", Resource: ext.Username, Description: "onboard user from " + source}); err != nil {
				return err
			}
		case err != nil:
			return err
		default:
			if err := s.refreshProfile(ctx, tx, id, ext, now); err != nil {
				return err
			}
		}
		return setGroups(ctx, tx, id, ext.Groups, now)
	})
	if err != nil {
		return User{}, err
	}
	return s.userByID(ctx, id)
}

// unchanged reports (with the user) whether what a source says of a known
// user is what is stored already, profile and groups: the usual login,
// which then writes nothing.
func (s *Service) unchanged(ctx context.Context, source string, ext External) (User, bool, error) {
	var extID string
	u, err := scanUser(s.db.QueryRow(ctx, `SELECT `+userCols+`, external_id FROM users WHERE source = ? AND external_id = ?`, source, ext.ID), &extID)
	if errors.Is(err, sql.ErrNoRows) {
		return User{}, false, nil
	}
	if err != nil {
		return User{}, false, s.db.Wrap("user", err)
	}
	if u.Realname != ext.Realname || u.AdminInAuth != ext.Admin || (ext.Email != "" && u.Email != ext.Email) {
		return User{}, false, nil
	}
	rows, err := s.db.Query(ctx, `SELECT g.type, g.external_id FROM user_usergroups m JOIN usergroups g ON g.id = m.group_id WHERE m.user_id = ?`, u.ID)
	if err != nil {
		return User{}, false, s.db.Wrap("groups", err)
	}
	defer rows.Close()
	have := map[ExternalGroup]bool{}
	for rows.Next() {
		var g ExternalGroup
		if err := rows.Scan(&g.Type, &g.ID); err != nil {
			return User{}, false, s.db.Wrap("groups", err)
		}
		have[g] = true
	}
	if err := rows.Err(); err != nil {
		return User{}, false, s.db.Wrap("groups", err)
	}
	want := map[ExternalGroup]bool{}
	for _, g := range ext.Groups {
		want[ExternalGroup{Type: g.Type, ID: g.ID}] = true
	}
	if !maps.Equal(have, want) {
		return User{}, false, nil
	}
	return u, true, nil
}

// refreshProfile updates what the source says of an existing user: the
// email (unless another user has it), the real name, the administrator
// role it grants.
func (s *Service) refreshProfile(ctx context.Context, tx *sqldb.Tx, id int64, ext External, now int64) error {
	email := ext.Email
	if email != "" {
		var n int
		if err := tx.QueryRow(ctx, `SELECT COUNT(*) FROM users WHERE email = ? AND id <> ?`, email, id).Scan(&n); err != nil {
			return err
		}
		if n > 0 {
			s.log.Warn("the source's email of a user belongs to another user; keeping the old one", "user", ext.Username)
			if err := tx.QueryRow(ctx, `SELECT email FROM users WHERE id = ?`, id).Scan(&email); err != nil {
				return err
			}
		}
	}
	_, err := tx.Exec(ctx, `UPDATE users SET email = ?, realname = ?, admin_in_auth = ?, updated = ? WHERE id = ?`, email, ext.Realname, ext.Admin, now, id)
	return err
}

// setGroups replaces a user's memberships by the groups a source tells.
func setGroups(ctx context.Context, tx *sqldb.Tx, userID int64, groups []ExternalGroup, now int64) error {
	if _, err := tx.Exec(ctx, `DELETE FROM user_usergroups WHERE user_id = ?`, userID); err != nil {
		return err
	}
	for _, g := range groups {
		gid, err := ensureGroup(ctx, tx, g, now)
		if err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `INSERT INTO user_usergroups (user_id, group_id) VALUES (?, ?) ON CONFLICT DO NOTHING`, userID, gid); err != nil {
			return err
		}
	}
	return nil
}

// ensureGroup returns the id of a source's group, creating it the first
// time. Two LDAP groups may share a name (cn=dev in two branches): the
// second is named by its DN.
func ensureGroup(ctx context.Context, tx *sqldb.Tx, g ExternalGroup, now int64) (int64, error) {
	var id int64
	err := tx.QueryRow(ctx, `SELECT id FROM usergroups WHERE type = ? AND external_id = ?`, g.Type, g.ID).Scan(&id)
	if err == nil {
		return id, nil
	}
	if !errors.Is(err, sql.ErrNoRows) {
		return 0, err
	}
	name := g.Name
	if name == "" {
		name = g.ID
	}
	var n int
	if err := tx.QueryRow(ctx, `SELECT COUNT(*) FROM usergroups WHERE type = ? AND name = ?`, g.Type, name).Scan(&n); err != nil {
		return 0, err
	}
	if n > 0 {
		name = g.ID
	}
	err = tx.QueryRow(ctx, `INSERT INTO usergroups (name, type, external_id, created, updated) VALUES (?, ?, ?, ?, ?) RETURNING id`, name, g.Type, g.ID, now, now).Scan(&id)
	return id, err
}

// forgetByName drops the groups and sessions of a user of a source that
// no longer has them (see ErrGone).
func (s *Service) forgetByName(ctx context.Context, source, name string) error {
	var id int64
	err := s.db.QueryRow(ctx, `SELECT id FROM users WHERE username = ? AND source = ?`, name, source).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		return nil
	}
	if err != nil {
		return s.db.Wrap("user "+name, err)
	}
	return s.Forget(ctx, id)
}

// Forget drops a user's group memberships and sessions: their source no
// longer vouches for them. The account stays (its projects, its audit
// trail); it logs in again if the source takes it back.
func (s *Service) Forget(ctx context.Context, id int64) error {
	return s.db.Tx(ctx, "forget user", func(tx *sqldb.Tx) error {
		if _, err := tx.Exec(ctx, `DELETE FROM user_usergroups WHERE user_id = ?`, id); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `UPDATE users SET admin_in_auth = FALSE WHERE id = ?`, id); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `DELETE FROM sessions WHERE user_id = ?`, id)
		return err
	})
}

// subjectOf is the subject of a user, with their groups.
func (s *Service) subjectOf(ctx context.Context, u User) (access.Subject, error) {
	subj := access.Subject{Kind: access.KindUser, ID: u.ID, Name: u.Username, SysAdmin: u.SysAdmin || u.AdminInAuth}
	rows, err := s.db.Query(ctx, `SELECT group_id FROM user_usergroups WHERE user_id = ? ORDER BY group_id`, u.ID)
	if err != nil {
		return subj, s.db.Wrap("groups of "+u.Username, err)
	}
	defer rows.Close()
	for rows.Next() {
		var g int64
		if err := rows.Scan(&g); err != nil {
			return subj, err
		}
		subj.Groups = append(subj.Groups, g)
	}
	return subj, s.db.Wrap("groups of "+u.Username, rows.Err())
}

// SubjectByName rebuilds the subject of a user or robot from its name (a
// registry token names its subject): with its current groups,
// permissions and flags, so a token never outlives a revocation by more
// than its own lifetime. A disabled or expired robot, or a deleted user,
// is errdefs.ErrUnauthorized.
func (s *Service) SubjectByName(ctx context.Context, name string) (access.Subject, error) {
	if name == "" {
		return access.Subject{}, nil
	}
	st, err := s.settings.Get(ctx)
	if err != nil {
		return access.Subject{}, err
	}
	if rest, ok := strings.CutPrefix(name, st.RobotNamePrefix); ok {
		r, _, err := s.robotByName(ctx, rest)
		if errdefs.IsNotFound(err) {
			return access.Subject{}, errdefs.Unauthorized(fmt.Errorf("robot %s no longer exists", name))
		}
		if err != nil {
			return access.Subject{}, err
		}
		if err := s.robotUsable(r); err != nil {
			return access.Subject{}, err
		}
		return robotSubject(r, st.RobotNamePrefix), nil
	}
	u, _, err := s.userByName(ctx, name)
	if errdefs.IsNotFound(err) {
		return access.Subject{}, errdefs.Unauthorized(fmt.Errorf("user %s no longer exists", name))
	}
	if err != nil {
		return access.Subject{}, err
	}
	return s.subjectOf(ctx, u)
}

// UnavailableError is an identity source that cannot answer (a directory
// down or misconfigured, a provider unreachable). Its message is for the
// client: the API and the token service answer 503 with it.
type UnavailableError struct {
	Source string
	Err    error
}

func (e *UnavailableError) Error() string { return e.Err.Error() }

// Unwrap makes an UnavailableError of class errdefs.ErrUnavailable.
func (e *UnavailableError) Unwrap() []error { return []error{e.Err, errdefs.ErrUnavailable} }

// Public says the message may be shown to the client.
func (e *UnavailableError) Public() bool { return true }
