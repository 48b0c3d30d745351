package identity

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"

	"golang.org/x/crypto/bcrypt"

	"github.com/lading-dev/lading/internal/errdefs"
	"github.com/lading-dev/lading/internal/sqldb"
)

// Bootstrap creates the first administrator, "admin", when there is no
// user yet, with password (or, when empty, a random one, which it
// returns). It reports whether it created the account. Replicas starting
// together create it once.
func (s *Service) Bootstrap(ctx context.Context, password string) (created bool, generated string, err error) {
	n, err := s.CountUsers(ctx)
	if err != nil || n > 0 {
		return false, "", err
	}
	if password == "" {
		generated = RandomSecret(24)
		password = generated
	} else if err := CheckPasswordRule(password); err != nil {
		return false, "", errdefs.InvalidArgument(fmt.Errorf("admin password: %w", err))
	}
	hash := HashPassword(password)
	err = s.db.Tx(ctx, "create admin", func(tx *sqldb.Tx) error {
		var n int64
		if err := tx.QueryRow(ctx, `SELECT COUNT(*) FROM users`).Scan(&n); err != nil {
			return err
		}
		if n > 0 {
			return nil
		}
		now := sqldb.Nanos(s.db.Now())
		if _, err := tx.Exec(ctx, `INSERT INTO users (id, username, email, realname, comment, password, source, sysadmin, created, updated)
			VALUES (?, 'admin', '', 'system admin', 'admin user', ?, ?, TRUE, ?, ?)`, AdminID, hash, DB, now, now); err != nil {
			return err
		}
		created = true
		return nil
	})
	if err != nil || !created {
		return false, "", err
	}
	if s.db.Dialect().Numbered {
		// The row was given its id explicitly; move the identity past it.
		if _, err := s.db.Exec(ctx, `SELECT setval(pg_get_serial_sequence('users', 'id'), (SELECT MAX(id) FROM users))`); err != nil {
			return true, generated, s.db.Wrap("users sequence", err)
		}
	}
	return true, generated, nil
}

// ImportHtpasswd makes database users of an htpasswd file's bcrypt
// entries (htpasswd -B), keeping their passwords: the users of lading's
// former --htpasswd authentication log in as before. Users that exist
// already are left alone; other hash kinds are skipped with a warning.
// It returns the users created.
func (s *Service) ImportHtpasswd(ctx context.Context, content []byte) ([]string, error) {
	var created []string
	sc := bufio.NewScanner(bytes.NewReader(content))
	line := 0
	for sc.Scan() {
		line++
		l := strings.TrimSpace(sc.Text())
		if l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		user, hash, ok := strings.Cut(l, ":")
		if !ok || user == "" {
			return created, errdefs.InvalidArgument(fmt.Errorf("htpasswd line %d: want user:hash", line))
		}
		if !isBcrypt(hash) {
			s.log.Warn("htpasswd: skipping a user whose password is not bcrypt-hashed (use htpasswd -B)", "user", user, "line", line)
			continue
		}
		if _, err := bcrypt.Cost([]byte(hash)); err != nil {
			return created, errdefs.InvalidArgument(fmt.Errorf("htpasswd line %d (user %s): %w", line, user, err))
		}
		if err := checkUsername(user); err != nil {
			return created, fmt.Errorf("htpasswd line %d: %w", line, err)
		}
		if _, _, err := s.userByName(ctx, user); err == nil {
			continue
		} else if !errdefs.IsNotFound(err) {
			return created, err
		}
		_, err := s.insertUser(ctx, UserCreate{Username: user, Realname: user, Comment: "imported from htpasswd"}, hash, false)
		if err != nil && !errors.Is(err, errdefs.ErrConflict) {
			return created, err
		}
		if err == nil {
			created = append(created, user)
		}
	}
	return created, sc.Err()
}
