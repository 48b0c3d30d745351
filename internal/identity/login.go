package identity

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"errors"
	"fmt"
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
		CheckPassword(dummyHash, password)
		err = errBadCredentials
	} else {
		subj, err = s.userLogin(ctx, name, password, st.AuthMode)
	}
	subj.Address = address
	if errdefs.IsUnauthorized(err) {
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
		CheckPassword(dummyHash, password)
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
	var id int64
	err := s.db.Tx(ctx, "onboard "+ext.Username, func(tx *sqldb.Tx) error {
		now := sqldb.Nanos(s.db.Now())
		err := tx.QueryRow(ctx, `SELECT id FROM users WHERE source = ? AND external_id = ?`, source, ext.ID).Scan(&id)
		switch {
		case errors.Is(err, sql.ErrNoRows):
			if err := checkUsername(ext.Username); err != nil {
				return err
			}
			if err := tx.QueryRow(ctx, `INSERT INTO users (username, email, realname, source, external_id, sysadmin, created, updated)
				VALUES (?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`, ext.Username, ext.Email, ext.Realname, source, ext.ID, ext.Admin, now, now).Scan(&id); err != nil {
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
			if _, err := tx.Exec(ctx, `UPDATE users SET email = ?, realname = ?, sysadmin = ?, updated = ? WHERE id = ?`, ext.Email, ext.Realname, ext.Admin, now, id); err != nil {
				return err
			}
		}
		if _, err := tx.Exec(ctx, `DELETE FROM user_usergroups WHERE user_id = ?`, id); err != nil {
			return err
		}
		for _, g := range ext.Groups {
			gid, err := ensureGroup(ctx, tx, g, now)
			if err != nil {
				return err
			}
			if _, err := tx.Exec(ctx, `INSERT INTO user_usergroups (user_id, group_id) VALUES (?, ?) ON CONFLICT DO NOTHING`, id, gid); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return User{}, err
	}
	return s.userByID(ctx, id)
}

func ensureGroup(ctx context.Context, tx *sqldb.Tx, g ExternalGroup, now int64) (int64, error) {
	var id int64
	err := tx.QueryRow(ctx, `SELECT id FROM usergroups WHERE type = ? AND external_id = ?`, g.Type, g.ID).Scan(&id)
	if err == nil {
		return id, nil
	}
	if !errors.Is(err, sql.ErrNoRows) {
		return 0, err
	}
	err = tx.QueryRow(ctx, `INSERT INTO usergroups (name, type, external_id, created, updated) VALUES (?, ?, ?, ?, ?) RETURNING id`, g.Name, g.Type, g.ID, now, now).Scan(&id)
	return id, err
}

// subjectOf is the subject of a user, with their groups.
func (s *Service) subjectOf(ctx context.Context, u User) (access.Subject, error) {
	subj := access.Subject{Kind: access.KindUser, ID: u.ID, Name: u.Username, SysAdmin: u.SysAdmin}
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
