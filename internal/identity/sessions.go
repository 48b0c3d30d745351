package identity

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"time"

	"github.com/lading-dev/lading/internal/access"
	"github.com/lading-dev/lading/internal/audit"
	"github.com/lading-dev/lading/internal/errdefs"
	"github.com/lading-dev/lading/internal/sqldb"
)

// Sessions of the web UI and of API clients that log in with the form
// (POST /c/login). The cookie carries a random token; the database keeps
// its SHA-256 (a stolen database opens no session), the user, a CSRF
// token the client must echo in a header on every unsafe request, and an
// expiry that slides with use (session_timeout). Replicas share them.

// Session is an open session.
type Session struct {
	// Token is the cookie's value (only known when the session starts).
	Token   string
	CSRF    string
	Expires time.Time
}

func newToken() string {
	b := make([]byte, 32)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

func sessionID(token string) string {
	h := sha256.Sum256([]byte(token))
	return hex.EncodeToString(h[:])
}

// StartSession opens a session for a user (robots have none).
func (s *Service) StartSession(ctx context.Context, who access.Subject) (Session, error) {
	if who.Kind != access.KindUser {
		return Session{}, errdefs.Denied(errors.New("only users have sessions"))
	}
	st, err := s.settings.Get(ctx)
	if err != nil {
		return Session{}, err
	}
	now := s.db.Now()
	sess := Session{Token: newToken(), CSRF: newToken(), Expires: now.Add(st.SessionTimeout)}
	_, err = s.db.Exec(ctx, `INSERT INTO sessions (id, user_id, csrf, created, expires, address) VALUES (?, ?, ?, ?, ?, ?)`,
		sessionID(sess.Token), who.ID, sess.CSRF, sqldb.Nanos(now), sqldb.Nanos(sess.Expires), who.Address)
	return sess, s.db.Wrap("start session", err)
}

// Session returns the subject of a session token and its CSRF token;
// errdefs.ErrUnauthorized when the session is unknown or expired.
func (s *Service) Session(ctx context.Context, token string) (access.Subject, Session, error) {
	if token == "" || len(token) > 128 {
		return access.Subject{}, Session{}, errdefs.Unauthorized(errors.New("no session"))
	}
	id := sessionID(token)
	var userID, expires int64
	var csrf string
	err := s.db.QueryRow(ctx, `SELECT user_id, csrf, expires FROM sessions WHERE id = ?`, id).Scan(&userID, &csrf, &expires)
	if errors.Is(err, sql.ErrNoRows) {
		return access.Subject{}, Session{}, errdefs.Unauthorized(errors.New("session expired or unknown; log in again"))
	}
	if err != nil {
		return access.Subject{}, Session{}, s.db.Wrap("session", err)
	}
	now := s.db.Now()
	exp := sqldb.Time(expires)
	if !now.Before(exp) {
		s.db.Exec(ctx, `DELETE FROM sessions WHERE id = ?`, id)
		return access.Subject{}, Session{}, errdefs.Unauthorized(errors.New("session expired; log in again"))
	}
	st, err := s.settings.Get(ctx)
	if err != nil {
		return access.Subject{}, Session{}, err
	}
	// Slide the expiry, writing at most once per tenth of the timeout.
	if next := now.Add(st.SessionTimeout); next.Sub(exp) > st.SessionTimeout/10 {
		if _, err := s.db.Exec(ctx, `UPDATE sessions SET expires = ? WHERE id = ?`, sqldb.Nanos(next), id); err == nil {
			exp = next
		}
	}
	u, err := s.userByID(ctx, userID)
	if errdefs.IsNotFound(err) {
		return access.Subject{}, Session{}, errdefs.Unauthorized(errors.New("the session's user no longer exists"))
	}
	if err != nil {
		return access.Subject{}, Session{}, err
	}
	subj, err := s.subjectOf(ctx, u)
	return subj, Session{CSRF: csrf, Expires: exp}, err
}

// EndSession closes a session (logout).
func (s *Service) EndSession(ctx context.Context, token string) error {
	if token == "" {
		return nil
	}
	return s.db.Tx(ctx, "end session", func(tx *sqldb.Tx) error {
		var userID int64
		err := tx.QueryRow(ctx, `SELECT user_id FROM sessions WHERE id = ?`, sessionID(token)).Scan(&userID)
		if errors.Is(err, sql.ErrNoRows) {
			return nil
		}
		if err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `DELETE FROM sessions WHERE id = ?`, sessionID(token)); err != nil {
			return err
		}
		var name string
		tx.QueryRow(ctx, `SELECT username FROM users WHERE id = ?`, userID).Scan(&name)
		return s.audit.Record(ctx, tx, audit.Event{Operation: "logout", ResourceType: "user", Resource: name, Username: name, Description: "logout"})
	})
}

// PurgeSessions deletes expired sessions.
func (s *Service) PurgeSessions(ctx context.Context) error {
	_, err := s.db.Exec(ctx, `DELETE FROM sessions WHERE expires < ?`, sqldb.Nanos(s.db.Now()))
	return s.db.Wrap("purge sessions", err)
}
