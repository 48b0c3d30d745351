package identity

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/lading-dev/lading/internal/errdefs"
	"github.com/lading-dev/lading/internal/sqldb"
)

// The login throttle. Harbor has no lockout; lading slows guessing down
// per user name and per client address: after a few free failures each
// further failure blocks the name (or the address) for twice as long as
// the one before, up to maxBlock. Failures are forgotten a window after
// the last one; a success forgets the name's failures, not the address's
// (a guesser with an account of their own cannot reset their address).
// The state is in the database, so replicas share it.
const (
	freeUserFailures = 5
	freeAddrFailures = 20
	failureWindow    = 15 * time.Minute
	maxBlock         = 15 * time.Minute
)

// ThrottledError says a login was refused unchecked because of earlier
// failures, and when to retry.
type ThrottledError struct {
	RetryAfter time.Duration
	Key        string
}

func (e *ThrottledError) Error() string {
	return fmt.Sprintf("too many failed logins (%s); retry in %s", e.Key, e.RetryAfter.Round(time.Second))
}

// RetryAfterSeconds is the wait in whole seconds (at least 1), for a
// Retry-After header.
func (e *ThrottledError) RetryAfterSeconds() int {
	return max(1, int((e.RetryAfter+time.Second-1)/time.Second))
}

// Unwrap makes a ThrottledError of class errdefs.ErrThrottled.
func (e *ThrottledError) Unwrap() error { return errdefs.ErrThrottled }

type throttleKey struct {
	key  string
	free int64
	// seen: the key had a row when the login started.
	seen bool
}

func throttleKeys(name, address string) []*throttleKey {
	keys := []*throttleKey{{key: "user:" + strings.ToLower(name), free: freeUserFailures}}
	if host, _, err := net.SplitHostPort(address); err == nil {
		address = host
	}
	if address != "" {
		keys = append(keys, &throttleKey{key: "addr:" + address, free: freeAddrFailures})
	}
	return keys
}

// throttled refuses a login while one of its keys is blocked.
func (s *Service) throttled(ctx context.Context, keys []*throttleKey) error {
	now := s.db.Now()
	for _, k := range keys {
		var blocked int64
		err := s.db.QueryRow(ctx, `SELECT blocked_until FROM login_failures WHERE key = ?`, k.key).Scan(&blocked)
		if errors.Is(err, sql.ErrNoRows) {
			continue
		}
		if err != nil {
			return s.db.Wrap("login throttle", err)
		}
		k.seen = true
		if until := sqldb.Time(blocked); until.After(now) {
			what := "this user"
			if strings.HasPrefix(k.key, "addr:") {
				what = "this address"
			}
			return &ThrottledError{RetryAfter: until.Sub(now), Key: what}
		}
	}
	return nil
}

// fail counts a failure against every key.
func (s *Service) fail(ctx context.Context, keys []*throttleKey) error {
	return s.db.Tx(ctx, "login failure", func(tx *sqldb.Tx) error {
		now := s.db.Now()
		for _, k := range keys {
			var failures, last int64
			err := tx.QueryRow(ctx, `SELECT failures, last FROM login_failures WHERE key = ?`+tx.Dialect().ForUpdate, k.key).Scan(&failures, &last)
			if err != nil && !errors.Is(err, sql.ErrNoRows) {
				return err
			}
			if now.Sub(sqldb.Time(last)) > failureWindow {
				failures = 0
			}
			failures++
			var blocked time.Time
			if over := failures - k.free; over > 0 {
				d := maxBlock
				if over < 20 {
					d = min(time.Duration(1<<(over-1))*time.Second, maxBlock)
				}
				blocked = now.Add(d)
			}
			if _, err := tx.Exec(ctx, `INSERT INTO login_failures (key, failures, last, blocked_until) VALUES (?, ?, ?, ?)
				ON CONFLICT (key) DO UPDATE SET failures = excluded.failures, last = excluded.last, blocked_until = excluded.blocked_until`,
				k.key, failures, sqldb.Nanos(now), sqldb.Nanos(blocked)); err != nil {
				return err
			}
		}
		return nil
	})
}

// succeed forgets the name's failures (a write only when there were some).
func (s *Service) succeed(ctx context.Context, keys []*throttleKey) error {
	if !keys[0].seen {
		return nil
	}
	_, err := s.db.Exec(ctx, `DELETE FROM login_failures WHERE key = ?`, keys[0].key)
	return s.db.Wrap("login throttle", err)
}

// PurgeThrottle forgets failures older than the window (run now and then).
func (s *Service) PurgeThrottle(ctx context.Context) error {
	cut := s.db.Now().Add(-failureWindow - maxBlock)
	_, err := s.db.Exec(ctx, `DELETE FROM login_failures WHERE last < ?`, sqldb.Nanos(cut))
	return s.db.Wrap("login throttle", err)
}
